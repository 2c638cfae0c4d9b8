"""The load of one search step: the plan's load at a constant open-loop rate, for the
search's step length, without the plan's faults (a capacity search measures the network as it
is; faults are a campaign's)."""

from __future__ import annotations

import dataclasses

from orchestrator.scenario.plan import Plan
from orchestrator.search.model import SearchSettings
from orchestrator.stages.load import replace_load

__all__ = ["constant_load"]


def constant_load(plan: Plan, settings: SearchSettings, rate: float, users: int) -> Plan:
    """``plan`` with a constant load of ``rate`` tx/s by ``users`` users for one step (warm-up
    and cool-down of the search), and no faults."""
    changed = replace_load(
        plan,
        tps=rate,
        shape="constant",
        steps=(),
        ramp=None,
        spike=None,
        duration_s=settings.step_s,
        warmup_s=settings.warmup_s,
        cooldown_s=settings.cooldown_s,
        users=users,
    )
    return dataclasses.replace(changed, faults=())
