"""The statistics of a capacity search (pure): the mean of a point's trials with its 95 %
confidence interval (Student's t, the trials being few), and the least-squares slope of a
series (the mempool's growth over a load step)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from orchestrator.search.model import Estimate

__all__ = ["CONFIDENCE", "estimate", "slope", "t_quantile"]

CONFIDENCE = 0.95
_T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
"""The 0.975 quantile of Student's t for 1..30 degrees of freedom (two-sided 95 %)."""
_Z_975 = 1.960


def t_quantile(degrees_of_freedom: int) -> float:
    """The two-sided 95 % quantile of Student's t (the normal's beyond 30 degrees)."""
    if degrees_of_freedom < 1:
        raise ValueError(f"degrees of freedom {degrees_of_freedom}: use 1 or more")
    if degrees_of_freedom <= len(_T_975):
        return _T_975[degrees_of_freedom - 1]
    return _Z_975


def estimate(values: Sequence[float | None]) -> Estimate | None:
    """Mean and 95 % confidence interval of the values present (None: none present; one value:
    no interval)."""
    present = [float(value) for value in values if value is not None and math.isfinite(value)]
    if not present:
        return None
    mean = math.fsum(present) / len(present)
    if len(present) < 2:
        return Estimate(mean=mean, low=None, high=None, n=1)
    half = t_quantile(len(present) - 1) * statistics.stdev(present) / math.sqrt(len(present))
    return Estimate(mean=mean, low=mean - half, high=mean + half, n=len(present))


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """The least-squares slope of ``(x, y)`` points (None: fewer than two distinct x)."""
    if len(points) < 2:
        return None
    xs = [x for x, _ in points]
    mean_x = math.fsum(xs) / len(xs)
    mean_y = math.fsum(y for _, y in points) / len(points)
    spread = math.fsum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    return math.fsum((x - mean_x) * (y - mean_y) for x, y in points) / spread
