"""``aitbc-testnet history add | list | show | check | trend`` through the CLI, on report.json
files: exit codes (0, 1 on a new regression naming its commit range, 2 on bad input), text
and JSON output, and the exact command lines docs/ci/nightly.yml and the chart's nightly
script call."""

from __future__ import annotations

import json
import random
import re
import shlex
from pathlib import Path

import pytest
import yaml
from history_support import make_report, noisy
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.report.model import write_report

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "docs" / "ci" / "nightly.yml"
CHART_SCRIPT = ROOT / "helm" / "aitbc-testnet" / "templates" / "nightly-configmap.yaml"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def history_of(runner: CliRunner, tmp_path: Path, tps: list[float]) -> Path:
    """A history with one run per ``tps`` value, added through `history add`."""
    history = tmp_path / "h" / "history.sqlite"
    for number, value in enumerate(tps):
        folder = tmp_path / "reports" / f"{number:03d}"
        write_report(make_report(number, tps=value), folder)
        result = runner.invoke(app, ["history", "add", str(folder), "--history", str(history)])
        assert result.exit_code == 0, result.output
    return history


def test_add_keeps_a_run_once_and_refuses_a_missing_report(
    runner: CliRunner, tmp_path: Path
) -> None:
    write_report(make_report(1), tmp_path / "out")
    history = tmp_path / "history.sqlite"
    first = runner.invoke(app, ["history", "add", str(tmp_path / "out"), "--history", str(history)])
    assert first.exit_code == 0, first.output
    assert "added run devnet-smoke-001 (commit c00100000000)" in first.output
    assert "1 run(s) in the series" in first.output
    again = runner.invoke(app, ["history", "add", str(tmp_path / "out"), "--history", str(history)])
    assert again.exit_code == 0 and "already in the history" in again.output
    elsewhere = tmp_path / "other.sqlite"
    missing = runner.invoke(
        app, ["history", "add", str(tmp_path / "nowhere"), "--history", str(elsewhere)]
    )
    assert missing.exit_code == 2
    assert "no report.json at" in missing.output and "Traceback" not in missing.output
    assert not elsewhere.exists()  # nothing created for a bad input


def test_list_and_show_with_change_points(runner: CliRunner, tmp_path: Path) -> None:
    rng = random.Random(1)
    history = history_of(runner, tmp_path, noisy(rng, 25, 300.0) + noisy(rng, 4, 255.0))
    listed = runner.invoke(app, ["history", "list", "--history", str(history)])
    assert listed.exit_code == 0, listed.output
    assert re.search(r"devnet-smoke on local \(params [0-9a-f]{12}\): 29 run\(s\)", listed.output)
    documents = json.loads(
        runner.invoke(app, ["history", "list", "--history", str(history), "--json"]).output
    )
    assert [(d["scenario"], d["platform"], d["runs"]) for d in documents] == [
        ("devnet-smoke", "local", 29)
    ]
    shown = runner.invoke(app, ["history", "show", "tps.mean", "--history", str(history)])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0].startswith("tps.mean of devnet-smoke on local")
    change = next(i for i, line in enumerate(lines) if "change point" in line)
    assert "devnet-smoke-025" in lines[change + 1]  # the first run after the change
    assert "REGRESSION: tps.mean" in shown.output and "c02400000000..c02500000000" in shown.output
    (document,) = json.loads(
        runner.invoke(
            app, ["history", "show", "tps.mean", "--history", str(history), "--json"]
        ).output
    )
    assert len(document["runs"]) == 29
    assert document["change_points"][0]["first_run_after"] == "devnet-smoke-025"
    assert document["regressions"][0]["commit_range"] == "c02400000000..c02500000000"


def test_check_exits_1_on_a_new_regression_and_names_the_commit_range(
    runner: CliRunner, tmp_path: Path
) -> None:
    rng = random.Random(1)
    history = history_of(runner, tmp_path, noisy(rng, 25, 300.0) + noisy(rng, 4, 255.0))
    result = runner.invoke(app, ["history", "check", "--history", str(history)])
    assert result.exit_code == 1, result.output
    assert "NEW REGRESSION: tps.mean of devnet-smoke on local" in result.output
    assert "between commit c02400000000..c02500000000" in result.output
    as_json = runner.invoke(app, ["history", "check", "--history", str(history), "--json"])
    assert as_json.exit_code == 1
    document = json.loads(as_json.output)
    assert document["regressed"] is True
    assert [r["metric"] for r in document["new_regressions"]] == ["tps.mean"]
    older = runner.invoke(app, ["history", "check", "--history", str(history), "--recent", "2"])
    assert older.exit_code == 0, older.output  # the change is 4 runs back: reported before
    assert "older regression: tps.mean" in older.output and "no new regression" in older.output


def test_a_quiet_history_passes_the_check_and_gets_a_trend_page(
    runner: CliRunner, tmp_path: Path
) -> None:
    history = history_of(runner, tmp_path, noisy(random.Random(4), 12, 300.0))
    result = runner.invoke(app, ["history", "check", "--history", str(history)])
    assert result.exit_code == 0, result.output
    assert "no new regression" in result.output
    page = tmp_path / "site" / "trend.html"
    trend = runner.invoke(app, ["history", "trend", "--out", str(page), "--history", str(history)])
    assert trend.exit_code == 0, trend.output
    assert f"trend page: {page}" in trend.output
    assert page.read_text().count("<svg") >= 6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "tps"], "metric 'tps' is not kept in the history: use one of tps.mean"),
        (["check", "--scenario", "nightly"], "has no runs of scenario nightly"),
        (["check", "--recent", "0"], "--recent 0: use 1 or more runs"),
        (["trend"], "Missing option '--out'"),
    ],
    ids=["unknown-metric", "no-such-series", "bad-recent", "trend-without-out"],
)
def test_bad_input_exits_2(
    runner: CliRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    history = history_of(runner, tmp_path, [300.0])
    result = runner.invoke(app, ["history", *args, "--history", str(history)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_a_missing_history_is_bad_input_not_a_new_file(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite"
    for args in (["list"], ["show", "tps.mean"], ["check"], ["trend", "--out", str(tmp_path)]):
        result = runner.invoke(app, ["history", *args, "--history", str(missing)])
        assert result.exit_code == 2, result.output
        assert f"no history at {missing}: add a report first" in result.output
    assert not missing.exists()


def history_commands(text: str) -> list[str]:
    """The `aitbc-testnet history ...` command lines of a script (the program's folder, shell
    line continuations and `|| ...` fallbacks removed)."""
    commands = []
    for line in text.replace("\\\n", " ").splitlines():
        found = re.match(r"\s*(?:\S*/)?(aitbc-testnet history .*)", line)
        if found:
            commands.append(found.group(1).split("||")[0].strip())
    return commands


def run_script_lines(runner: CliRunner, commands: list[str], variables: dict[str, str]) -> None:
    """Run each command with the script's ``$variables`` set; each must exit 0."""
    for command in commands:
        for name, value in variables.items():
            command = command.replace(f"${{{name}}}", value).replace(f"${name}", value)
        argv = shlex.split(command)
        assert argv[:2] == ["aitbc-testnet", "history"], command
        result = runner.invoke(app, argv[1:])
        assert result.exit_code == 0, f"{command}\n{result.output}"


def test_the_ci_workflows_history_commands_run(runner: CliRunner, tmp_path: Path) -> None:
    document = yaml.safe_load(WORKFLOW.read_text())
    (job,) = document["jobs"].values()
    script = "\n".join(str(step.get("run", "")) for step in job["steps"])
    commands = history_commands(script)
    assert [shlex.split(c)[2] for c in commands] == ["add", "trend", "check"]
    write_report(make_report(1), tmp_path / "out" / "nightly")
    history = tmp_path / job["env"]["HISTORY"]
    history.parent.mkdir(parents=True)
    variables = {"HISTORY": str(history)}
    commands = [c.replace("out/nightly", str(tmp_path / "out" / "nightly")) for c in commands]
    run_script_lines(runner, commands, variables)
    assert (tmp_path / "out" / "nightly" / "trend.html").is_file()


def test_the_chart_scripts_history_commands_run(runner: CliRunner, tmp_path: Path) -> None:
    commands = history_commands(CHART_SCRIPT.read_text())
    assert [shlex.split(c)[2] for c in commands] == ["add", "trend", "check"]
    data, out = tmp_path / "data", tmp_path / "data" / "reports" / "r1"
    write_report(make_report(1), out)
    run_script_lines(runner, commands, {"data": str(data), "out": str(out)})
    assert (data / "history.sqlite").is_file() and (data / "trend.html").is_file()
