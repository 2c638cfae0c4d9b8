"""Compare a run with a baseline run: committed TPS (higher is better) and the finality and
end-to-end latency quantiles (lower is better). A metric regresses when it is worse than the
baseline by more than ``max_regression`` (a fraction: 0.10 = 10 %), or when the baseline has it
and this run does not (no number cannot prove there is no regression).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.errors import UsageError
from orchestrator.report.model import Report

DEFAULT_MAX_REGRESSION = 0.10


@dataclass(frozen=True)
class ComparedMetric:
    name: str
    unit: str
    current: float | None
    baseline: float | None
    higher_is_better: bool
    change: float | None
    """(current - baseline) / baseline; None when either is missing or the baseline is 0."""
    regressed: bool
    explanation: str


@dataclass(frozen=True)
class BaselineComparison:
    current_run: str
    baseline_run: str
    max_regression: float
    metrics: tuple[ComparedMetric, ...]

    @property
    def regressed(self) -> bool:
        return any(metric.regressed for metric in self.metrics)

    @property
    def regressions(self) -> tuple[ComparedMetric, ...]:
        return tuple(metric for metric in self.metrics if metric.regressed)


_METRICS: tuple[tuple[str, str, bool, Callable[[Report], float | None]], ...] = (
    ("tps.mean", "tx/s", True, lambda r: r.measurements.tps.mean),
    ("finality_ms.p50", "ms", False, lambda r: r.measurements.finality_ms.p50),
    ("finality_ms.p90", "ms", False, lambda r: r.measurements.finality_ms.p90),
    ("finality_ms.p99", "ms", False, lambda r: r.measurements.finality_ms.p99),
    ("e2e_latency_ms.p50", "ms", False, lambda r: r.measurements.e2e_latency_ms.p50),
    ("e2e_latency_ms.p99", "ms", False, lambda r: r.measurements.e2e_latency_ms.p99),
)


def parse_regression(text: str) -> float:
    """``10%`` -> 0.10, ``0.1`` -> 0.10. UsageError (exit 2) otherwise."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        value = -1.0
    if not raw.endswith("%") and value > 1:
        value = -1.0
    if not 0 <= value < 10:
        raise UsageError(
            f"--max-regression {text!r}: give a percentage such as 10% (or a fraction such as 0.1)"
        )
    return value


def compare_metric(
    name: str,
    unit: str,
    current: float | None,
    baseline: float | None,
    higher_is_better: bool,
    max_regression: float,
) -> ComparedMetric:
    def result(change: float | None, regressed: bool, explanation: str) -> ComparedMetric:
        return ComparedMetric(
            name, unit, current, baseline, higher_is_better, change, regressed, explanation
        )

    if baseline is None:
        return result(None, False, "the baseline has no value: not compared")
    if current is None:
        return result(None, True, "this run has no value but the baseline does")
    if baseline == 0:
        worse = current < 0 if higher_is_better else current > 0
        return result(None, worse, "baseline is 0: compared by sign only")
    change = (current - baseline) / abs(baseline)
    worse_by = -change if higher_is_better else change
    regressed = worse_by > max_regression + 1e-12
    direction = "lower" if change < 0 else "higher"
    verdict = "REGRESSION" if regressed else "ok"
    return result(
        change,
        regressed,
        f"{current:.6g} vs {baseline:.6g} {unit}: {abs(change):.1%} {direction} "
        f"({verdict}; limit {max_regression:.0%} worse)",
    )


def compare(
    current: Report, baseline: Report, max_regression: float = DEFAULT_MAX_REGRESSION
) -> BaselineComparison:
    return BaselineComparison(
        current_run=current.run_id,
        baseline_run=baseline.run_id,
        max_regression=max_regression,
        metrics=tuple(
            compare_metric(name, unit, get(current), get(baseline), higher, max_regression)
            for name, unit, higher, get in _METRICS
        ),
    )


def format_comparison(comparison: BaselineComparison) -> str:
    """Plain-text lines for the terminal."""
    lines = [
        f"baseline {comparison.baseline_run} -> {comparison.current_run} "
        f"(max regression {comparison.max_regression:.0%})"
    ]
    for metric in comparison.metrics:
        mark = "REGRESSED" if metric.regressed else "ok"
        lines.append(f"  {metric.name:<20} {mark:<9} {metric.explanation}")
    return "\n".join(lines)
