"""Helpers of the history tests: reports with chosen headline metrics, and synthetic series
with known breaks."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator.report.model import (
    E2eLatencyMs,
    FinalityMs,
    Measurements,
    Report,
    SafetyReport,
    TpsMeasurement,
)

PARAMS: dict[str, Any] = {
    "run_id": "ignored",
    "created": "ignored",
    "network": {"validators": 4, "mode": "balanced"},
    "load": {"tps": 300, "duration_s": 60},
    "faults": [],
    "criteria": {"min_tps": 100},
}


def make_report(
    number: int,
    *,
    tps: float | None = 300.0,
    p99: float | None = 1200.0,
    scenario: str = "devnet-smoke",
    platform: str = "local",
    params: dict[str, Any] | None = None,
) -> Report:
    """Run ``number`` of a nightly series: one day apart, commit ``c<number>``."""
    started = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=number)
    return Report(
        run_id=f"{scenario}-{number:03d}",
        scenario=scenario,
        platform=platform,
        params={**PARAMS, "run_id": f"r{number}"} if params is None else params,
        git_commit=f"c{number:03d}" + "0" * 36,
        started=started,
        ended=started + timedelta(minutes=5),
        measurements=Measurements(
            tps=TpsMeasurement(mean=tps, offered=300.0),
            finality_ms=FinalityMs(p50=800.0, p90=1000.0, p99=p99),
            e2e_latency_ms=E2eLatencyMs(p50=900.0, p99=None if p99 is None else p99 + 100),
            timeouts=0,
            restarts=0,
        ),
        safety=SafetyReport(ok=True),
        passed=True,
    )


def noisy(
    rng: random.Random, count: int, mean: float, sd_share: float = 0.03, outliers: bool = False
) -> list[float]:
    """``count`` values around ``mean`` (Gaussian, sd = ``sd_share`` of the mean); with
    ``outliers`` one value in twenty is off by 5 sd."""
    values = []
    for _ in range(count):
        value = rng.gauss(mean, sd_share * mean)
        if outliers and rng.random() < 0.05:
            value += rng.choice((-1, 1)) * 5 * sd_share * mean
        values.append(value)
    return values
