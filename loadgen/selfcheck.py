"""The load generator checks itself: did it keep to its schedule, and was its CPU saturated?

A load generator that falls behind reports its own limit as the network's. Two signs, both
measured in the process itself and written to the run summary with their figures:

- **behind schedule**: it sent (first sends, resends excluded) less than it offered by more
  than ``SCHEDULE_TOLERANCE`` of the offered transactions;
- **CPU saturated**: the process used at least ``CPU_SATURATION`` of one core on average over
  the load (one Python process runs its users on one core; gRPC's own threads add a little).

The capacity search (``aitbc-testnet search``) reads the CPU figure, judges the schedule on its
measured window, and grows the generator rather than report its limit as the network's. Pure:
times are passed in.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from loadgen.metrics import LoadgenTotals

SCHEDULE_TOLERANCE = 0.05
CPU_SATURATION = 0.9
#: CPU use is read over intervals of at least this many seconds (for the peak).
CPU_INTERVAL_S = 1.0


class CpuMeter:
    """Process CPU seconds against wall seconds, fed with ``sample(wall, cpu)`` pairs (e.g.
    ``time.monotonic()``, ``time.process_time()``)."""

    def __init__(self, interval_s: float = CPU_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._first: tuple[float, float] | None = None
        self._last: tuple[float, float] | None = None
        self._interval_start: tuple[float, float] | None = None
        self.peak = 0.0

    def sample(self, wall: float, cpu: float) -> None:
        if self._first is None:
            self._first = self._interval_start = (wall, cpu)
        self._last = (wall, cpu)
        assert self._interval_start is not None
        start_wall, start_cpu = self._interval_start
        if wall - start_wall >= self.interval_s:
            self.peak = max(self.peak, (cpu - start_cpu) / (wall - start_wall))
            self._interval_start = (wall, cpu)

    @property
    def wall_s(self) -> float:
        if self._first is None or self._last is None:
            return 0.0
        return self._last[0] - self._first[0]

    @property
    def mean(self) -> float | None:
        """CPU seconds per wall second over everything sampled (None before a second)."""
        if self._first is None or self._last is None or self.wall_s < self.interval_s:
            return None
        return (self._last[1] - self._first[1]) / self.wall_s


class SaturationCheck(BaseModel):
    """The ``self_check`` section of the run summary."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    saturated: bool
    verdict: str
    offered: int
    first_sends: int
    shortfall_ratio: float | None
    schedule_tolerance: float
    cpu_mean: float | None
    cpu_peak: float | None
    cpu_threshold: float
    measured_s: float


def check_saturation(
    totals: LoadgenTotals,
    cpu: CpuMeter,
    *,
    schedule_tolerance: float = SCHEDULE_TOLERANCE,
    cpu_threshold: float = CPU_SATURATION,
) -> SaturationCheck:
    first_sends = totals.sent - totals.resent
    shortfall = (
        max(0, totals.offered - first_sends) / totals.offered if totals.offered > 0 else None
    )
    reasons = []
    if shortfall is not None and shortfall > schedule_tolerance:
        reasons.append(
            f"behind schedule: sent {first_sends} of {totals.offered} offered transactions "
            f"({shortfall:.1%} short, tolerance {schedule_tolerance:.0%})"
        )
    cpu_mean = cpu.mean
    if cpu_mean is not None and cpu_mean >= cpu_threshold:
        reasons.append(
            f"CPU saturated: {cpu_mean:.0%} of one core on average over {cpu.wall_s:.0f} s "
            f"(threshold {cpu_threshold:.0%}, peak {cpu.peak:.0%})"
        )
    if reasons:
        verdict = "load generator saturated: " + "; ".join(reasons)
    else:
        cpu_text = "n/a" if cpu_mean is None else f"{cpu_mean:.0%}"
        short_text = "n/a" if shortfall is None else f"{shortfall:.1%}"
        verdict = (
            f"load generator kept up: {short_text} short of the schedule, CPU {cpu_text} of one "
            "core on average"
        )
    return SaturationCheck(
        saturated=bool(reasons),
        verdict=verdict,
        offered=totals.offered,
        first_sends=first_sends,
        shortfall_ratio=shortfall,
        schedule_tolerance=schedule_tolerance,
        cpu_mean=cpu_mean,
        cpu_peak=cpu.peak if cpu_mean is not None else None,
        cpu_threshold=cpu_threshold,
        measured_s=cpu.wall_s,
    )
