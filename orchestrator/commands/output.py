"""What the commands print, shared: JSON documents, progress lines of the stages, a plan's
summary, a report's verdict and a simulation's summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from orchestrator.commands.progress import format_progress
from orchestrator.external.simulator import SimRunResult
from orchestrator.report.model import Report
from orchestrator.report.render import ReportFiles
from orchestrator.scenario.plan import Plan, PlannedFault
from orchestrator.stages.events import ProgressEvent

__all__ = [
    "MAX_IDS_SHOWN",
    "echo_json",
    "echo_progress",
    "format_fault",
    "format_ids",
    "outcome_lines",
    "plan_summary",
    "sim_summary",
]

MAX_IDS_SHOWN = 16


def echo_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, sort_keys=False))


def echo_progress(event: ProgressEvent) -> None:
    """One progress line on stderr: ``[  12.3s] measure: height 120, 298.4 tps, t+25s``."""
    typer.echo(
        format_progress(
            event.elapsed_s, event.stage, height=event.height, tps=event.tps, note=event.message
        ),
        err=True,
    )


def outcome_lines(report: Report, files: ReportFiles) -> list[str]:
    """The verdict, every failed criterion with its value, and where the files are."""
    label = " (SIMULATED)" if report.simulated else ""
    lines = [f"{report.scenario}{label}: {'PASSED' if report.passed else 'FAILED'}"]
    for criterion in report.criteria:
        mark = "ok  " if criterion.passed else "FAIL"
        lines.append(f"  {mark} {criterion.name}: {criterion.explanation}")
    if not report.safety.ok:
        for violation in report.safety.violations[:10]:
            lines.append(f"  safety violation ({violation.kind}): {violation.message}")
    lines.append(f"report: {files.html}")
    lines.append(f"        {files.markdown}, {files.json}, {files.junit}")
    return lines


def format_ids(ids: tuple[int, ...]) -> str:
    if len(ids) <= MAX_IDS_SHOWN:
        return str(list(ids))
    head = ", ".join(str(i) for i in ids[:MAX_IDS_SHOWN])
    return f"[{head}, ...] ({len(ids)} validators)"


def format_fault(fault: PlannedFault) -> str:
    until = "open" if fault.end_s is None else f"until {fault.end_s:g}s"
    return (
        f"fault {fault.index}: {fault.kind} {fault.target} -> ids {format_ids(fault.ids)} at "
        f"{fault.start_s:g}s {until} ({fault.fractions.stake:.1%} of stake, "
        f"{fault.fractions.authorities:.1%} of authorities, {fault.fractions.count:.1%} of "
        "validators)"
    )


def plan_summary(plan: Plan) -> str:
    network, load = plan.network, plan.load
    stake = network.stake_spec if isinstance(network.stake_spec, str) else "explicit"
    shape = f"{load.tps:g} tps" if load.shape == "constant" else f"{load.shape} load"
    faults = f"{len(plan.faults)} fault" + ("" if len(plan.faults) == 1 else "s")
    if plan.faults:
        faults += " resolved to ids"
    return (
        f"{plan.name}: {network.validators} validators ({network.authorities} authorities, "
        f"{network.mode} mode, stake {stake}, seed {network.seed}); {shape} for "
        f"{load.duration_s:g}s (measured {load.measure_start_s:g}s-{load.measure_end_s:g}s); "
        f"{faults}"
    )


def sim_summary(result: SimRunResult, directory: Path) -> str:
    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:g} ms"

    lines = [
        f"SIMULATED run {result.run_id} ({result.scenario}): mode {result.mode}, crypto "
        f"{result.crypto}",
        f"  committed height {result.committed_height}, safety violations "
        f"{result.safety_violations}, slashed validators {result.slashed_validators}",
        f"  finality p50 {ms(result.finality_p50_ms)}, p99 {ms(result.finality_p99_ms)}",
        f"  {result.simulated_seconds:g} simulated s in {result.wall_seconds:g} wall s, "
        f"{result.messages_sent} messages",
    ]
    lines += [f"  not simulated: {item}" for item in result.not_simulated]
    lines += [f"  note: {note}" for note in result.notes]
    lines.append(f"  files: {directory}")
    return "\n".join(lines)
