"""Compare a run with a baseline run on the headline metrics (``headline.py``, the list the
history judges too; the tracked-only ones left out): throughput (higher is better), latency
quantiles, block interval, timeouts, restarts, recovery and safety violations (lower is
better). A metric regresses when it is worse than the baseline by more than ``max_regression``
(a fraction: 0.10 = 10 %), or when the baseline has it and this run does not (no number cannot
prove there is no regression); from a baseline of 0 any worsening regresses.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.errors import UsageError
from orchestrator.report.headline import HEADLINE_METRICS
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
            compare_metric(
                metric.name,
                metric.unit,
                metric.read(current),
                metric.read(baseline),
                metric.direction > 0,
                max_regression,
            )
            for metric in HEADLINE_METRICS
            if metric.direction != 0
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
