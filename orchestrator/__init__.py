"""AITBC testnet orchestrator: scenario files -> a frozen plan -> a platform (local processes,
Kubernetes, or the deterministic simulator). The CLI is ``aitbc-testnet`` (``orchestrator.cli``).

Public entry points::

    from orchestrator.scenario_loader import load_scenario   # path or built-in name -> Scenario
    from orchestrator.plan import resolve_plan                # Scenario -> Plan
    from orchestrator.platforms import get_platform           # name, run dir -> Platform
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
