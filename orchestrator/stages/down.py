"""The down stage: stop exactly what a run started (``aitbc-testnet down``, the end of every
campaign unless ``--keep``)."""

from __future__ import annotations

from orchestrator.platforms.capabilities import Stopped, Teardown, require

__all__ = ["tear_down"]


def tear_down(platform: object) -> list[Stopped]:
    """Stop what ``platform`` started (idempotent); what was stopped, and how."""
    return require(platform, Teardown, "stop a testnet").destroy()
