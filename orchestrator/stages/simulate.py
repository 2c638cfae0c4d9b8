"""The simulated campaign: a plan run through the simulator (a platform with ``Simulator``),
turned into the same report as a live run, labelled simulated: finality, safety, slashing and
partition recovery as the simulator measured them."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.external.simulator import SimRunResult
from orchestrator.faults.kinds import fault_kind, may_be_slashed, must_be_slashed
from orchestrator.measure.byzantine import ByzantineWindow, simulated_byzantine
from orchestrator.measure.criteria import judge, verdict
from orchestrator.platforms.capabilities import Artifacts, Simulator, require
from orchestrator.report.model import (
    FaultResult,
    FinalityMs,
    Measurements,
    Report,
    ResourceUsage,
    SafetyReport,
    SafetyViolation,
    TpsMeasurement,
)
from orchestrator.report.provenance import git_commit
from orchestrator.report.render import write_outputs
from orchestrator.scenario.plan import Plan
from orchestrator.stages.collect import ARTIFACTS_DIR, CollectResult
from orchestrator.stages.events import ProgressEvent, ProgressSink

__all__ = ["run_simulated", "simulated_report"]


def simulated_report(
    plan: Plan, result: SimRunResult, started: datetime, ended: datetime
) -> Report:
    """The report of a simulator run: finality, safety, slashing and partition recovery as the
    simulator measured them; what it does not model (committed TPS, client latency, process
    restarts) is missing, so criteria on it fail and say so."""
    raw: Mapping[str, Any] = result.raw
    finality = raw.get("finality_ms", {}) if isinstance(raw.get("finality_ms"), dict) else {}
    measurements = Measurements(
        window_s=result.simulated_seconds,
        tps=TpsMeasurement(cross_check="not counted: the simulator reports no transactions"),
        finality_ms=FinalityMs(
            p50=finality.get("p50"), p90=finality.get("p90"), p99=finality.get("p99")
        ),
        timeouts=raw.get("timeouts"),
        mode=result.mode,
        slashing_events=result.slashed_validators,
        final_heights={"max": result.committed_height},
        resources=_modeled_cpu(raw, plan.network.validators, result.committed_height),
        notes=[*result.notes, *(f"not simulated: {item}" for item in result.not_simulated)],
    )
    violations = []
    if result.safety_violations:
        violations.append(
            SafetyViolation(
                kind="divergence",
                message=f"the simulator found {result.safety_violations} safety violation(s)",
            )
        )
    if raw.get("state_roots_agree") is False:
        violations.append(
            SafetyViolation(kind="divergence", message="the validators' state roots differ")
        )
    partitions = list(raw.get("partitions", []) or [])
    faults: list[FaultResult] = []
    for fault in plan.faults:
        recovery = None
        kind = fault_kind(fault.kind)
        if kind.two_sided:
            match = next(
                (p for p in partitions if abs(float(p.get("start_s", -1)) - fault.start_s) < 1e-6),
                None,
            )
            if match is not None and match.get("resumed_after_heal_s") is not None:
                recovery = float(match["resumed_after_heal_s"])
        slashed = None
        if may_be_slashed(fault.kind, fault.behaviour):
            slashed = all(i in result.slashed_ids for i in fault.ids)
            if not slashed and must_be_slashed(fault.kind, fault.behaviour):
                violations.append(
                    SafetyViolation(
                        kind="not_slashed",
                        message=f"fault {fault.index}: the equivocators {list(fault.ids)} were "
                        f"not all slashed (slashed: {list(result.slashed_ids)})",
                    )
                )
        faults.append(
            FaultResult(
                index=fault.index,
                kind=fault.kind,
                target=fault.target,
                ids=list(fault.ids),
                start=fault.start_s,
                end=fault.end_s,
                behaviour=fault.behaviour,
                recovery_s=recovery,
                recovered=None if kind.instantaneous else recovery is not None,
                slashed=slashed,
            )
        )
    safety = SafetyReport(
        ok=not violations,
        violations=violations,
        validators=list(range(plan.network.validators)),
        notes=["checked inside the simulator: every honest validator's committed blocks"],
    )
    byzantine = simulated_byzantine(
        [
            ByzantineWindow(
                index=fault.index,
                behaviour=fault.behaviour,
                attackers=fault.ids,
                planned_start_s=fault.start_s,
                planned_end_s=fault.end_s if fault.end_s is not None else plan.load.duration_s,
                cleared_at=None,
            )
            for fault in plan.faults
            if fault_kind(fault.kind).byzantine
        ],
        attacks if isinstance(attacks := raw.get("byzantine"), Mapping) else {},
        plan.network.validators,
    )
    criteria = judge(
        plan.criteria,
        measurements,
        safety,
        faults,
        platform_note="the simulator does not measure it (run on --platform local)",
        byzantine=byzantine,
    )
    return Report(
        run_id=plan.run_id,
        scenario=plan.name,
        description=plan.description,
        platform="sim",
        simulated=True,
        params=plan.to_dict(),
        git_commit=git_commit(),
        image_tag="sim",
        started=started,
        ended=ended,
        load_started=None,
        measured_window=None,
        measurements=measurements,
        faults=faults,
        byzantine=byzantine,
        safety=safety,
        criteria=criteria,
        passed=verdict(criteria),
        notes=[
            "SIMULATED: numbers come from the deterministic discrete-event simulator "
            f"({result.simulated_seconds:g} simulated s, crypto {result.crypto}), not from a "
            "running testnet; times are simulated seconds"
        ],
    )


def _modeled_cpu(raw: Mapping[str, Any], validators: int, height: int) -> ResourceUsage | None:
    """CPU per committed block as the simulator charged it: the cost model's signature
    operations of every node (``charged_cpu_seconds``), per validator and block."""
    charged = raw.get("charged_cpu_seconds")
    if not isinstance(charged, int | float) or height <= 0 or validators <= 0:
        return None
    return ResourceUsage(
        validators=validators, cpu_ms_per_block=charged * 1000 / validators / height
    )


def run_simulated(
    plan: Plan,
    platform: object,
    out_dir: Path,
    *,
    on_progress: ProgressSink | None = None,
    timeout_s: float | None = None,
    run_dir: Path | None = None,
) -> CollectResult:
    """Run ``plan`` in the simulator and write its (simulated) report into ``out_dir``."""
    simulator = require(platform, Simulator, "simulate a scenario")
    began = time.monotonic()
    started = datetime.now(UTC)
    budget = timeout_s if timeout_s is not None else simulator.budget_s(plan)
    if on_progress is not None:
        on_progress(
            ProgressEvent(
                "simulate",
                0.0,
                message=f"{plan.network.validators} validators, {plan.sim.blocks} blocks, "
                f"crypto {plan.sim.crypto} (up to {budget:g} s)",
            )
        )
    result = simulator.run(plan, budget)
    if isinstance(platform, Artifacts):
        platform.collect_artifacts(out_dir / ARTIFACTS_DIR)
    report = simulated_report(plan, result, started, datetime.now(UTC))
    if on_progress is not None:
        on_progress(
            ProgressEvent(
                "report",
                time.monotonic() - began,
                height=result.committed_height,
                message=f"writing the simulated report in {out_dir}",
            )
        )
    files = write_outputs(report, out_dir)
    return CollectResult(report=report, files=files, run_dir=run_dir, kept=False)
