"""The capacity search (pure logic over a ``TrialRunner``): open-loop steps up, then bisection,
to the highest offered rate the network carries within its service level.

1. **Ramp**: from ``start_tps``, each rate ``growth`` times the last (at most ``max_tps``) until
   a point fails. If the very first point fails, go **down** by the same factor until one
   passes (or below ``min_tps``).
2. **Bisect** between the highest passing and the lowest failing rate until they are within
   ``resolution`` of each other.
3. The **knee** is the highest passing rate; ``limited_by`` says what bounds it from above: the
   network (a failing point), the load generator (a point it could not drive), ``max_tps``, or
   the budget (``max_points`` rates, ``max_duration_s`` wall seconds: no point starts when the
   longest point so far would not end within the budget).

A **point** is ``trials`` trials of one rate, judged on their means (``judge_point``):
achieved/offered >= ``min_achieved_ratio``, end-to-end p99 <= ``slo_p99_ms``, and the mempools'
growth over the window within the trial's limit. A trial where the load generator says it was
saturated does not count: the search gives the generator more users (schedule) or workers (CPU)
and runs the trial again; when it may not grow further, the point is ``generator-limited`` and
the search never reports the generator's limit as the network's.

Everything is passed in (the runner, the clock), so a fake runner - a small model network -
tests the logic without processes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from orchestrator.search.model import (
    GeneratorSetting,
    Limit,
    Phase,
    Point,
    SearchResult,
    SearchSettings,
    Trial,
    Verdict,
)
from orchestrator.search.statistics import estimate

__all__ = [
    "CapacitySearch",
    "GeneratorLimits",
    "TrialRunner",
    "judge_point",
    "next_rate",
    "scale_generator",
]


@dataclass(frozen=True)
class GeneratorLimits:
    """How far the search may grow the load generator."""

    max_users: int
    max_workers: int = 1


class TrialRunner(Protocol):
    """Runs one trial: the network under an open-loop constant ``rate`` (tx/s)."""

    def initial_generator(self) -> GeneratorSetting:
        """The load generator the search starts with."""

    def generator_limits(self) -> GeneratorLimits:
        """How far the load generator may grow."""

    def run(self, rate: float, index: int, generator: GeneratorSetting) -> Trial:
        """Trial ``index`` at ``rate`` with ``generator``; its measurements."""


def scale_generator(
    current: GeneratorSetting, trial: Trial, limits: GeneratorLimits
) -> GeneratorSetting | None:
    """A bigger load generator after ``trial`` found it saturated: behind its schedule with a
    CPU to spare it gets twice the users (more calls in flight); a CPU-bound process (or one
    out of users) gets another worker, the users spread over them; None when the limits allow
    neither."""
    if not trial.generator_cpu_saturated and current.users < limits.max_users:
        return GeneratorSetting(
            users=min(current.users * 2, limits.max_users), workers=current.workers
        )
    if current.workers < limits.max_workers:
        workers = current.workers + 1
        users = math.ceil(current.users * workers / current.workers)
        return GeneratorSetting(
            users=min(max(users, current.users), limits.max_users), workers=workers
        )
    return None


def judge_point(
    rate: float, phase: Phase, trials: Sequence[Trial], settings: SearchSettings
) -> Point:
    """The verdict of a point from its counted trials' means (every trial kept)."""
    counted = [trial for trial in trials if not trial.generator_saturated]
    ratio = estimate([trial.achieved_ratio for trial in counted])
    p99 = estimate([trial.p99_ms for trial in counted])
    growth = estimate([trial.mempool_growth for trial in counted])
    limit = estimate([trial.mempool_limit for trial in counted])
    reasons: list[str] = []
    if len(counted) < settings.trials:
        verdict = Verdict.GENERATOR_LIMITED
        last = trials[-1].generator_verdict if trials else ""
        reasons.append(
            f"the load generator stayed saturated at its limits ({last}): the network was not "
            "measured at this rate"
        )
    else:
        if ratio is None:
            reasons.append("achieved TPS not measured")
        elif ratio.mean < settings.min_achieved_ratio:
            reasons.append(f"achieved/offered {ratio.mean:.1%} < {settings.min_achieved_ratio:.0%}")
        if p99 is None:
            reasons.append("end-to-end p99 not measured")
        elif p99.mean > settings.slo_p99_ms:
            reasons.append(f"p99 {p99.mean:.0f} ms > SLO {settings.slo_p99_ms:g} ms")
        if growth is not None and limit is not None and growth.mean > limit.mean:
            reasons.append(
                f"the mempools grew by {growth.mean:.0f} transactions over the window (more "
                f"than {limit.mean:.0f})"
            )
        verdict = Verdict.FAIL if reasons else Verdict.PASS
        if growth is None:
            reasons.append("mempool growth not measured: not judged")
    return Point(
        rate=rate,
        phase=phase,
        verdict=verdict,
        reasons=reasons,
        trials=list(trials),
        achieved_tps=estimate([trial.achieved_tps for trial in counted]),
        achieved_ratio=ratio,
        p50_ms=estimate([trial.p50_ms for trial in counted]),
        p99_ms=p99,
        mempool_growth=growth,
    )


def next_rate(low: float, high: float) -> float:
    """The rate halfway between ``low`` and ``high``, rounded to a readable value (whole tx/s
    from 10 tx/s up)."""
    middle = (low + high) / 2
    return float(round(middle)) if middle >= 10 else round(middle, 1)


PointEvent = Callable[[Point], None]
TrialEvent = Callable[[Trial], None]


class CapacitySearch:
    """One search with ``runner`` under ``settings`` (see the module docstring)."""

    def __init__(
        self,
        runner: TrialRunner,
        settings: SearchSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_point: PointEvent | None = None,
        on_trial: TrialEvent | None = None,
    ) -> None:
        self.runner = runner
        self.settings = settings
        self.clock = clock
        self.on_point = on_point
        self.on_trial = on_trial
        self.generator = runner.initial_generator()
        self.limits = runner.generator_limits()
        self.points: list[Point] = []
        self._current: tuple[float, Phase, list[Trial]] | None = None
        self._stopped_by_budget = False
        self._started = clock()
        self._longest_point_s = 0.0

    # -- one point -----------------------------------------------------------------------------

    def _room_for_a_point(self) -> bool:
        if len(self.points) >= self.settings.max_points:
            return False
        elapsed = self.clock() - self._started
        return elapsed + self._longest_point_s <= self.settings.max_duration_s

    def measure(self, rate: float, phase: Phase) -> Point:
        """Run the trials of ``rate`` (again with a bigger load generator after a saturated
        one) and judge them."""
        began = self.clock()
        trials: list[Trial] = []
        self._current = (rate, phase, trials)
        counted = 0
        while counted < self.settings.trials:
            trial = self.runner.run(rate, len(trials), self.generator)
            trials.append(trial)
            if self.on_trial is not None:
                self.on_trial(trial)
            if not trial.generator_saturated:
                counted += 1
                continue
            bigger = scale_generator(self.generator, trial, self.limits)
            if bigger is None:
                break
            self.generator = bigger
        point = judge_point(rate, phase, trials, self.settings)
        self.points.append(point)
        self._current = None
        self._longest_point_s = max(self._longest_point_s, self.clock() - began)
        if self.on_point is not None:
            self.on_point(point)
        return point

    def measured(self) -> list[Point]:
        """The points so far, and the trials of a rate not finished (an interrupted search)
        as an ``incomplete`` point."""
        if self._current is None or not self._current[2]:
            return list(self.points)
        rate, phase, trials = self._current
        unfinished = Point(
            rate=rate,
            phase=phase,
            verdict=Verdict.INCOMPLETE,
            reasons=["interrupted before this rate's trials ended: not judged"],
            trials=list(trials),
        )
        return [*self.points, unfinished]

    # -- the search ----------------------------------------------------------------------------

    def _measure_if_room(self, rate: float, phase: Phase) -> Point | None:
        """``measure`` when the budget leaves room for another point; None (and the search
        stopped by its budget) otherwise."""
        if not self._room_for_a_point():
            self._stopped_by_budget = True
            return None
        return self.measure(rate, phase)

    def run(self) -> SearchResult:
        settings = self.settings
        passed: Point | None = None
        failed: Point | None = None
        rate = min(settings.start_tps, settings.max_tps)
        while (point := self._measure_if_room(rate, Phase.RAMP)) is not None:  # up to max_tps
            if point.verdict is not Verdict.PASS:
                failed = point
                break
            passed = point
            if rate >= settings.max_tps:
                break
            rate = min(rate * settings.growth, settings.max_tps)
        if passed is None and failed is not None:
            rate = failed.rate / settings.growth
            while rate >= settings.min_tps:  # down to min_tps
                point = self._measure_if_room(rate, Phase.DOWN)
                if point is None:
                    break
                if point.verdict is Verdict.PASS:
                    passed = point
                    break
                failed = point
                rate /= settings.growth
        while passed is not None and failed is not None:  # bisect to the resolution
            middle = next_rate(passed.rate, failed.rate)
            close = failed.rate - passed.rate <= settings.resolution * passed.rate
            if close or middle in (passed.rate, failed.rate):
                break
            point = self._measure_if_room(middle, Phase.BISECT)
            if point is None:
                break
            if point.verdict is Verdict.PASS:
                passed = point
            else:
                failed = point
        return self._result(passed, failed, self._stopped_by_budget)

    def _result(
        self, passed: Point | None, failed: Point | None, stopped_by_budget: bool
    ) -> SearchResult:
        settings = self.settings
        budget = (
            f" (the budget ran out: {len(self.points)} rates of at most {settings.max_points}, "
            f"{self.clock() - self._started:.0f} s of at most {settings.max_duration_s:g} s)"
            if stopped_by_budget
            else ""
        )
        if failed is None:
            limit = Limit.BUDGET if stopped_by_budget or passed is None else Limit.MAX_RATE
            if passed is None:
                conclusion = "no rate was measured" + budget
            elif limit is Limit.MAX_RATE:
                conclusion = (
                    f"every rate passed up to --max-tps {settings.max_tps:g} tx/s: the knee is "
                    "above it"
                )
            else:
                conclusion = f"passed up to {passed.rate:g} tx/s; higher rates not tried{budget}"
        else:
            limit = (
                Limit.LOAD_GENERATOR
                if failed.verdict is Verdict.GENERATOR_LIMITED
                else Limit.NETWORK
            )
            above = (
                f"the load generator could not drive {failed.rate:g} tx/s (its limit, not the "
                "network's)"
                if limit is Limit.LOAD_GENERATOR
                else f"{failed.rate:g} tx/s failed: {'; '.join(failed.reasons)}"
            )
            if passed is None:
                conclusion = f"no rate passed down to {failed.rate:g} tx/s: {above}{budget}"
            else:
                conclusion = f"knee at {passed.rate:g} tx/s; {above}{budget}"
        return SearchResult(
            points=list(self.points),
            knee_tps=None if passed is None else passed.rate,
            limited_by=limit,
            conclusion=conclusion,
        )
