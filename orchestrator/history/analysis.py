"""A metric's history analysed: its change points and, among them, the regressions, each with
the commit range that holds the cause (the last run before the change and the first after).

A change point is a regression when its direction is bad for the metric (throughput down,
latency up) and the segment means differ by at least ``min_change`` of the earlier one; from a
mean of 0 (no restarts, no violations) any worsening counts. The permutation test decides what
is beyond noise; ``min_change`` keeps statistically clear but tiny shifts out of the gate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.history.changepoints import (
    DEFAULT_MAX_P_VALUE,
    DEFAULT_MIN_SIZE,
    DEFAULT_PERMUTATIONS,
    ChangePoint,
    e_divisive,
)
from orchestrator.history.metrics import HeadlineMetric
from orchestrator.history.store import RunRecord, SeriesKey

DEFAULT_MIN_CHANGE = 0.05
DEFAULT_MAX_POINTS = 200
"""Only the latest runs of a series are analysed (the cost grows with the square)."""


@dataclass(frozen=True)
class DetectionSettings:
    max_p_value: float = DEFAULT_MAX_P_VALUE
    permutations: int = DEFAULT_PERMUTATIONS
    min_size: int = DEFAULT_MIN_SIZE
    min_change: float = DEFAULT_MIN_CHANGE
    max_points: int = DEFAULT_MAX_POINTS


@dataclass(frozen=True)
class Regression:
    key: SeriesKey
    metric: HeadlineMetric
    change: ChangePoint
    last_before: RunRecord
    first_after: RunRecord

    @property
    def commit_range(self) -> str:
        return f"{self.last_before.commit_label}..{self.first_after.commit_label}"

    def describe(self) -> str:
        relative = self.change.relative_change
        amount = "from 0" if relative is None else f"{relative:+.1%}"
        return (
            f"{self.metric.name} of {self.key.describe()}: {self.change.before:.6g} -> "
            f"{self.change.after:.6g} {self.metric.unit} ({amount}, {self.metric.better} is "
            f"better, p={self.change.p_value:.3f}) between commit {self.commit_range} (runs "
            f"{self.last_before.run_id} -> {self.first_after.run_id})"
        )


@dataclass(frozen=True)
class MetricHistory:
    key: SeriesKey
    metric: HeadlineMetric
    runs: tuple[RunRecord, ...]
    """The runs that have this metric, oldest first (``values[i]`` is ``runs[i]``'s)."""
    values: tuple[float, ...]
    change_points: tuple[ChangePoint, ...]
    regressions: tuple[Regression, ...]


def is_regression(metric: HeadlineMetric, change: ChangePoint, min_change: float) -> bool:
    if metric.direction == 0:
        return False
    relative = change.relative_change
    if relative is None:  # from a mean of exactly 0
        return change.after < 0 if metric.direction > 0 else change.after > 0
    worse_by = -relative if metric.direction > 0 else relative
    return worse_by >= min_change - 1e-12


def analyse(
    key: SeriesKey,
    metric: HeadlineMetric,
    runs: Sequence[RunRecord],
    settings: DetectionSettings | None = None,
) -> MetricHistory:
    """Change points and regressions of ``metric`` over ``runs`` (one key, oldest first)."""
    settings = settings or DetectionSettings()
    having = [run for run in runs if metric.name in run.metrics][-settings.max_points :]
    values = [run.metrics[metric.name] for run in having]
    changes = e_divisive(
        values,
        max_p_value=settings.max_p_value,
        permutations=settings.permutations,
        min_size=settings.min_size,
    )
    regressions = tuple(
        Regression(
            key=key,
            metric=metric,
            change=change,
            last_before=having[change.index - 1],
            first_after=having[change.index],
        )
        for change in changes
        if is_regression(metric, change, settings.min_change)
    )
    return MetricHistory(
        key=key,
        metric=metric,
        runs=tuple(having),
        values=tuple(values),
        change_points=tuple(changes),
        regressions=regressions,
    )
