"""Trials of a capacity search in the simulator (a platform with ``Simulator``): each trial is
one simulation of the plan's network with the modelled load at the trial's rate
(``--load-tps``), its seed the plan's plus the trial's number, so a point's trials differ.

What the simulator can and cannot say about capacity (``SIM_NOTES``, written into every sim
search report): it models load as transaction counts carried in batches, with no signature,
execution, bandwidth or mempool cost per transaction, so its throughput follows the offered
rate (``committed_tps``: the rate between the first and last commit of the longest honest
chain; achieved = offered up to the rounding of batch sizes) and its latency does not depend on
the rate. A sim search exercises the search on the modelled network and gives its consensus
latency; it finds a knee only when the SLO binds at every rate, and otherwise ends at
``--max-tps``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from orchestrator.platforms.capabilities import Simulator
from orchestrator.scenario.plan import Plan
from orchestrator.search.bisection import GeneratorLimits
from orchestrator.search.model import GeneratorSetting, SearchSettings, Trial
from orchestrator.search.step import constant_load

__all__ = ["SIM_LATENCY_SOURCE", "SIM_NOTES", "SimTrials"]

SIM_LATENCY_SOURCE = (
    "simulated finality: block proposal to commit at every honest node (no client in the simulator)"
)
SIM_NOTES = (
    "SIMULATED: every trial is one run of the discrete-event simulator with --load-tps at the "
    "trial's rate and the plan's seed plus the trial's number; times are simulated seconds",
    "the simulator models load as transaction counts in batches, with no signature, execution, "
    "bandwidth or mempool cost per transaction: its throughput follows the offered rate and its "
    "latency does not depend on it, so a sim search ends at --max-tps unless the SLO binds; it "
    "measures the consensus latency of the modelled network, not a capacity (run the search on "
    "--platform local or kubernetes for that)",
    "the latency judged is the simulated finality (block proposal to commit), not a client's "
    "end to end; mempool growth is not modelled (not judged); the load generator is the "
    "simulator's own and never saturates",
)


class SimTrials:
    """The ``TrialRunner`` of the simulator. ``make_simulator(n)`` gives a fresh simulator
    for the ``n``-th simulation (the sim platform runs one simulation each, in its own
    folder); ``timeout_s`` bounds each simulation (None: the simulator's own budget)."""

    def __init__(
        self,
        make_simulator: Callable[[int], Simulator],
        plan: Plan,
        settings: SearchSettings,
        *,
        timeout_s: float | None = None,
    ) -> None:
        self.make_simulator = make_simulator
        self.plan = plan
        self.settings = settings
        self.timeout_s = timeout_s
        self.simulations = 0

    def initial_generator(self) -> GeneratorSetting:
        return GeneratorSetting(users=1)

    def generator_limits(self) -> GeneratorLimits:
        return GeneratorLimits(max_users=1, max_workers=1)

    def run(self, rate: float, index: int, generator: GeneratorSetting) -> Trial:
        plan = constant_load(self.plan, self.settings, rate, self.plan.load.users)
        network = dataclasses.replace(plan.network, seed=plan.network.seed + index)
        plan = dataclasses.replace(plan, network=network)
        simulator = self.make_simulator(self.simulations)
        self.simulations += 1
        budget = self.timeout_s if self.timeout_s is not None else simulator.budget_s(plan)
        result = simulator.run(plan, budget)
        raw = result.raw
        committed = raw.get("committed_tps")
        offered = raw.get("load_tps")
        notes = [f"not simulated: {item}" for item in result.not_simulated]
        if committed is None:
            notes.append("the simulator reported no committed_tps (an older aitbc-node?)")
        return Trial(
            rate=rate,
            index=index,
            generator=generator,
            window_s=result.simulated_seconds,
            offered_tps=None if offered is None else float(offered),
            achieved_tps=None if committed is None else float(committed),
            p50_ms=result.finality_p50_ms,
            p90_ms=_number(raw.get("finality_ms", {}), "p90"),
            p99_ms=result.finality_p99_ms,
            latency_source=SIM_LATENCY_SOURCE,
            generator_verdict="the simulator's modelled load (never saturated)",
            notes=[f"seed {network.seed}, {result.committed_height} blocks", *notes],
        )


def _number(section: object, key: str) -> float | None:
    value = section.get(key) if isinstance(section, dict) else None
    return float(value) if isinstance(value, int | float) else None
