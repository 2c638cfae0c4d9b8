"""E-divisive means on synthetic series with known breaks: a break is found within a few runs
of it, noise alone rarely gives a change point, and only a change for the worse is a
regression (latency up yes, throughput up no)."""

from __future__ import annotations

import random

import pytest
from history_support import noisy

from orchestrator.history.analysis import is_regression
from orchestrator.history.changepoints import ChangePoint, e_divisive
from orchestrator.history.errors import HistoryUsageError
from orchestrator.history.metrics import metric_named

BREAK = 40
SERIES_FOR_RATES = 100
MAX_FALSE_POSITIVE_RATE = 0.05
"""Stated rate: at most 5 % of noise-only series of 60 runs (3 % noise, with or without
outliers) show a change point; the permutation test runs at p <= 0.01 (measured: 1-2 %)."""


def detection_delay(values: list[float], at: int, limit: int = 20) -> int | None:
    """Runs after the break at which a change point within 2 of it first shows."""
    for seen in range(1, limit + 1):
        found = e_divisive(values[: at + seen])
        if any(abs(change.index - at) <= 2 for change in found):
            return seen
    return None


def test_a_step_down_is_found_at_its_run_with_the_segment_means() -> None:
    values = noisy(random.Random(7), BREAK, 300.0) + noisy(random.Random(8), 20, 270.0)
    (change,) = e_divisive(values)
    assert change.index == BREAK
    assert change.before == pytest.approx(300, rel=0.02)
    assert change.after == pytest.approx(270, rel=0.02)
    assert change.relative_change == pytest.approx(-0.1, abs=0.02)
    assert change.p_value <= 0.01


@pytest.mark.parametrize("outliers", [False, True], ids=["gaussian", "with-outliers"])
def test_a_10_percent_step_is_detected_within_a_few_runs(outliers: bool) -> None:
    delays = []
    for seed in range(20):
        rng = random.Random(1000 + seed)
        values = noisy(rng, BREAK, 100.0, outliers=outliers) + noisy(
            rng, 20, 90.0, outliers=outliers
        )
        delays.append(detection_delay(values, BREAK))
    found = sorted(delay for delay in delays if delay is not None)
    assert len(found) >= 19, delays  # at most one series of twenty needs more than 20 runs
    assert found[len(found) // 2] <= 4  # median: three runs after the break (min_size)
    assert max(found) <= 8, delays


@pytest.mark.parametrize("outliers", [False, True], ids=["gaussian", "with-outliers"])
def test_noise_alone_rarely_gives_a_change_point(outliers: bool) -> None:
    false_positives = sum(
        1
        for seed in range(SERIES_FOR_RATES)
        if e_divisive(noisy(random.Random(seed), 60, 100.0, outliers=outliers))
    )
    assert false_positives / SERIES_FOR_RATES <= MAX_FALSE_POSITIVE_RATE


def test_two_breaks_are_both_found() -> None:
    rng = random.Random(3)
    values = noisy(rng, 30, 100.0) + noisy(rng, 30, 120.0) + noisy(rng, 30, 95.0)
    assert [change.index for change in e_divisive(values)] == [30, 60]


def test_one_odd_run_is_not_a_change_point() -> None:
    values = noisy(random.Random(5), 40, 100.0)
    values[20] = 160.0
    values[-1] = 40.0  # the latest run alone: wait for more evidence
    assert e_divisive(values) == []


def test_the_same_history_gives_the_same_answer() -> None:
    values = noisy(random.Random(11), 25, 100.0) + noisy(random.Random(12), 10, 93.0)
    assert e_divisive(values) == e_divisive(values)


def test_short_and_flat_series_have_no_change_point() -> None:
    assert e_divisive([]) == []
    assert e_divisive([1.0, 2.0, 3.0, 4.0, 5.0]) == []  # fewer than 2 x min_size
    assert e_divisive([7.0] * 30) == []


def test_bad_settings_are_refused() -> None:
    with pytest.raises(HistoryUsageError, match="min_size=1"):
        e_divisive([1.0] * 10, min_size=1)
    with pytest.raises(HistoryUsageError, match="NaN"):
        e_divisive([1.0, float("nan")] * 5)


def test_a_step_up_in_latency_is_a_regression_a_step_up_in_tps_is_not() -> None:
    latency = noisy(random.Random(21), 30, 1000.0) + noisy(random.Random(22), 10, 1200.0)
    (up,) = e_divisive(latency)
    assert is_regression(metric_named("finality_ms.p99"), up, min_change=0.05)
    tps = noisy(random.Random(23), 30, 300.0) + noisy(random.Random(24), 10, 360.0)
    (faster,) = e_divisive(tps)
    assert faster.after > faster.before
    assert not is_regression(metric_named("tps.mean"), faster, min_change=0.05)
    assert is_regression(metric_named("tps.mean"), _flipped(faster), min_change=0.05)


def test_small_or_neutral_changes_are_not_regressions() -> None:
    small = ChangePoint(index=10, p_value=0.005, before=300.0, after=297.0)  # -1 %
    assert not is_regression(metric_named("tps.mean"), small, min_change=0.05)
    from_zero = ChangePoint(index=10, p_value=0.005, before=0.0, after=2.0)
    assert is_regression(metric_named("restarts"), from_zero, min_change=0.05)


def _flipped(change: ChangePoint) -> ChangePoint:
    return ChangePoint(change.index, change.p_value, before=change.after, after=change.before)
