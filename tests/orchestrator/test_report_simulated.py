"""`run --platform sim`: the simulator's result as a report labelled simulated."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from orchestrator_support import needs_simulator
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.external.simulator import SimRunResult
from orchestrator.scenario.loader import load_scenario
from orchestrator.scenario.plan import Plan, resolve_plan
from orchestrator.stages.simulate import simulated_report


def sim_result(**changes: object) -> SimRunResult:
    raw = {
        "finality_ms": {"p50": 650.0, "p90": 700.0, "p99": 900.0},
        "timeouts": 3,
        "state_roots_agree": True,
        "partitions": [{"start_s": 20.0, "end_s": 30.0, "resumed_after_heal_s": 4.5}],
    }
    values: dict[str, object] = {
        "run_id": "r1",
        "scenario": "devnet-smoke",
        "command": ("python", "-m", "aitbc_node.cli", "sim"),
        "returncode": 0,
        "committed_height": 120,
        "safety_violations": 0,
        "slashed_validators": 0,
        "slashed_ids": (),
        "simulated_seconds": 60.0,
        "wall_seconds": 0.5,
        "messages_sent": 1000,
        "mode": "balanced",
        "crypto": "modeled",
        "finality_p50_ms": 650.0,
        "finality_p99_ms": 900.0,
        "notes": ("load is modelled",),
        "not_simulated": (),
        "raw": raw,
    }
    values.update(changes)
    return SimRunResult(**values)  # type: ignore[arg-type]  # keyword values of mixed types


def plan_of(name: str, *sets: str) -> Plan:
    return resolve_plan(load_scenario(name, sets), platform="sim", run_id="r1")


def test_simulated_report_judges_what_the_simulator_measures() -> None:
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    report = simulated_report(plan_of("devnet-smoke"), sim_result(), moment, moment)
    assert report.simulated and report.platform == "sim" and report.image_tag == "sim"
    assert report.measurements.finality_ms.p90 == 700.0
    assert report.faults[0].recovery_s == 4.5
    results = {c.name: c for c in report.criteria}
    assert results["max_finality_p99_ms"].passed
    assert results["max_recovery_s"].passed
    assert results["safety"].passed
    # committed TPS and restarts are not modelled: those criteria fail and say why
    assert not results["min_tps"].passed
    assert "simulator does not measure it" in results["min_tps"].explanation
    assert not report.passed
    assert "SIMULATED" in report.notes[0]


def test_simulated_equivocation_must_be_slashed() -> None:
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    plan = plan_of("byzantine")
    slashed = simulated_report(
        plan, sim_result(slashed_validators=1, slashed_ids=(1,)), moment, moment
    )
    assert slashed.safety.ok and slashed.faults[0].slashed is True
    missed = simulated_report(plan, sim_result(), moment, moment)
    assert not missed.safety.ok
    assert missed.safety.violations[0].kind == "not_slashed"
    diverged = simulated_report(plan, sim_result(safety_violations=2), moment, moment)
    assert diverged.safety.violations[0].kind == "divergence"


@needs_simulator
def test_run_platform_sim_writes_a_simulated_report(tmp_path: Path, runner: CliRunner) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "run", "devnet-smoke", "--platform", "sim", "--run-dir", str(tmp_path / "runs"),
            "--out", str(out), "--set", "sim.blocks=30",
            "--set", "criteria.min_tps=null", "--set", "criteria.max_restarts=null",
            "--set", "criteria.max_finality_p99_ms=null", "--set", "criteria.max_recovery_s=null",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "devnet-smoke (SIMULATED): PASSED" in result.output
    document = json.loads((out / "report.json").read_text())
    assert document["simulated"] is True and document["platform"] == "sim"
    assert "SIMULATED" in (out / "report.html").read_text()
    assert (out / "artifacts" / "sim-result.json").is_file()

    result = runner.invoke(
        app,
        ["run", "devnet-smoke", "--platform", "sim", "--run-dir", str(tmp_path / "runs"),
         "--out", str(tmp_path / "out2"), "--set", "sim.blocks=30"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "FAIL min_tps: not measured" in result.output
