"""Judge a run against the scenario's criteria.

Each criterion the scenario sets gives one ``CriterionResult`` with its value, threshold and
verdict. A criterion whose measurement is missing FAILS and says why (a nightly job must never
pass because a number could not be read). ``safety`` is judged whenever the scenario asks for
it (the default).
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.faults.kinds import instantaneous_kinds
from orchestrator.report.model import CriterionResult, FaultResult, Measurements, SafetyReport
from orchestrator.scenario.plan import CriteriaPlan


def _num(value: float, digits: int = 6) -> str:
    """A number for an explanation: ``digits`` significant digits, never an exponent."""
    return f"{value:.0f}" if abs(value) >= 10**digits else f"{value:.{digits}g}"


def _missing(name: str, threshold: float, unit: str, why: str) -> CriterionResult:
    return CriterionResult(
        name=name,
        threshold=threshold,
        value=None,
        passed=False,
        unit=unit,
        explanation=f"not measured: {why}",
    )


def _at_least(
    name: str, value: float | None, threshold: float, unit: str, why: str
) -> CriterionResult:
    if value is None:
        return _missing(name, threshold, unit, why)
    passed = value >= threshold
    relation = ">=" if passed else "<"
    return CriterionResult(
        name=name,
        threshold=threshold,
        value=value,
        passed=passed,
        unit=unit,
        explanation=f"{_num(value)} {unit} {relation} {_num(threshold)} {unit}",
    )


def _at_most(
    name: str, value: float | None, threshold: float, unit: str, why: str
) -> CriterionResult:
    if value is None:
        return _missing(name, threshold, unit, why)
    passed = value <= threshold
    relation = "<=" if passed else ">"
    return CriterionResult(
        name=name,
        threshold=threshold,
        value=value,
        passed=passed,
        unit=unit,
        explanation=f"{_num(value)} {unit} {relation} {_num(threshold)} {unit}",
    )


def judge_safety(safety: SafetyReport) -> CriterionResult:
    if safety.ok:
        explanation = "no violation"
        if safety.checked_height is not None:
            explanation += (
                f": heights 1..{safety.checked_height} identical on validators {safety.validators}"
            )
    else:
        kinds = sorted({violation.kind for violation in safety.violations})
        first = safety.violations[0].message if safety.violations else "safety not established"
        explanation = f"{len(safety.violations)} violation(s) ({', '.join(kinds)}); first: {first}"
    return CriterionResult(
        name="safety", threshold=True, value=safety.ok, passed=safety.ok, explanation=explanation
    )


def judge_recovery(faults: Sequence[FaultResult], threshold: float) -> CriterionResult:
    """The slowest recovery among the faults that clear; a fault that never recovered (or
    whose recovery could not be measured) fails the criterion by name."""
    relevant = [fault for fault in faults if fault.kind not in instantaneous_kinds()]
    if not relevant:
        return CriterionResult(
            name="max_recovery_s",
            threshold=threshold,
            value=None,
            passed=True,
            unit="s",
            explanation="no fault in this run, so nothing to recover from",
        )
    unknown = [fault for fault in relevant if fault.recovery_s is None]
    if unknown:
        names = ", ".join(f"fault {f.index} ({f.kind} {f.ids})" for f in unknown)
        return CriterionResult(
            name="max_recovery_s",
            threshold=threshold,
            value=None,
            passed=False,
            unit="s",
            explanation=f"no recovery measured for {names}: the affected validators did not "
            "catch up and advance after the fault cleared (or the fault never cleared)",
        )
    slowest = max(relevant, key=lambda fault: fault.recovery_s or 0.0)
    value = slowest.recovery_s or 0.0
    passed = value <= threshold
    relation = "<=" if passed else ">"
    return CriterionResult(
        name="max_recovery_s",
        threshold=threshold,
        value=value,
        passed=passed,
        unit="s",
        explanation=f"slowest: fault {slowest.index} ({slowest.kind} {slowest.ids}) "
        f"{_num(value, 3)} s {relation} {_num(threshold)} s",
    )


def judge(
    criteria: CriteriaPlan,
    measurements: Measurements,
    safety: SafetyReport,
    faults: Sequence[FaultResult],
    *,
    platform_note: str = "",
) -> list[CriterionResult]:
    """Every criterion the scenario sets, in a fixed order. ``platform_note``, when given,
    explains every missing measurement instead of the default reason (e.g. "the simulator does
    not measure it")."""

    def why(default: str) -> str:
        return platform_note or default

    results: list[CriterionResult] = []
    if criteria.min_tps is not None:
        results.append(
            _at_least(
                "min_tps",
                measurements.tps.mean,
                criteria.min_tps,
                "tx/s",
                why("no committed-TPS series in Prometheus for the measured window"),
            )
        )
    finality = measurements.finality_ms
    for name, value, threshold in (
        ("max_finality_p50_ms", finality.p50, criteria.max_finality_p50_ms),
        ("max_finality_p99_ms", finality.p99, criteria.max_finality_p99_ms),
    ):
        if threshold is not None:
            results.append(
                _at_most(
                    name,
                    value,
                    threshold,
                    "ms",
                    why("no aitbc_tx_finality_seconds observations in the measured window"),
                )
            )
    if criteria.max_e2e_p99_ms is not None:
        results.append(
            _at_most(
                "max_e2e_p99_ms",
                measurements.e2e_latency_ms.p99,
                criteria.max_e2e_p99_ms,
                "ms",
                why(
                    "no committed probe transaction in the measured window (is load.probe enabled?)"
                ),
            )
        )
    if criteria.safety:
        results.append(judge_safety(safety))
    if criteria.max_recovery_s is not None:
        results.append(judge_recovery(faults, criteria.max_recovery_s))
    if criteria.max_restarts is not None:
        results.append(
            _at_most(
                "max_restarts",
                None if measurements.restarts is None else float(measurements.restarts),
                float(criteria.max_restarts),
                "restarts",
                why("process start times of the validators are not in Prometheus"),
            )
        )
    return results


def verdict(results: Sequence[CriterionResult]) -> bool:
    """The run passes when every criterion passed (no criterion: passes)."""
    return all(result.passed for result in results)
