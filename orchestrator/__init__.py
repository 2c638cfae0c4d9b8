"""AITBC testnet orchestrator: scenario files -> a frozen plan -> a platform (local processes,
Kubernetes, or the deterministic simulator). The CLI is ``aitbc-testnet`` (``orchestrator.cli``).

Public entry points::

    from orchestrator.scenario.loader import load_scenario  # path or built-in name -> Scenario
    from orchestrator.scenario.plan import resolve_plan     # Scenario -> Plan
    from orchestrator.platforms import get_platform         # name, run dir -> a platform
    from orchestrator.stages.campaign import Campaign       # plan + platform -> report

The packages, their layers and the capability Protocols: docs/architecture.md.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
