"""Exact latency quantiles from the samples files, and what a Prometheus histogram can say
about the same quantile (the bucket it falls in), so a report can put both side by side.

Pure functions: no clock, no I/O beyond reading the samples files in ``exact_latency``.

- ``exact_quantile``: linear interpolation between the closest ranks (NumPy's default
  ``linear`` method, R type 7) of the sorted samples.
- ``histogram_quantile``: Prometheus's ``histogram_quantile`` on cumulative bucket counts
  (linear interpolation inside the bucket holding the rank), with that bucket's bounds
  ``[lower, upper]``: the ``ceil(q * n)``-th smallest observation lies in that bucket (the
  interpolated exact quantile is within one sample of it); the estimate is only a guess there.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from loadgen.errors import LoadgenError
from loadgen.latency_file import read_latency_samples

QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class ExactLatency:
    """Submit-to-commit latency of every committed transaction in a window (seconds)."""

    count: int
    quantiles: dict[float, float]
    max_s: float | None
    mean_s: float | None

    def quantile(self, q: float) -> float | None:
        return self.quantiles.get(q)


@dataclass(frozen=True)
class HistogramQuantile:
    """A quantile as a histogram gives it: Prometheus's interpolated ``estimate`` and the
    bounds of the bucket that holds the rank (``upper`` is ``inf`` past the last bucket)."""

    q: float
    estimate: float | None
    lower: float
    upper: float


def exact_quantile(ordered: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile of already sorted values (None when empty)."""
    if not 0.0 <= q <= 1.0:
        raise LoadgenError(f"quantile q={q}: use a number in [0, 1]")
    if not ordered:
        return None
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(latencies: Iterable[float], qs: Sequence[float] = QUANTILES) -> ExactLatency:
    """Exact quantiles, maximum and mean of ``latencies`` (any order)."""
    ordered = sorted(latencies)
    values = {q: exact_quantile(ordered, q) for q in qs}
    return ExactLatency(
        count=len(ordered),
        quantiles={q: value for q, value in values.items() if value is not None},
        max_s=ordered[-1] if ordered else None,
        mean_s=math.fsum(ordered) / len(ordered) if ordered else None,
    )


def exact_latency(
    paths: Iterable[str | os.PathLike[str]],
    window: tuple[float, float] | None = None,
    qs: Sequence[float] = QUANTILES,
) -> ExactLatency:
    """Exact quantiles over every samples file of a run (one per worker), keeping the
    transactions submitted in ``window`` (unix seconds, inclusive) when given."""
    latencies: list[float] = []
    for path in paths:
        samples = read_latency_samples(path)
        if window is None:
            latencies.extend(samples.latency_s)
        else:
            latencies.extend(samples.in_window(*window))
    return summarize(latencies, qs)


def histogram_quantile(
    q: float, buckets: Sequence[tuple[float, float]]
) -> HistogramQuantile | None:
    """Prometheus's ``histogram_quantile(q, ...)`` over cumulative ``(upper bound, count)``
    buckets (any order, ``+Inf`` included or not), with the bounds of the bucket holding the
    rank. None when the histogram is empty. Like Prometheus, the first bucket's lower bound
    is 0 and a rank in the ``+Inf`` bucket gives the highest finite bound as the estimate."""
    if not 0.0 <= q <= 1.0:
        raise LoadgenError(f"quantile q={q}: use a number in [0, 1]")
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    total = ordered[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, cumulative in ordered:
        if cumulative >= rank and cumulative > below:
            if math.isinf(upper):
                return HistogramQuantile(q=q, estimate=lower, lower=lower, upper=upper)
            share = (rank - below) / (cumulative - below)
            return HistogramQuantile(
                q=q, estimate=lower + (upper - lower) * share, lower=lower, upper=upper
            )
        lower, below = upper, cumulative
    return HistogramQuantile(q=q, estimate=lower, lower=lower, upper=math.inf)


def cumulative_buckets(
    latencies: Iterable[float], bounds: Sequence[float]
) -> list[tuple[float, float]]:
    """The cumulative ``(le, count)`` buckets a Prometheus histogram with upper ``bounds``
    (plus ``+Inf``) would hold after observing ``latencies``."""
    edges = [*sorted(bounds), math.inf]
    counts = [0] * len(edges)
    for value in latencies:
        for index, edge in enumerate(edges):
            if value <= edge:
                counts[index] += 1
                break
    running, result = 0, []
    for edge, count in zip(edges, counts, strict=True):
        running += count
        result.append((edge, float(running)))
    return result
