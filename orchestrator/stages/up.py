"""The up stage: deploy a plan's testnet and wait until it is ready (``aitbc-testnet up``, the
start of every campaign)."""

from __future__ import annotations

from orchestrator.platforms.capabilities import Deployer, ReadyProgress, require
from orchestrator.scenario.plan import Plan

__all__ = ["DEFAULT_READY_TIMEOUT_S", "bring_up"]

DEFAULT_READY_TIMEOUT_S = 120.0


def bring_up(
    platform: object,
    plan: Plan,
    *,
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
    on_progress: ReadyProgress | None = None,
) -> None:
    """Deploy ``plan`` on ``platform`` and wait (up to ``ready_timeout_s``) until it is ready.
    Tearing down after a failure is the caller's choice (``stages.down``)."""
    deployer = require(platform, Deployer, "deploy a testnet")
    deployer.deploy(plan)
    deployer.wait_ready(ready_timeout_s, on_progress)
