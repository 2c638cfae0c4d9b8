"""`aitbc-testnet run` end to end: real validators, a real Prometheus, a real Locust.

Each campaign test runs the CLI as a subprocess (conftest's ``cli``, as CI and `make demo` do)
into the ``run_root`` --run-dir, whose finalizer stops by pid whatever a run left behind (the
campaign itself brings every run down, which the tests check). Each test stays under 2.5
minutes on an idle machine; the bounds below are far above that, for busy ones.
"""

from __future__ import annotations

import json
import os
import re
import socket
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_support import QUICK_BOUND_S, SPEED_FREE, needs_prometheus

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

CAMPAIGN_TIMEOUT_S = 900.0
"""A bound on one campaign (about two minutes on an idle machine; a busy one takes longer)."""


@pytest.fixture
def aitbc(cli: Any) -> Callable[..., Any]:
    """``aitbc(*args, env=None, timeout=...)`` runs the CLI (conftest's ``cli``) to the end."""

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = CAMPAIGN_TIMEOUT_S
    ) -> Any:
        return cli.run(*args, timeout_s=timeout, env=env)

    return run


def campaign(
    aitbc: Callable[..., Any], scenario: str, run_root: Path, out: Path, *sets: str
) -> tuple[Any, dict]:
    flags = [item for value in sets for item in ("--set", value)]
    result = aitbc("run", scenario, "--run-dir", str(run_root), "--out", str(out), *flags)
    report_path = out / "report.json"
    assert report_path.is_file(), f"no report:\n{result.output}"
    return result, json.loads(report_path.read_text())


def assert_run_is_down(cli: Any, run_root: Path) -> None:
    alive = cli.alive_processes(run_root)
    assert not alive, f"`run` left processes running: {alive}"


@needs_prometheus
def test_devnet_smoke_passes_with_plots(
    aitbc: Callable[..., Any], cli: Any, run_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result, report = campaign(aitbc, "devnet-smoke", run_root, out, *SPEED_FREE)
    assert result.code == 0, result.output
    assert report["passed"] is True
    assert "devnet-smoke: PASSED" in result.stdout
    assert f"report: {out / 'report.html'}" in result.stdout
    html = (out / "report.html").read_text()
    assert len(re.findall(r"<svg ", html)) == 3
    assert 'class="fault"' in html  # the partition window is shaded
    tps = report["measurements"]["tps"]
    assert tps["mean"] > 0 and tps["offered"] > 0
    assert tps["blocks_agree"] is True, tps["cross_check"]
    assert report["safety"]["ok"] is True
    assert report["faults"][0]["kind"] == "partition"
    assert report["faults"][0]["recovery_s"] is not None
    junit = (out / "junit.xml").read_text()
    assert junit.count("<testcase ") == len(report["criteria"])  # safety is one of them
    for stage in ("up", "ready", "load", "measure", "collect", "report", "down"):
        assert f"] {stage}" in result.stderr, stage
    assert_run_is_down(cli, run_root)


@needs_prometheus
def test_crash_recovery_reports_the_killed_validators_recovery(
    aitbc: Callable[..., Any], cli: Any, run_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result, report = campaign(aitbc, "crash-recovery", run_root, out, *SPEED_FREE)
    assert result.code == 0, result.output
    (kill,) = [fault for fault in report["faults"] if fault["kind"] == "kill"]
    assert kill["applied_verified"] and kill["cleared_verified"]
    assert kill["recovery_s"] is not None and kill["recovery_s"] > 0
    assert report["measurements"]["restarts"] == 0  # the planned restart does not count
    html = (out / "report.html").read_text()
    assert f'class="recovery">{kill["recovery_s"]:.4g}<' in html
    assert_run_is_down(cli, run_root)


ALWAYS_ACT = {
    "withhold-votes": None,
    "replay": {"stale_message", "misdirected_vote"},
    "wrong-chain": {"bad_vote_signature", "bad_timeout_signature", "bad_proposal_signature"},
    "registration-flood": {"registration_refused"},
    "equivocate": None,
    "unstake-escape": None,
    "flood": {"round_too_far_ahead", "oversized_message"},
}
"""The suite's behaviours that act in every round they vote in or on a timer, and what honest
validators refuse of each (None: nothing to refuse; it shows as evidence and slashing)."""
AS_LEADER = {
    "silent-leader": None,
    "selective-proposal": None,
    "tamper-certificate": {"qc_bad_signature", "qc_bad_signers"},
    "timestamp-skew": {"timestamp_in_future"},
    "invalid-batch": {"invalid_batch"},
}
"""Behaviours that act as leader, run by two attackers: each gets a turn in most runs, not in
all (the report says when one had none). stale-fallback-qc and tc-high-qc-swap act only as the
fallback leader after a timeout certificate: often not at all in 5 s."""


@needs_prometheus
def test_byzantine_suite_passes_and_proves_each_behaviour(
    aitbc: Callable[..., Any], cli: Any, run_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    # commits must resume after every behaviour (a stall never ends: no value, the criterion
    # fails); how soon is this machine's speed under the other suites' load: bound out of reach
    result, report = campaign(
        aitbc, "byzantine-suite", run_root, out, "criteria.commits_resume_within_s=600"
    )
    assert result.code == 0, result.output
    assert report["passed"] is True and report["schema_minor"] >= 1
    assert report["safety"]["ok"] is True, report["safety"]
    assert report["measurements"]["restarts"] == 0
    byzantine = report["byzantine"]
    faults = {f["index"]: f for f in byzantine["faults"]}
    assert len(faults) == len(report["params"]["faults"])
    assert len({f["behaviour"] for f in faults.values()}) == 14  # every behaviour of the node
    for fault in faults.values():
        assert fault["actions"] is not None and fault["longest_stall_s"] is not None, fault
        if fault["behaviour"] in ALWAYS_ACT:
            assert fault["actions"] > 0, fault
        expected = {**ALWAYS_ACT, **AS_LEADER}.get(fault["behaviour"])
        if expected is not None and fault["actions"] > 0:
            assert expected & set(fault["rejected"]), fault
    assert sum(f["actions"] for f in faults.values() if f["behaviour"] in AS_LEADER) > 0
    slashed = {(e["validator"], e["epoch"]) for e in byzantine["slashings"]}
    assert {v for v, _ in slashed} >= {4, 5}  # unstake-escape's and equivocate's attackers
    assert byzantine["slashings_counted"] == byzantine["slashings_expected"]
    assert len(byzantine["slashings_counted"]) == 7
    (equivocate,) = [f for f in report["faults"] if f["kind"] == "equivocate"]
    assert equivocate["behaviour"] == "equivocate" and equivocate["slashed"] is True
    assert "slashed: yes" in (out / "report.md").read_text()
    assert "## Byzantine behaviours" in (out / "report.md").read_text()
    assert '<table id="byzantine">' in (out / "report.html").read_text()
    assert_run_is_down(cli, run_root)


def test_byzantine_suite_on_the_simulator(aitbc: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = aitbc(
        "run", "byzantine-suite", "--platform", "sim", "--run-dir", str(tmp_path / "runs"),
        "--out", str(out), timeout=QUICK_BOUND_S,
    )  # fmt: skip
    assert result.code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["simulated"] is True and report["passed"] is True
    faults = report["byzantine"]["faults"]
    assert len({f["behaviour"] for f in faults}) == 14
    assert all(f["longest_stall_s"] is not None for f in faults)
    acted = {f["behaviour"] for f in faults if f["actions"]}
    assert acted >= {"withhold-votes", "replay", "wrong-chain", "flood", "equivocate"}
    slashed = {e["validator"] for e in report["byzantine"]["slashings"]}
    assert slashed >= {4, 5}


@needs_prometheus
def test_unmeetable_criterion_exits_1_naming_it(
    aitbc: Callable[..., Any], cli: Any, run_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result, report = campaign(
        aitbc, "devnet-smoke", run_root, out, "criteria.min_tps=1000000000", "load.duration=25s",
        "load.warmup=5s", "load.cooldown=3s", "faults=[]",
    )  # fmt: skip
    assert result.code == 1, result.output
    assert report["passed"] is False
    (failed,) = [c for c in report["criteria"] if not c["passed"]]
    assert failed["name"] == "min_tps" and failed["threshold"] == 1e9
    assert failed["value"] is not None and failed["value"] > 0
    assert "FAIL min_tps" in result.stdout
    markdown = (out / "report.md").read_text()
    assert f"`min_tps` (value {failed['value']:.4g}, threshold 1000000000)" in markdown
    junit = (out / "junit.xml").read_text()
    assert 'name="min_tps"' in junit and "<failure" in junit
    assert_run_is_down(cli, run_root)


def test_bad_field_exits_2_with_file_line_and_field(
    aitbc: Callable[..., Any], tmp_path: Path
) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(
        textwrap.dedent(
            """\
            name: bad
            network:
              validators: 4
              authorities: 4
              colour: blue
            """
        )
    )
    result = aitbc("run", str(scenario), "--run-dir", str(tmp_path / "runs"), timeout=QUICK_BOUND_S)
    assert result.code == 2, result.output
    assert f"{scenario}:5: network.colour:" in result.stderr
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_prometheus_missing_exits_3_with_the_install_hint(
    aitbc: Callable[..., Any], tmp_path: Path
) -> None:
    env = {**os.environ, "PATH": str(tmp_path / "empty-bin")}
    result = aitbc(
        "run", "devnet-smoke", "--run-dir", str(tmp_path / "runs"), env=env, timeout=QUICK_BOUND_S
    )
    assert result.code == 3, result.output
    assert "prometheus" in result.stderr
    assert "apt-get install -y prometheus" in result.stderr
    assert "Traceback" not in result.stderr


@needs_prometheus
def test_a_taken_port_exits_3_saying_what_to_do(aitbc: Callable[..., Any], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = aitbc(
            "run", "devnet-smoke", "--run-dir", str(tmp_path / "runs"),
            "--base-port", str(port), timeout=QUICK_BOUND_S,
        )  # fmt: skip
    assert result.code == 3, result.output
    assert f"port {port}" in result.stderr and "is taken" in result.stderr
    assert "--base-port" in result.stderr


@needs_prometheus
def test_keep_then_collect_measures_the_live_run(
    aitbc: Callable[..., Any], run_root: Path, tmp_path: Path
) -> None:
    shortened = ["load.duration=24s", "load.warmup=4s", "load.cooldown=3s", "faults.0.at=8s",
                 "faults.0.duration=5s", *SPEED_FREE]  # fmt: skip
    flags = [item for value in shortened for item in ("--set", value)]
    result = aitbc(
        "run", "devnet-smoke", "--run-dir", str(run_root), "--out", str(tmp_path / "first"),
        "--run-id", "kept", "--keep", *flags,
    )  # fmt: skip
    assert result.code == 0, result.output
    assert "the testnet still runs: aitbc-testnet down --run-id kept" in result.stdout
    collected = aitbc(
        "collect", "--run-dir", str(run_root), "--run-id", "kept", "--out", str(tmp_path / "again"),
        timeout=QUICK_BOUND_S,
    )  # fmt: skip
    assert collected.code == 0, collected.output
    again = json.loads((tmp_path / "again" / "report.json").read_text())
    first = json.loads((tmp_path / "first" / "report.json").read_text())
    assert again["run_id"] == first["run_id"] == "kept"
    assert again["measured_window"] == first["measured_window"]
    assert again["measurements"]["tps"]["mean"] == pytest.approx(
        first["measurements"]["tps"]["mean"], rel=0.02
    )
    assert [f["kind"] for f in again["faults"]] == ["partition"]
    assert again["faults"][0]["recovery_s"] is not None
    assert (tmp_path / "again" / "artifacts" / "load" / "probe.jsonl").is_file()
