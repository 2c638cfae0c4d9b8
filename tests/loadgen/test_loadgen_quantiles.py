"""Exact quantiles from samples and what a Prometheus histogram says about the same quantile
(``loadgen.quantiles``)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgen.errors import LoadgenError
from loadgen.latency_file import LatencyFileHeader, LatencySampleWriter
from loadgen.metrics import E2E_LATENCY_BUCKETS
from loadgen.quantiles import (
    cumulative_buckets,
    exact_latency,
    exact_quantile,
    histogram_quantile,
    summarize,
)


def test_exact_quantile_interpolates_between_closest_ranks() -> None:
    ordered = [1.0, 2.0, 3.0, 4.0]
    assert exact_quantile(ordered, 0.0) == 1.0
    assert exact_quantile(ordered, 0.5) == 2.5
    assert exact_quantile(ordered, 0.99) == pytest.approx(3.97)
    assert exact_quantile(ordered, 1.0) == 4.0
    assert exact_quantile([], 0.5) is None
    with pytest.raises(LoadgenError, match=r"q=1\.5"):
        exact_quantile(ordered, 1.5)


def test_summarize_gives_quantiles_max_and_mean() -> None:
    result = summarize([0.3, 0.1, 0.2, 0.4, 1.0])
    assert result.count == 5
    assert result.quantile(0.5) == pytest.approx(0.3)
    assert result.quantile(0.99) == pytest.approx(0.976)
    assert (result.max_s, result.mean_s) == (1.0, pytest.approx(0.4))
    empty = summarize([])
    assert (empty.count, empty.quantiles, empty.max_s) == (0, {}, None)


def test_histogram_quantile_matches_prometheus() -> None:
    # 10 observations: 4 <= 0.1, 4 in (0.1, 0.5], 2 in (0.5, 1].
    buckets = [(0.1, 4.0), (0.5, 8.0), (1.0, 10.0), (math.inf, 10.0)]
    median = histogram_quantile(0.5, buckets)
    assert median is not None
    assert (median.lower, median.upper) == (0.1, 0.5)
    assert median.estimate == pytest.approx(0.1 + 0.4 * (5 - 4) / 4)
    top = histogram_quantile(0.99, buckets)
    assert top is not None and (top.lower, top.upper) == (0.5, 1.0)
    assert top.estimate == pytest.approx(0.5 + 0.5 * (9.9 - 8) / 2)
    first = histogram_quantile(0.2, buckets)
    assert first is not None and (first.lower, first.estimate) == (0.0, pytest.approx(0.05))
    assert histogram_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None


def test_a_rank_past_the_last_bound_gives_that_bound() -> None:
    buckets = [(1.0, 1.0), (math.inf, 4.0)]
    result = histogram_quantile(0.9, buckets)
    assert result is not None
    assert (result.estimate, result.lower, result.upper) == (1.0, 1.0, math.inf)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=0.001, max_value=70.0), min_size=1, max_size=300),
    st.sampled_from([0.5, 0.9, 0.99]),
)
def test_the_histogram_bucket_holds_the_exact_order_statistic(
    latencies: list[float], q: float
) -> None:
    buckets = cumulative_buckets(latencies, E2E_LATENCY_BUCKETS)
    result = histogram_quantile(q, buckets)
    assert result is not None
    ordered = sorted(latencies)
    rank_value = ordered[max(0, math.ceil(q * len(ordered)) - 1)]
    assert result.lower <= rank_value <= result.upper
    assert result.estimate is not None and result.lower <= result.estimate <= result.upper


def test_cumulative_buckets_count_like_prometheus() -> None:
    assert cumulative_buckets([0.05, 0.1, 0.2, 5.0], [0.1, 1.0]) == [
        (0.1, 2.0),
        (1.0, 3.0),
        (math.inf, 4.0),
    ]


def test_exact_latency_over_worker_files_and_a_window(tmp_path: Path) -> None:
    paths = []
    for worker in range(2):
        header = LatencyFileHeader(
            run_id="r", worker_index=worker, epoch_unix=1000.0, epoch_mono=0.0
        )
        writer = LatencySampleWriter(tmp_path / f"w{worker}.latency.bin", header)
        for second in range(10):  # submitted at 1000..1009, latency (worker+1) * 0.1 s
            writer.add(float(second), (worker + 1) * 0.1)
        writer.close()
        paths.append(writer.path)
    whole = exact_latency(paths)
    assert whole.count == 20
    assert whole.quantile(0.5) == pytest.approx(0.15)
    assert whole.max_s == pytest.approx(0.2)
    window = exact_latency(paths, window=(1002.0, 1004.0))
    assert window.count == 6
