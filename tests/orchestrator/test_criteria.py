"""criteria.py: every criterion judged with value and threshold; missing measurements fail."""

from __future__ import annotations

import dataclasses

import pytest

from orchestrator.measure.criteria import judge, judge_recovery, judge_safety, verdict
from orchestrator.report.model import (
    E2eLatencyMs,
    FaultResult,
    FinalityMs,
    Measurements,
    SafetyReport,
    SafetyViolation,
    TpsMeasurement,
)
from orchestrator.scenario.plan import CriteriaPlan

ALL = CriteriaPlan(
    min_tps=180,
    max_finality_p50_ms=1500,
    max_finality_p99_ms=3000,
    max_e2e_p99_ms=4000,
    safety=True,
    max_recovery_s=30,
    max_restarts=0,
)
NONE = CriteriaPlan(
    min_tps=None,
    max_finality_p50_ms=None,
    max_finality_p99_ms=None,
    max_e2e_p99_ms=None,
    safety=False,
    max_recovery_s=None,
    max_restarts=None,
)
GOOD = Measurements(
    tps=TpsMeasurement(mean=300.0),
    finality_ms=FinalityMs(p50=900.0, p90=1200.0, p99=2500.0),
    e2e_latency_ms=E2eLatencyMs(p50=1000.0, p99=3000.0),
    restarts=0,
)
SAFE = SafetyReport(ok=True, checked_height=100, validators=[0, 1, 2, 3])


def fault(index: int, recovery: float | None, kind: str = "partition") -> FaultResult:
    return FaultResult(
        index=index, kind=kind, target="minority-third", ids=[1], start=20, end=30,
        recovery_s=recovery,
    )  # fmt: skip


def by_name(results: list) -> dict:
    return {result.name: result for result in results}


def test_every_criterion_passes_with_value_and_threshold() -> None:
    results = judge(ALL, GOOD, SAFE, [fault(0, 9.5)])
    assert [r.name for r in results] == [
        "min_tps",
        "max_finality_p50_ms",
        "max_finality_p99_ms",
        "max_e2e_p99_ms",
        "safety",
        "max_recovery_s",
        "max_restarts",
    ]
    assert all(r.passed for r in results)
    named = by_name(results)
    assert (named["min_tps"].value, named["min_tps"].threshold) == (300.0, 180)
    assert (named["max_finality_p99_ms"].value, named["max_finality_p99_ms"].threshold) == (
        2500.0,
        3000,
    )
    assert named["max_recovery_s"].value == 9.5
    assert named["max_restarts"].value == 0
    assert verdict(results)


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("min_tps", {"tps": TpsMeasurement(mean=179.9)}),
        ("max_finality_p50_ms", {"finality_ms": FinalityMs(p50=1500.1, p99=2000.0)}),
        ("max_finality_p99_ms", {"finality_ms": FinalityMs(p50=900.0, p99=3000.5)}),
        ("max_e2e_p99_ms", {"e2e_latency_ms": E2eLatencyMs(p99=4001.0)}),
        ("max_restarts", {"restarts": 1}),
    ],
)
def test_a_value_beyond_its_threshold_fails_that_criterion_only(name: str, change: dict) -> None:
    results = by_name(judge(ALL, GOOD.model_copy(update=change), SAFE, [fault(0, 1.0)]))
    assert not results[name].passed
    assert results[name].value is not None
    assert str(results[name].threshold).rstrip("0").rstrip(".") in results[name].explanation
    assert [n for n, r in results.items() if not r.passed] == [name]
    assert not verdict(list(results.values()))


def test_boundary_values_pass() -> None:
    edge = GOOD.model_copy(
        update={
            "tps": TpsMeasurement(mean=180.0),
            "finality_ms": FinalityMs(p50=1500.0, p99=3000.0),
            "e2e_latency_ms": E2eLatencyMs(p99=4000.0),
        }
    )
    assert verdict(judge(ALL, edge, SAFE, [fault(0, 30.0)]))


def test_missing_measurements_fail_with_an_explanation() -> None:
    results = by_name(judge(ALL, Measurements(), SAFE, [fault(0, 1.0)]))
    for name in ("min_tps", "max_finality_p50_ms", "max_finality_p99_ms", "max_e2e_p99_ms",
                 "max_restarts"):  # fmt: skip
        assert not results[name].passed, name
        assert results[name].value is None
        assert results[name].explanation.startswith("not measured: "), name
    assert "Prometheus" in results["min_tps"].explanation
    assert "probe" in results["max_e2e_p99_ms"].explanation


def test_platform_note_explains_missing_measurements() -> None:
    note = "the simulator does not measure it"
    results = by_name(judge(ALL, Measurements(), SAFE, [], platform_note=note))
    assert results["min_tps"].explanation == f"not measured: {note}"
    assert not results["min_tps"].passed


def test_criteria_not_set_are_not_judged() -> None:
    assert judge(NONE, Measurements(), SAFE, []) == []
    only_tps = dataclasses.replace(NONE, min_tps=10.0)
    assert [r.name for r in judge(only_tps, GOOD, SAFE, [])] == ["min_tps"]
    assert verdict([])


def test_safety_violation_fails_and_names_the_first() -> None:
    unsafe = SafetyReport(
        ok=False,
        violations=[
            SafetyViolation(kind="divergence", height=7, message="height 7: different blocks"),
            SafetyViolation(kind="probe_missing", message="probe ab: missing"),
        ],
    )
    result = judge_safety(unsafe)
    assert (result.passed, result.value, result.threshold) == (False, False, True)
    assert "2 violation(s) (divergence, probe_missing)" in result.explanation
    assert "height 7" in result.explanation
    assert judge_safety(SAFE).explanation.startswith("no violation: heights 1..100")


def test_recovery_takes_the_slowest_fault_and_fails_an_unrecovered_one() -> None:
    slowest = judge_recovery([fault(0, 3.0), fault(1, 31.0), fault(2, None, kind="heal")], 30)
    assert (slowest.passed, slowest.value) == (False, 31.0)
    assert "fault 1" in slowest.explanation
    unrecovered = judge_recovery([fault(0, 3.0), fault(3, None, kind="kill")], 30)
    assert not unrecovered.passed
    assert unrecovered.value is None
    assert "fault 3 (kill [1])" in unrecovered.explanation


def test_recovery_without_faults_passes_and_says_why() -> None:
    result = judge_recovery([fault(0, None, kind="heal")], 30)
    assert result.passed
    assert result.value is None
    assert "no fault" in result.explanation
