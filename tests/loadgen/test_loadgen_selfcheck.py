"""The load generator's self check (``loadgen.selfcheck``): behind schedule or CPU saturated
says "load generator saturated" with the figures."""

from __future__ import annotations

import pytest

from loadgen.metrics import LoadgenTotals
from loadgen.selfcheck import CpuMeter, check_saturation


def totals(offered: int, sent: int, resent: int = 0) -> LoadgenTotals:
    return LoadgenTotals(
        offered=offered,
        sent=sent,
        acked=sent,
        missed=max(0, offered - sent + resent),
        resent=resent,
        backoffs=0,
        rejected={},
        probes={},
        e2e_latency_count=0,
        e2e_latency_sum_s=0.0,
    )


def meter(cpu_per_second: list[float]) -> CpuMeter:
    cpu = CpuMeter()
    used = 0.0
    cpu.sample(0.0, used)
    for second, share in enumerate(cpu_per_second, start=1):
        used += share
        cpu.sample(float(second), used)
    return cpu


def test_cpu_meter_gives_mean_and_peak() -> None:
    cpu = meter([0.5, 1.0, 0.3, 0.2])
    assert cpu.mean == pytest.approx(0.5)
    assert cpu.peak == pytest.approx(1.0)
    assert cpu.wall_s == 4.0
    assert CpuMeter().mean is None


def test_a_generator_that_kept_up_is_not_saturated() -> None:
    check = check_saturation(totals(10_000, 9_900), meter([0.4] * 10))
    assert not check.saturated
    assert check.shortfall_ratio == pytest.approx(0.01)
    assert check.verdict.startswith("load generator kept up: 1.0% short")


def test_behind_schedule_is_saturation() -> None:
    check = check_saturation(totals(10_000, 8_200, resent=200), meter([0.5] * 10))
    assert check.saturated
    assert check.first_sends == 8_000
    assert check.verdict == (
        "load generator saturated: behind schedule: sent 8000 of 10000 offered transactions "
        "(20.0% short, tolerance 5%)"
    )


def test_a_busy_cpu_is_saturation_even_on_schedule() -> None:
    check = check_saturation(totals(1_000, 1_000), meter([0.95] * 5 + [1.0] * 5))
    assert check.saturated
    assert "CPU saturated: 98% of one core on average over 10 s" in check.verdict
    assert check.cpu_peak == pytest.approx(1.0)


def test_nothing_offered_says_so() -> None:
    check = check_saturation(totals(0, 0), CpuMeter())
    assert not check.saturated and check.shortfall_ratio is None
    assert "n/a short" in check.verdict
