"""Measurements of a run from Prometheus (PromQL of ``measure.promql``, sent by
``external.prometheus``), over the measured window
``[load start + warm-up, load end - cool-down]``, plus the time series the report plots.

Throughput is cross-checked against the chain: the transactions in the blocks committed by the
reference validator (the one that committed most) between the height samples Prometheus took
at the window's ends, divided by the time between those samples. Both numbers are reported,
with whether they agree within 2 %.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from loadgen.quantiles import summarize
from orchestrator.errors import UsageError
from orchestrator.external.prometheus import PromQuery, RangeSeries
from orchestrator.measure import promql as pq
from orchestrator.measure.latency import (
    ExactWindow,
    compare_latency,
    milliseconds,
    node_buckets,
)
from orchestrator.measure.resources import measure_resources
from orchestrator.measure.safety import BlockView
from orchestrator.report.model import (
    E2eLatencyMs,
    FinalityMs,
    LoadTotals,
    Measurements,
    Series,
    TimeSeries,
    TpsMeasurement,
)

AGREEMENT = 0.02
"""Prometheus TPS and TPS counted from blocks must agree within this fraction."""
MODE_NAMES = {0: "fast", 1: "balanced", 2: "secure"}
FINALITY_QUANTILES = (0.5, 0.9, 0.99)
MAX_POINTS = 10_000
"""Samples per plotted series at most (Prometheus refuses more than 11,000 per query)."""


@dataclass(frozen=True)
class RunTimes:
    """The moments of a run (unix seconds)."""

    run_start: float
    load_start: float
    load_end: float
    run_end: float
    warmup_s: float
    cooldown_s: float

    @property
    def measure_start(self) -> float:
        return self.load_start + self.warmup_s

    @property
    def measure_end(self) -> float:
        return max(self.measure_start, self.load_end - self.cooldown_s)

    @property
    def window_s(self) -> float:
        return self.measure_end - self.measure_start


@dataclass(frozen=True)
class ProbeLatency:
    """A committed probe from the probe log: when it was submitted and how long it took."""

    submitted_at: float
    latency_s: float


@dataclass(frozen=True)
class MeasureResult:
    measurements: Measurements
    series: TimeSeries
    heights: Mapping[int, Sequence[tuple[float, float]]]
    """validator -> (unix seconds, height), every scrape interval from load start to run end."""


@dataclass(frozen=True)
class ObservedFault:
    """A node fault seen in ``aitbc_fault_active`` (unix seconds; ``end`` None: still active
    at the end of the series)."""

    kind: str
    ids: tuple[int, ...]
    start: float
    end: float | None


def fault_intervals(
    series: Sequence[RangeSeries], step_s: float, series_end: float
) -> list[tuple[str, int, float, float | None]]:
    """(kind, validator, start, end) of every stretch where a fault_active series is > 0. A
    gap in the samples ends a stretch; one still on at the end of the series has end None."""
    intervals: list[tuple[str, int, float, float | None]] = []
    for item in series:
        kind, label = item.labels.get("kind"), item.labels.get(pq.VALIDATOR_LABEL)
        if kind is None or label is None:
            continue
        since: float | None = None
        previous: float | None = None
        for stamp, value in item.points:
            if since is not None and previous is not None and stamp - previous > 2.5 * step_s:
                intervals.append((kind, int(label), since, previous))
                since = None
            if value > 0 and since is None:
                since = stamp
            elif value <= 0 and since is not None:
                intervals.append((kind, int(label), since, stamp))
                since = None
            previous = stamp
        if since is not None:
            still_on = previous is not None and previous >= series_end - 2 * step_s
            intervals.append((kind, int(label), since, None if still_on else previous))
    return intervals


def group_faults(
    intervals: Sequence[tuple[str, int, float, float | None]], tolerance_s: float
) -> list[ObservedFault]:
    """Intervals of one kind starting within ``tolerance_s`` of each other are one fault (a
    partition shows on both sides of the cut)."""
    faults: list[ObservedFault] = []
    for kind, index, start, end in sorted(intervals, key=lambda item: (item[2], item[0])):
        for position, fault in enumerate(faults):
            if fault.kind == kind and abs(fault.start - start) <= tolerance_s:
                ends = (fault.end, end)
                faults[position] = ObservedFault(
                    kind=kind,
                    ids=tuple(sorted({*fault.ids, index})),
                    start=min(fault.start, start),
                    end=None if None in ends else max(e for e in ends if e is not None),
                )
                break
        else:
            faults.append(ObservedFault(kind=kind, ids=(index,), start=start, end=end))
    return faults


def observed_faults(
    prom: PromQuery, start: float, end: float, step_s: float
) -> list[ObservedFault]:
    """The node faults injected between ``start`` and ``end`` as Prometheus saw them (for a
    stand-alone ``collect``; kills are not node faults and do not show here)."""
    series = prom.range(pq.fault_active(), start, end, step_s)
    return group_faults(fault_intervals(series, step_s, end), tolerance_s=2 * step_s + 0.5)


def tps_from_blocks(
    blocks: Sequence[BlockView], first_exclusive: int, last_inclusive: int, seconds: float
) -> tuple[float | None, int]:
    """(transactions per second, transactions) in blocks ``first_exclusive+1..last_inclusive``
    over ``seconds``; None when the blocks do not cover that range."""
    wanted = {block.height: block for block in blocks if first_exclusive < block.height}
    heights = range(first_exclusive + 1, last_inclusive + 1)
    if seconds <= 0 or any(height not in wanted for height in heights):
        return None, 0
    count = sum(len(wanted[height].tx_ids) for height in heights)
    return count / seconds, count


def agree(first: float | None, second: float | None, tolerance: float = AGREEMENT) -> bool | None:
    """Whether two rates agree within ``tolerance`` of the larger (None: one is missing)."""
    if first is None or second is None:
        return None
    scale = max(abs(first), abs(second))
    return scale == 0 or abs(first - second) <= tolerance * scale


def _relative(
    series: Sequence[RangeSeries], origin: float, label: str, scale: float = 1.0
) -> list[Series]:
    return [
        Series(
            label=label,
            points=[(round(t - origin, 3), value * scale) for t, value in item.points],
        )
        for item in series
        if item.points
    ]


class Measurer:
    """Measures one run. ``platform`` picks the rate window and the step of the series."""

    def __init__(
        self, prom: PromQuery, times: RunTimes, platform: str, validators: int = 0
    ) -> None:
        if times.window_s <= 0:
            raise UsageError(
                f"the measured window is empty (load {times.load_end - times.load_start:g} s, "
                f"warm-up {times.warmup_s:g} s, cool-down {times.cooldown_s:g} s): run a longer "
                "load or shorten load.warmup/load.cooldown"
            )
        self.prom = prom
        self.times = times
        self.rate_window_s = pq.rate_window_s(platform, validators)
        span = max(0.0, times.run_end - times.load_start)
        self.step_s = max(pq.scrape_interval_s(platform, validators), math.ceil(span / MAX_POINTS))
        self.notes: list[str] = []

    # -- pieces ------------------------------------------------------------------------------

    def _at_end(self, query: str) -> float | None:
        return self.prom.scalar(query, self.times.measure_end)

    def tps(self, blocks: Sequence[BlockView] | None) -> TpsMeasurement:
        window = self.times.window_s
        mean = self._at_end(pq.committed_tps(window))
        offered_total = self._at_end(pq.loadgen_increase("aitbc_loadgen_offered_txs_total", window))
        acked_total = self._at_end(pq.loadgen_increase("aitbc_loadgen_acked_txs_total", window))
        offered = None if offered_total is None else offered_total / window
        acked = None if acked_total is None else acked_total / window
        if offered is None:
            self.notes.append(
                "no load-generator metrics in Prometheus for the window: offered load unknown"
            )
        ratio = mean / offered if mean is not None and offered else None
        from_blocks, cross_check = self._from_blocks(blocks)
        return TpsMeasurement(
            mean=mean,
            offered=offered,
            acked=acked,
            achieved_ratio=ratio,
            from_blocks=from_blocks,
            blocks_agree=agree(mean, from_blocks),
            cross_check=cross_check,
        )

    def _from_blocks(self, blocks: Sequence[BlockView] | None) -> tuple[float | None, str]:
        if blocks is None:
            return None, "not counted: the validators' blocks could not be read"
        start, end = self.times.measure_start, self.times.measure_end
        committed = self.prom.by_label(
            pq.txs_committed_by_validator(self.times.window_s), end, pq.VALIDATOR_LABEL
        )
        if not committed:
            return None, "not counted: no aitbc_txs_committed_total series in the window"
        reference = max(committed, key=lambda label: committed[label])
        index = int(reference)
        first = self.prom.scalar(pq.height_of(index), start)
        last = self.prom.scalar(pq.height_of(index), end)
        first_t = self.prom.scalar(pq.height_sample_time(index), start)
        last_t = self.prom.scalar(pq.height_sample_time(index), end)
        if None in (first, last, first_t, last_t):
            return None, f"not counted: validator {index} has no height samples at both ends"
        assert first is not None and last is not None and first_t is not None
        assert last_t is not None
        rate, count = tps_from_blocks(blocks, int(first), int(last), last_t - first_t)
        if rate is None:
            return None, (
                f"not counted: blocks {int(first) + 1}..{int(last)} were not all read from the "
                "chain"
            )
        return rate, (
            f"{count} transactions in blocks {int(first) + 1}..{int(last)} committed by "
            f"validator {index} between its height samples at {first_t:.3f} and {last_t:.3f} "
            f"({last_t - first_t:.3f} s)"
        )

    def finality(self) -> FinalityMs:
        values = [
            self._at_end(pq.finality_quantile(q, self.times.window_s)) for q in FINALITY_QUANTILES
        ]
        p50, p90, p99 = (milliseconds(value) for value in values)
        return FinalityMs(p50=p50, p90=p90, p99=p99)

    def e2e(self, exact: ExactWindow | None, probes: Sequence[ProbeLatency] | None) -> E2eLatencyMs:
        """Exact over every acknowledged transaction of the window when the load generator's
        samples exist; else the probes' Prometheus histogram; else the probe log."""
        if exact is not None and exact.exact is not None:
            values = exact.exact
            return E2eLatencyMs(
                p50=values.p50,
                p90=values.p90,
                p99=values.p99,
                max=values.max,
                samples=values.count,
                source="exact: every acknowledged transaction submitted in the window "
                f"({values.files} load-generator samples file(s))",
            )
        window = self.times.window_s
        samples = self._at_end(pq.e2e_samples(window))
        if samples:
            p50, p90, p99 = (self._at_end(pq.e2e_quantile(q, window)) for q in FINALITY_QUANTILES)
            return E2eLatencyMs(
                p50=milliseconds(p50),
                p90=milliseconds(p90),
                p99=milliseconds(p99),
                samples=round(samples),
                source="probes: histogram estimate of aitbc_loadgen_e2e_latency_seconds",
            )
        if probes:
            start, end = self.times.measure_start, self.times.measure_end
            found = summarize(p.latency_s for p in probes if start <= p.submitted_at <= end)
            if found.count:
                self.notes.append("e2e latency from the probe log (no loadgen histogram)")
                p50, p90, p99 = (found.quantile(q) for q in FINALITY_QUANTILES)
                return E2eLatencyMs(
                    p50=milliseconds(p50),
                    p90=milliseconds(p90),
                    p99=milliseconds(p99),
                    max=milliseconds(found.max_s),
                    samples=found.count,
                    source="probes: probe log (exact over the probes)",
                )
        return E2eLatencyMs(samples=0, source="no committed probe in the measured window")

    def restarts(self, planned: Mapping[int, int]) -> int | None:
        """Unplanned restarts: process start-time changes beyond the planned restarts of each
        validator, plus validators down at the end of the run."""
        span = self.times.run_end - self.times.run_start
        changes = self.prom.by_label(
            pq.process_restarts(span), self.times.run_end, pq.VALIDATOR_LABEL
        )
        if not changes:
            return None
        unplanned = 0
        for label, count in changes.items():
            extra = round(count) - planned.get(int(label), 0)
            if extra > 0:
                unplanned += extra
                self.notes.append(f"validator {label} restarted {extra} time(s) unplanned")
        up = self.prom.by_label(pq.validators_up(), self.times.run_end, pq.VALIDATOR_LABEL)
        for label, value in sorted(up.items()):
            if value < 1:
                unplanned += 1
                self.notes.append(f"validator {label} was down at the end of the run")
        return unplanned

    def heights(self) -> dict[int, list[tuple[float, float]]]:
        series = self.prom.range(
            pq.height_by_validator(), self.times.load_start, self.times.run_end, self.step_s
        )
        return {
            int(item.labels[pq.VALIDATOR_LABEL]): list(item.points)
            for item in series
            if pq.VALIDATOR_LABEL in item.labels
        }

    def series(self, heights: Mapping[int, Sequence[tuple[float, float]]]) -> TimeSeries:
        origin, end, step, window = (
            self.times.load_start,
            self.times.run_end,
            self.step_s,
            self.rate_window_s,
        )
        committed = self.prom.range(pq.committed_tps(window), origin, end, step)
        tps = _relative(committed, origin, "committed")
        offered = self.prom.range(
            pq.loadgen_rate("aitbc_loadgen_offered_txs_total", window), origin, end, step
        )
        tps += _relative(offered, origin, "offered")
        finality: list[Series] = []
        for q in FINALITY_QUANTILES:
            found = self.prom.range(pq.finality_quantile(q, window), origin, end, step)
            finality += _relative(found, origin, f"p{round(q * 100)}", scale=1000.0)
        height = [
            Series(
                label=f"validator {index}",
                points=[(round(t - origin, 3), value) for t, value in points],
            )
            for index, points in sorted(heights.items())
        ]
        return TimeSeries(tps=tps, finality_ms=finality, height=height)

    # -- all ---------------------------------------------------------------------------------

    def measure(
        self,
        *,
        blocks: Sequence[BlockView] | None,
        load: LoadTotals | None,
        probes: Sequence[ProbeLatency] | None,
        planned_restarts: Mapping[int, int],
        exact: ExactWindow | None = None,
        faults: bool = False,
    ) -> MeasureResult:
        """Every measurement of the window. ``exact``: the load generator's exact latency of
        the window (None: not read); ``faults``: the window had faults (for the latency
        comparison's explanations)."""
        window = self.times.window_s
        tps = self.tps(blocks)
        blocks_in_window = self._at_end(pq.blocks_committed(window))
        timeouts = self._at_end(pq.timeouts(window))
        mode = self._at_end(pq.consensus_mode())
        span = self.times.run_end - self.times.run_start
        slashing = self.prom.scalar(pq.slashing_events(span), self.times.run_end)
        final = self.prom.by_label(pq.height_by_validator(), self.times.run_end, pq.VALIDATOR_LABEL)
        heights = self.heights()
        measurements = Measurements(
            window_s=window,
            tps=tps,
            finality_ms=self.finality(),
            e2e_latency_ms=self.e2e(exact, probes),
            latency=None
            if exact is None
            else compare_latency(
                exact, node_buckets(self.prom, window, self.times.measure_end), faults=faults
            ),
            block_interval_ms=window * 1000 / blocks_in_window if blocks_in_window else None,
            timeouts=None if timeouts is None else round(timeouts),
            mode=None if mode is None else MODE_NAMES.get(round(mode), str(mode)),
            slashing_events=None if slashing is None else round(slashing),
            restarts=self.restarts(planned_restarts),
            final_heights={label: round(value) for label, value in sorted(final.items())},
            load=load,
            resources=measure_resources(
                self.prom, self.times.measure_end, window, blocks_in_window
            ),
            notes=list(self.notes),
        )
        return MeasureResult(
            measurements=measurements,
            series=self.series(heights),
            heights=heights,
        )
