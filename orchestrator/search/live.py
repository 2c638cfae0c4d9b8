"""Trials of a capacity search on a live testnet (any platform with ``LoadRunner``,
``PrometheusAccess`` and ``NodeAccess``: local processes, a cluster).

A trial is one load step of the plan's load at a constant rate, without faults
(``stages.load.run_load_window``), measured over its window ``[start + warm-up, end -
cool-down]`` the way a campaign measures (``Measurer``): committed TPS against what the load
generator offered, the end-to-end quantiles exact from the load generator's samples (else the
probes' histogram, said in ``latency_source``), the mempools' growth (the least-squares slope of
``sum(aitbc_mempool_txs)`` over the window, times its length) and the load generator's self
check from its summary. Before each trial the mempools drain (up to ``DRAIN_BOUND_S``), so no
backlog of the previous step counts against the next and every account's nonce is committed
when the next load reads it.
"""

from __future__ import annotations

import time

from loadgen.errors import LoadgenError
from loadgen.selfcheck import SCHEDULE_TOLERANCE, SaturationCheck
from loadgen.summary import read_summary
from orchestrator.errors import PlatformError
from orchestrator.external.prometheus import PromQuery
from orchestrator.measure import promql as pq
from orchestrator.measure.latency import exact_window_latency
from orchestrator.measure.measurer import Measurer, RunTimes
from orchestrator.platforms.capabilities import LoadRunner, require
from orchestrator.scenario.plan import Plan
from orchestrator.search.bisection import GeneratorLimits
from orchestrator.search.model import GeneratorSetting, SearchSettings, Trial
from orchestrator.search.statistics import slope
from orchestrator.search.step import constant_load
from orchestrator.stages.collect import wait_scraped_since
from orchestrator.stages.load import run_load_window

__all__ = ["DRAIN_BOUND_S", "LiveTrials"]

DRAIN_BOUND_S = 120.0
"""How long a trial waits at most for the mempools to drain before it starts."""
DRAIN_POLL_S = 0.5
OFFERED = "aitbc_loadgen_offered_txs_total"
MISSED = "aitbc_loadgen_missed_txs_total"
SCRAPED_BOUND_SCRAPES = 30
EXIT_GRACE_S = 300.0
"""How long after its planned end a trial's load generator may take to exit by itself. Its
``--run-time`` counts from its own start, and on a contended machine its start-up (importing
Locust, gevent, gRPC) was seen to take over a minute: a bound, not a wait."""
MAX_USERS = 64
"""Load users the search may give the load generator at most (each owns its own accounts)."""


class LiveTrials:
    """The ``TrialRunner`` of a live testnet (see the module docstring); one Locust process:
    the load generator grows in users, not workers."""

    def __init__(
        self,
        platform: object,
        plan: Plan,
        prom: PromQuery,
        settings: SearchSettings,
    ) -> None:
        self.platform = platform
        self.runner = require(platform, LoadRunner, "run a capacity search")
        self.name = str(getattr(platform, "name", "live"))
        self.plan = plan
        self.prom = prom
        self.settings = settings
        self.max_users = max(plan.load.users, min(MAX_USERS, plan.load.accounts))

    def initial_generator(self) -> GeneratorSetting:
        return GeneratorSetting(users=min(self.plan.load.users, self.max_users))

    def generator_limits(self) -> GeneratorLimits:
        return GeneratorLimits(max_users=self.max_users, max_workers=1)

    # -- one trial -----------------------------------------------------------------------------

    def _backlog(self) -> float | None:
        """The transactions in every validator's mempool together; None while a validator's
        figure is missing (a failed scrape drops it from a sum, which would hide its backlog)."""
        try:
            samples = self.prom.instant(pq.mempool_txs_by_validator())
        except PlatformError:
            return None
        values = [sample.value for sample in samples if sample.value is not None]
        if len(values) < self.plan.network.validators:
            return None
        return sum(values)

    def drain(self) -> float | None:
        """Wait (up to DRAIN_BOUND_S) until no more than a batch per validator waits in the
        mempools; the backlog left (None: Prometheus never gave every validator's figure)."""
        floor = self.plan.load.batch_size * self.plan.network.validators
        deadline = time.monotonic() + DRAIN_BOUND_S
        backlog = self._backlog()
        while backlog is None or backlog > floor:
            if time.monotonic() >= deadline:
                break
            time.sleep(DRAIN_POLL_S)
            backlog = self._backlog()
        return backlog

    def _mempool_growth(self, times: RunTimes) -> float | None:
        step = pq.scrape_interval_s(self.name, self.plan.network.validators)
        series = self.prom.range(pq.mempool_txs(), times.measure_start, times.measure_end, step)
        points = [point for item in series for point in item.points]
        fitted = slope(points)
        return None if fitted is None else fitted * times.window_s

    def _first_offer(self, start: float, end: float) -> float | None:
        """When the load generator offered its first transactions (its start-up takes seconds
        on a busy machine): the first sample of its offered counter above 0 after ``start``."""
        step = pq.scrape_interval_s(self.name, self.plan.network.validators)
        series = self.prom.range(pq.loadgen_total(OFFERED), start, end, step)
        stamps = [stamp for item in series for stamp, value in item.points if value > 0]
        return min(stamps) if stamps else None

    def _behind(self, times: RunTimes) -> tuple[float | None, str]:
        """The share of the window's offered transactions the load generator missed (a slot
        sent over a second late, or never), from its counters; and a sentence about it."""
        window = times.window_s
        offered = self.prom.scalar(pq.loadgen_increase(OFFERED, window), times.measure_end)
        missed = self.prom.scalar(pq.loadgen_increase(MISSED, window), times.measure_end)
        if not offered or missed is None:
            return None, "its counters are not in Prometheus for the window"
        share = max(0.0, missed) / offered
        return share, f"missed {missed:.0f} of {offered:.0f} offered in the window ({share:.1%})"

    def _self_check(self) -> SaturationCheck | None:
        summary = self.runner.load_files().summary
        if summary is None:
            return None
        try:
            return read_summary(summary).self_check
        except LoadgenError as error:
            raise PlatformError(
                f"the load generator wrote no readable summary ({error}): it was stopped before "
                f"its step ended (its start-up may have taken longer than {EXIT_GRACE_S:g} "
                f"s on a busy machine) or it failed; see its log {self.runner.load_files().log}"
            ) from None

    def run(self, rate: float, index: int, generator: GeneratorSetting) -> Trial:
        notes: list[str] = []
        backlog = self.drain()
        floor = self.plan.load.batch_size * self.plan.network.validators
        if backlog is None or backlog > floor:
            left = "an unknown number of" if backlog is None else f"{backlog:.0f}"
            notes.append(
                f"{left} transactions still in the mempools at the start (after waiting up to "
                f"{DRAIN_BOUND_S:g} s for them)"
            )
        plan = constant_load(self.plan, self.settings, rate, generator.users)
        files = self.runner.load_files()
        window = run_load_window(
            self.platform, plan, log_hint=str(files.log), exit_grace_s=EXIT_GRACE_S
        )
        now = time.time()
        began = self._first_offer(window.load_start, now) or window.load_start
        if began - window.load_start >= 1.0:
            notes.append(
                f"the load generator started offering {began - window.load_start:.1f} s after "
                "it was started: its step (and the window) counts from then"
            )
        times = RunTimes(  # Locust's --run-time counts from its own start: the step's end
            run_start=window.load_start,
            load_start=began,
            load_end=min(began + self.settings.step_s, now),
            run_end=now,
            warmup_s=self.settings.warmup_s,
            cooldown_s=self.settings.cooldown_s,
        )
        wait_scraped_since(
            self.prom,
            times.measure_end,
            self.plan.network.validators,
            SCRAPED_BOUND_SCRAPES * pq.scrape_interval_s(self.name, self.plan.network.validators),
        )
        measurer = Measurer(self.prom, times, self.name)
        tps = measurer.tps(None)
        exact = exact_window_latency(files.dir, times.measure_start, times.measure_end)
        e2e = measurer.e2e(exact, None)
        if exact.exact is None:
            notes.append(f"no exact latency: {exact.unavailable}")
        check = self._self_check()
        cpu = (
            check is not None
            and check.cpu_mean is not None
            and (check.cpu_mean >= check.cpu_threshold)
        )
        behind, behind_text = self._behind(times)
        growth = self._mempool_growth(times)
        window_s = times.window_s
        offered = tps.offered if tps.offered else rate
        limit = max(
            self.settings.mempool_tolerance * offered * window_s,
            2.0 * self.plan.load.batch_size * self.plan.network.validators,
        )
        late = behind is not None and behind > SCHEDULE_TOLERANCE
        network_behind = growth is not None and growth > limit
        verdict = _generator_verdict(check, cpu, late, network_behind, behind_text)
        notes += measurer.notes
        return Trial(
            rate=rate,
            index=index,
            generator=generator,
            started_at=window.load_start,
            window_s=window_s,
            offered_tps=tps.offered,
            achieved_tps=tps.mean,
            p50_ms=e2e.p50,
            p90_ms=e2e.p90,
            p99_ms=e2e.p99,
            max_ms=e2e.max,
            latency_samples=e2e.samples,
            latency_source=e2e.source,
            mempool_growth=growth,
            mempool_limit=limit,
            generator_saturated=cpu or (late and not network_behind),
            generator_cpu_saturated=cpu,
            generator_verdict=verdict,
            notes=notes,
        )


def _generator_verdict(
    check: SaturationCheck | None, cpu: bool, late: bool, network_behind: bool, behind_text: str
) -> str:
    """The load generator's state in the trial. It is saturated when its CPU was (its
    summary's self check, over the run), or when it fell behind its schedule in the window
    (missed more than the self check's tolerance) while the validators kept up with what it
    sent. Behind while the mempools grow, it waits on validators that do not keep up: that is
    the network's limit, judged as such. (The whole-run self check counts the start-up and the
    stop too, which weigh much in a short step, so the schedule is judged on the window.)"""
    whole = "no self check (this platform's load generator writes no summary)"
    if check is not None:
        whole = f"whole run: {check.verdict}"
    if cpu or (late and not network_behind):
        reasons = [f"behind schedule: {behind_text}"] if late else []
        if cpu and check is not None:
            reasons.append(check.verdict.removeprefix("load generator saturated: "))
        return "load generator saturated: " + "; ".join(reasons)
    if late:
        return (
            f"behind schedule ({behind_text}) because the validators do not keep up (the "
            f"mempools grow): the network's limit; {whole}"
        )
    return f"load generator kept up: {behind_text}; {whole}"
