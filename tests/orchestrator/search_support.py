"""A model network for the capacity search's tests: a real ``TrialRunner`` whose "network"
carries ``capacity`` tx/s with a latency that grows as the load nears it, and whose "load
generator" keeps up with a bounded rate per user and per worker; a clock that advances one step
per trial. (A uniquely named module: the tests folders are not packages.)"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from orchestrator.search.bisection import CapacitySearch, GeneratorLimits
from orchestrator.search.model import GeneratorSetting, SearchSettings, Trial

STEP_S = 20.0


@dataclass
class StepClock:
    """Seconds that advance only when a trial runs."""

    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class ModelNetwork:
    """A TrialRunner over a model: achieved = min(rate, capacity); p99 = base / (1 - load)
    (capped); the mempool grows by the excess; 2 % noise from a seeded generator. The load
    generator falls behind past ``per_user_tps`` per user and saturates its CPU past
    ``per_worker_tps`` per worker."""

    capacity: float
    base_p99_ms: float = 500.0
    per_user_tps: float = math.inf
    per_worker_tps: float = math.inf
    users: int = 4
    limits: GeneratorLimits = field(default_factory=lambda: GeneratorLimits(64, 1))
    clock: StepClock = field(default_factory=StepClock)
    seed: int = 1
    runs: list[tuple[float, GeneratorSetting]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def initial_generator(self) -> GeneratorSetting:
        return GeneratorSetting(users=self.users)

    def generator_limits(self) -> GeneratorLimits:
        return self.limits

    def run(self, rate: float, index: int, generator: GeneratorSetting) -> Trial:
        self.clock.now += STEP_S
        self.runs.append((rate, generator))
        behind = rate > generator.users * self.per_user_tps
        cpu = rate > generator.workers * self.per_worker_tps
        load = min(rate / self.capacity, 0.99)
        noise = 1 + self.rng.gauss(0, 0.02)
        window = STEP_S - 5
        return Trial(
            rate=rate,
            index=index,
            generator=generator,
            window_s=window,
            offered_tps=rate,
            achieved_tps=min(rate, self.capacity) * noise,
            p50_ms=self.base_p99_ms / 2 * noise,
            p99_ms=self.base_p99_ms / (1 - load) * noise,
            mempool_growth=max(0.0, rate - self.capacity) * window,
            mempool_limit=max(0.02 * rate * window, 100.0),
            generator_saturated=behind or cpu,
            generator_cpu_saturated=cpu,
            generator_verdict="load generator saturated: model" if behind or cpu else "kept up",
        )


def settings(**changes: object) -> SearchSettings:
    base: dict[str, object] = dict(
        start_tps=100.0, max_tps=10_000.0, slo_p99_ms=2000.0, trials=3, max_duration_s=1e9,
        step_s=STEP_S, warmup_s=3.0, cooldown_s=2.0, resolution=0.05, max_points=20,
    )  # fmt: skip
    return SearchSettings.model_validate({**base, **changes})


def search(network: ModelNetwork, **changes: object) -> CapacitySearch:
    return CapacitySearch(network, settings(**changes), clock=network.clock)
