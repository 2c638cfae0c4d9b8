"""Judge a run against the scenario's criteria.

Each criterion the scenario sets gives one ``CriterionResult`` with its value, threshold and
verdict. A criterion whose measurement is missing FAILS and says why (a nightly job must never
pass because a number could not be read). ``safety`` is judged whenever the scenario asks for
it (the default).

Which latency each criterion judges (docs/architecture.md, "Exact latency"):
``max_finality_p50_ms``/``max_finality_p99_ms`` judge node-side finality (each validator's
histogram quantile, then the median over validators), ``max_e2e_p99_ms`` the end-to-end p99,
exact over every acknowledged transaction of the window when the load generator's samples exist.
Finality stays node-side because a validator that a fault cuts off holds the transactions it
acknowledged until the heal: their end-to-end latency measures the fault's length (judged by
``max_recovery_s``), and the median over validators keeps that laggard out of the network's
finality. The report puts the exact end-to-end quantiles beside the node histograms with their
bucket bounds and says, per quantile, why they differ.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.faults.kinds import instantaneous_kinds
from orchestrator.report.model import (
    ByzantineReport,
    CriterionResult,
    FaultResult,
    Measurements,
    SafetyReport,
)
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


def _bound(
    name: str, value: float | None, threshold: float, unit: str, why: str, *, at_least: bool
) -> CriterionResult:
    """``value`` against ``threshold``: a floor (``at_least``) or a ceiling; not measured
    (``value`` None) fails, saying ``why``."""
    if value is None:
        return _missing(name, threshold, unit, why)
    passed = value >= threshold if at_least else value <= threshold
    relation = (">=" if passed else "<") if at_least else ("<=" if passed else ">")
    return CriterionResult(
        name=name,
        threshold=threshold,
        value=value,
        passed=passed,
        unit=unit,
        explanation=f"{_num(value)} {unit} {relation} {_num(threshold)} {unit}",
    )


def _at_least(
    name: str, value: float | None, threshold: float, unit: str, why: str
) -> CriterionResult:
    return _bound(name, value, threshold, unit, why, at_least=True)


def _at_most(
    name: str, value: float | None, threshold: float, unit: str, why: str
) -> CriterionResult:
    return _bound(name, value, threshold, unit, why, at_least=False)


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


def _slowest(
    name: str,
    threshold: float,
    values: Sequence[tuple[str, float | None]],
    *,
    none: str,
    missing: str,
    lead: str,
    tail: str = "",
) -> CriterionResult:
    """The largest of per-fault ``values`` ((label, seconds), in order) against ``threshold``:
    no fault passes saying ``none``; a fault without a value fails the criterion by name
    (``missing`` with ``{names}``); else ``lead`` introduces the largest, ``tail`` follows."""
    if not values:
        return CriterionResult(
            name=name, threshold=threshold, value=None, passed=True, unit="s", explanation=none
        )
    unknown = [label for label, value in values if value is None]
    if unknown:
        return CriterionResult(
            name=name,
            threshold=threshold,
            value=None,
            passed=False,
            unit="s",
            explanation=missing.format(names=", ".join(unknown)),
        )
    label, value = max(values, key=lambda item: item[1] or 0.0)
    seconds = value or 0.0
    passed = seconds <= threshold
    relation = "<=" if passed else ">"
    return CriterionResult(
        name=name,
        threshold=threshold,
        value=seconds,
        passed=passed,
        unit="s",
        explanation=f"{lead} {label} {_num(seconds, 3)} s {relation} {_num(threshold)} s{tail}",
    )


def judge_recovery(faults: Sequence[FaultResult], threshold: float) -> CriterionResult:
    """The slowest recovery among the faults that clear; a fault that never recovered (or
    whose recovery could not be measured) fails the criterion by name."""
    return _slowest(
        "max_recovery_s",
        threshold,
        [
            (f"fault {f.index} ({f.kind} {f.ids})", f.recovery_s)
            for f in faults
            if f.kind not in instantaneous_kinds()
        ],
        none="no fault in this run, so nothing to recover from",
        missing="no recovery measured for {names}: the affected validators did not catch up "
        "and advance after the fault cleared (or the fault never cleared)",
        lead="slowest:",
    )


def judge_commits_resume(byzantine: ByzantineReport | None, threshold: float) -> CriterionResult:
    """The longest stall of commits among the byzantine faults (from each one's start to the
    first commit after its end); a fault after which nothing committed fails by name."""
    faults = byzantine.faults if byzantine is not None else []
    return _slowest(
        "commits_resume_within_s",
        threshold,
        [(f"fault {f.index} ({f.behaviour} {f.attackers})", f.longest_stall_s) for f in faults],
        none="no byzantine fault in this run",
        missing="the honest validators committed nothing after {names} ended (or it never ended)",
        lead="longest time without a commit:",
        tail=f", over {len(faults)} byzantine fault(s)",
    )


def judge_slashing(byzantine: ByzantineReport | None) -> CriterionResult:
    """Every target of a behaviour that equivocates is slashed, nobody without a reason is,
    and every validator applied each (offender, epoch) exactly once (its slashing counter
    equals the pairs in the evidence it committed)."""
    name = "equivocators_slashed_exactly_once_per_epoch"
    faults = byzantine.faults if byzantine is not None else []
    slashings = byzantine.slashings if byzantine is not None else []
    problems: list[str] = []
    for fault in faults:
        if fault.slashing != "required":
            continue
        slashed = {event.validator for event in fault.slashed}
        missing = [i for i in fault.attackers if i not in slashed]
        if missing:
            problems.append(f"fault {fault.index} ({fault.behaviour}): {missing} not slashed")
    deserving = {i for f in faults if f.slashing in ("required", "possible") for i in f.attackers}
    wrong = sorted({event.validator for event in slashings if event.validator not in deserving})
    if wrong:
        problems.append(f"validators {wrong} slashed without equivocating")
    counted = byzantine.slashings_counted if byzantine is not None else {}
    expected = byzantine.slashings_expected if byzantine is not None else {}
    for label, count in sorted(counted.items()):
        if label in expected and count != expected[label]:
            problems.append(
                f"validator {label} counted {count} slashings for the {expected[label]} "
                "(offender, epoch) pairs its committed evidence holds"
            )
    by_offender: dict[int, list[int]] = {}
    for event in slashings:
        by_offender.setdefault(event.validator, []).append(event.epoch)
    shown = "; ".join(
        f"validator {v} in epoch{'s' if len(e) > 1 else ''} {', '.join(map(str, e))}"
        for v, e in sorted(by_offender.items())
    )
    if problems:
        explanation = "; ".join(problems)
    elif not slashings:
        explanation = "no fault made a validator equivocate, and nobody was slashed"
    else:
        explanation = f"slashed once per epoch: {shown}"
        if counted:
            explanation += f"; validators {', '.join(sorted(counted))} each counted exactly that"
    return CriterionResult(
        name=name,
        threshold=True,
        value=float(len(slashings)),
        passed=not problems,
        unit="slashings",
        explanation=explanation,
    )


def judge(
    criteria: CriteriaPlan,
    measurements: Measurements,
    safety: SafetyReport,
    faults: Sequence[FaultResult],
    *,
    platform_note: str = "",
    byzantine: ByzantineReport | None = None,
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
                    "no end-to-end latency for the measured window: no exact samples from the "
                    "load generator and no committed probe (is load.probe enabled?)"
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
    if criteria.commits_resume_within_s is not None:
        results.append(judge_commits_resume(byzantine, criteria.commits_resume_within_s))
    if criteria.equivocators_slashed_exactly_once_per_epoch:
        results.append(judge_slashing(byzantine))
    return results


def verdict(results: Sequence[CriterionResult]) -> bool:
    """The run passes when every criterion passed (no criterion: passes)."""
    return all(result.passed for result in results)
