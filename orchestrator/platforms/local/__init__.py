"""The ``local`` platform (``platform.py``) and its parts, each reusable by a platform that runs
the validators elsewhere: run state, processes, network files, Prometheus, Locust."""

from orchestrator.platforms.local.platform import LocalPlatform

__all__ = ["LocalPlatform"]
