"""The ``local`` platform (``platform.py``) and its parts: a run on this host (``host.py``: run
state, network files, Prometheus, Locust, readiness, node faults) whose validators a
``ValidatorRunner`` starts (``runner.py``: processes here). The docker platform builds on the
same parts with containers for validators."""

from orchestrator.platforms.local.platform import LocalPlatform

__all__ = ["LocalPlatform"]
