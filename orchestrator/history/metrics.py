"""The headline metrics of a ``report.json`` that the history keeps, and which way is better.

``direction``: +1 higher is better (a drop is a regression), -1 lower is better (a rise is a
regression), 0 tracked only (never a regression). A metric a report lacks (``null``) is simply
not recorded for that run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.history.errors import HistoryUsageError
from orchestrator.report.model import Report


@dataclass(frozen=True)
class HeadlineMetric:
    name: str
    unit: str
    direction: int
    read: Callable[[Report], float | None]
    meaning: str

    @property
    def better(self) -> str:
        return {1: "higher", -1: "lower"}.get(self.direction, "neither")


def _max_recovery(report: Report) -> float | None:
    times = [fault.recovery_s for fault in report.faults if fault.recovery_s is not None]
    return max(times) if times else None


def _count(value: int | None) -> float | None:
    return None if value is None else float(value)


HEADLINE_METRICS: tuple[HeadlineMetric, ...] = (
    HeadlineMetric(
        "tps.mean", "tx/s", 1, lambda r: r.measurements.tps.mean, "committed TPS (Prometheus)"
    ),
    HeadlineMetric(
        "tps.achieved_ratio",
        "ratio",
        1,
        lambda r: r.measurements.tps.achieved_ratio,
        "committed / offered TPS",
    ),
    HeadlineMetric(
        "finality_ms.p50", "ms", -1, lambda r: r.measurements.finality_ms.p50, "node finality p50"
    ),
    HeadlineMetric(
        "finality_ms.p90", "ms", -1, lambda r: r.measurements.finality_ms.p90, "node finality p90"
    ),
    HeadlineMetric(
        "finality_ms.p99", "ms", -1, lambda r: r.measurements.finality_ms.p99, "node finality p99"
    ),
    HeadlineMetric(
        "e2e_latency_ms.p50",
        "ms",
        -1,
        lambda r: r.measurements.e2e_latency_ms.p50,
        "client submit-to-commit p50",
    ),
    HeadlineMetric(
        "e2e_latency_ms.p99",
        "ms",
        -1,
        lambda r: r.measurements.e2e_latency_ms.p99,
        "client submit-to-commit p99",
    ),
    HeadlineMetric(
        "block_interval_ms",
        "ms",
        -1,
        lambda r: r.measurements.block_interval_ms,
        "mean time between committed blocks",
    ),
    HeadlineMetric(
        "timeouts", "rounds", -1, lambda r: _count(r.measurements.timeouts), "rounds timed out"
    ),
    HeadlineMetric(
        "restarts",
        "count",
        -1,
        lambda r: _count(r.measurements.restarts),
        "unplanned validator restarts",
    ),
    HeadlineMetric(
        "recovery_s.max", "s", -1, _max_recovery, "slowest recovery after a fault of the run"
    ),
    HeadlineMetric(
        "safety.violations",
        "count",
        -1,
        lambda r: float(len(r.safety.violations)),
        "safety violations found",
    ),
)
METRICS_BY_NAME = {metric.name: metric for metric in HEADLINE_METRICS}


def metric_named(name: str) -> HeadlineMetric:
    """The headline metric called ``name``; HistoryUsageError listing them otherwise."""
    try:
        return METRICS_BY_NAME[name]
    except KeyError:
        raise HistoryUsageError(
            f"metric {name!r} is not kept in the history: use one of {', '.join(METRICS_BY_NAME)}"
        ) from None


def headline_values(report: Report) -> dict[str, float]:
    """Every headline metric the report has (missing ones left out)."""
    values: dict[str, float] = {}
    for metric in HEADLINE_METRICS:
        value = metric.read(report)
        if value is not None:
            values[metric.name] = float(value)
    return values
