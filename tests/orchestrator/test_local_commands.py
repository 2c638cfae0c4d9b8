"""The stage commands (up, status, load, fault, down) where no testnet is needed: help texts,
bad input (exit 2, one message, no traceback), finding the run, resolving fault targets against
a genesis, and the progress lines. The commands against real processes: tests/e2e."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from aitbc_node.crypto import ModeledScheme
from aitbc_node.genesis import make_testnet_genesis, write_genesis
from orchestrator_support import write_run_state
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.commands.progress import Progress, format_progress
from orchestrator.errors import UsageError
from orchestrator.platforms.local import LocalPlatform
from orchestrator.scenario.voting_power import StakeEntry
from orchestrator.stages.fault import plan_fault, resolve_target

STAGES = ["up", "status", "load", "fault", "down"]


def write_run(root: Path, run_id: str = "r1", validators: int = 4) -> Path:
    """A stopped run: state.json and a real genesis (modeled keys), no process."""
    directory = root / run_id
    (directory / "net").mkdir(parents=True)
    genesis = make_testnet_genesis(
        validators=validators, authorities=validators, seed="1", scheme=ModeledScheme()
    )
    write_genesis(genesis, directory / "net" / "genesis.json")
    (directory / "net" / "admin-token").write_text("token\n")
    write_run_state(directory, validators, chain_id=genesis.chain_id, stopped_at=time.time())
    return directory


@pytest.mark.parametrize("command", STAGES)
def test_every_stage_says_what_it_does_with_an_example(runner: CliRunner, command: str) -> None:
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "Example: aitbc-testnet " + command in " ".join(result.stdout.split())


@pytest.mark.parametrize(
    "args",
    [["status"], ["down"], ["load", "--burst", "10"], ["fault", "heal"]],
)
def test_without_a_run_the_stages_exit_2(
    runner: CliRunner, tmp_path: Path, args: list[str]
) -> None:
    result = runner.invoke(app, [*args, "--run-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert f"no run in {tmp_path}: start one with `aitbc-testnet up SCENARIO`" in result.stderr
    assert "Traceback" not in result.output


def test_an_unknown_run_id_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    write_run(tmp_path)
    result = runner.invoke(app, ["status", "--run-dir", str(tmp_path), "--run-id", "nope"])
    assert result.exit_code == 2
    assert "no run 'nope' in" in result.stderr


def test_status_of_a_stopped_run(runner: CliRunner, tmp_path: Path) -> None:
    write_run(tmp_path)
    result = runner.invoke(app, ["status", "--run-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert '"stopped": true' in result.stdout and '"killed": [\n    0,' in result.stdout
    text = runner.invoke(app, ["status", "--run-dir", str(tmp_path)])
    assert "run r1 (local) STOPPED" in text.stdout
    assert "prometheus http://127.0.0.1:1 NOT answering" in text.stdout


def test_down_of_a_stopped_run_has_nothing_to_stop(runner: CliRunner, tmp_path: Path) -> None:
    write_run(tmp_path)
    result = runner.invoke(app, ["down", "--run-dir", str(tmp_path)])
    assert result.exit_code == 0
    assert "down: run r1 had nothing running" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fault", "partition"], "fault partition needs --target"),
        (["fault", "kill", "--target", "ids 9"], "validator 9 does not exist"),
        (["fault", "delay", "--target", "third"], "--target 'third' is not a target"),
        (["fault", "heal", "--duration", "5s"], "fault heal is instantaneous"),
        (["fault", "pause", "-t", "1", "--duration", "soon"], "--duration: cannot read"),
        (["fault", "partition", "--target", "0,1,2,3"], "cuts nothing"),
        (["load", "--burst", "5", "--tps", "3"], "--burst takes no --tps"),
        (["load", "--duration", "0.5s"], "use at least 1s"),
    ],
)
def test_bad_stage_input_exits_2(
    runner: CliRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    write_run(tmp_path)
    result = runner.invoke(app, [*args, "--run-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_a_stopped_run_is_not_restarted(runner: CliRunner, tmp_path: Path) -> None:
    write_run(tmp_path)
    result = runner.invoke(app, ["fault", "restart", "--run-dir", str(tmp_path)])
    assert result.exit_code == 3
    assert "cannot restart validator 0: run r1 was stopped (aitbc-testnet down)" in result.stderr
    load = runner.invoke(app, ["load", "--detach", "--run-dir", str(tmp_path)])
    assert load.exit_code == 3 and "cannot start a load: run r1 was stopped" in load.stderr


def test_base_port_is_for_the_local_platform_only(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["up", "devnet-smoke", "--platform", "sim", "--base-port", "20000", "--run-dir",
         str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--base-port applies to --platform local only" in result.stderr


# ----------------------------------------------------------------------------- targets


EQUAL4 = tuple(StakeEntry(i, 1_000_000, True) for i in range(4))


def test_targets_resolve_by_voting_power() -> None:
    text, ids = resolve_target("minority-third", EQUAL4, "balanced", 1)
    assert text == "minority-third" and len(ids) == 1 and 0 not in ids
    assert len(resolve_target("supermajority", EQUAL4, "balanced", 1)[1]) == 3
    assert resolve_target("ids 1,3", EQUAL4, "balanced", 1) == ("[1, 3]", (1, 3))
    assert resolve_target("2, 1", EQUAL4, "balanced", 1) == ("[1, 2]", (1, 2))
    assert (
        resolve_target("count 2", EQUAL4, "balanced", 1)[1]
        == resolve_target("count=2", EQUAL4, "balanced", 1)[1]
    )
    with pytest.raises(UsageError, match="count 9 is not between 1 and"):
        resolve_target("count 9", EQUAL4, "balanced", 1)


def test_targets_weigh_stake_not_pods() -> None:
    # validator 3 holds most of the stake: a third of the stake is not "one pod" of four
    lumpy = (*EQUAL4[:3], StakeEntry(3, 6_000_000, True))
    _, ids = resolve_target("minority-third", lumpy, "secure", 1)
    assert 3 not in ids


def test_plan_fault_reads_the_running_genesis(tmp_path: Path) -> None:
    platform = LocalPlatform.attach(write_run(tmp_path))
    fault = plan_fault(platform, "delay", "half", 10.0, {"delay_ms": 80.0, "jitter_ms": 10.0})
    assert fault.kind == "delay" and fault.end_s == 10.0 and len(fault.ids) == 2
    assert fault.params == {"delay_ms": 80.0, "jitter_ms": 10.0}
    assert fault.fractions.stake == pytest.approx(0.5)
    heal = plan_fault(platform, "heal", None, None, {})
    assert heal.ids == (0, 1, 2, 3)


# ----------------------------------------------------------------------------- progress


def test_progress_lines() -> None:
    assert format_progress(3.21, "load", height=12, tps=298.47, note="5s left") == (
        "[   3.2s] load: height 12, 298.5 tps, 5s left"
    )
    assert format_progress(0, "deploying") == "[   0.0s] deploying"
    now = [0.0]
    stream = io.StringIO()
    progress = Progress(stream, interval_s=2.0, clock=lambda: now[0], tty=False)
    progress.stage("waiting")
    now[0] = 1.0
    progress.update(height=1)  # too soon after the stage line: not written
    now[0] = 2.5
    progress.update(height=2)
    progress.done("ready")
    assert stream.getvalue().splitlines() == [
        "[   0.0s] waiting",
        "[   2.5s] waiting: height 2",
        "[   2.5s] ready",
    ]
    tty = io.StringIO()
    live = Progress(tty, clock=lambda: 0.0, tty=True)
    live.stage("a")
    live.update(height=5)
    live.done()
    assert tty.getvalue() == "\r\x1b[2K[   0.0s] a\r\x1b[2K[   0.0s] a: height 5\n"
