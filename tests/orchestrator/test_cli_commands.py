"""The aitbc-testnet CLI: help, validate, scenarios, up, exit codes and command modules."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from orchestrator_support import needs_simulator
from typer.testing import CliRunner

from orchestrator import cli
from orchestrator.cli import app, main
from orchestrator.commands.options import PlatformName
from orchestrator.platforms import PLATFORM_NAMES

COMMANDS = ["validate", "scenarios", "up"]


def test_no_arguments_shows_help(runner: CliRunner) -> None:
    result = runner.invoke(app, [])
    assert "Usage" in result.output
    for command in COMMANDS:
        assert command in result.output


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_help_of_every_command_has_an_example(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example: aitbc-testnet" in result.stdout


def test_validate_prints_the_resolved_plan(runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate", "devnet-smoke"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "OK: devnet-smoke: 4 validators (4 authorities, balanced mode, stake equal, seed 1); "
        "300 tps for 60s (measured 10s-55s); 1 fault resolved to ids"
    )
    assert lines[1].startswith("  fault 0: partition minority-third -> ids [")
    assert "at 20s until 30s (25.0% of stake, 25.0% of authorities" in lines[1]


def test_validate_for_sim_shows_the_simulator_command(runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate", "nightly", "--platform", "sim"])
    assert result.exit_code == 0
    assert "  sim: aitbc-node sim --validators 7 --authorities 7 --mode balanced" in result.stdout
    assert "  note: delay #2" in result.stdout


def test_validate_shortens_long_id_lists(runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate", "devnet"])
    assert result.exit_code == 0
    assert "...] (33 validators)" in result.stdout


def test_the_platform_choices_are_the_registrys() -> None:
    assert tuple(name.value for name in PlatformName) == PLATFORM_NAMES


def test_bad_flag_value_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate", "devnet-smoke", "--platform", "mars"])
    assert result.exit_code == 2


def test_up_on_an_unknown_platform_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["up", "devnet-smoke", "--platform", "mars", "--run-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert list(tmp_path.iterdir()) == []


def test_up_with_a_bad_scenario_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["up", "devnet-smoke", "--platform", "sim", "--set", "network.validators=x"]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("--set network.validators=x: network.validators: ")


def test_up_with_a_bad_run_id_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["up", "devnet-smoke", "--platform", "sim", "--run-id", "a/b", "--run-dir", str(tmp_path)],
    )
    assert result.exit_code == 2
    assert "run id 'a/b'" in result.stderr


def test_main_returns_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios"]) == 0
    assert main(["validate", "no-such-scenario"]) == 2
    assert "no scenario file or built-in named 'no-such-scenario'" in capsys.readouterr().err
    assert main(["up", "devnet-smoke", "--platform", "kubernetes"]) == 3


# ----------------------------------------------------------------------------- sim (real)


@needs_simulator
def test_up_sim_prints_a_simulated_summary(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["up", "devnet-smoke", "--platform", "sim", "--run-dir", str(tmp_path), "--run-id", "r1",
         "--set", "sim.blocks=30"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("SIMULATED run r1 (devnet-smoke): mode balanced")
    assert "safety violations 0" in result.stdout
    assert (tmp_path / "r1" / "sim-result.json").is_file()


@needs_simulator
def test_up_sim_json(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["up", "byzantine", "--platform", "sim", "--run-dir", str(tmp_path), "--json",
         "--set", "sim.blocks=30"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["simulated"] is True
    assert data["scenario"] == "byzantine" and data["safety_violations"] == 0
    assert data["slashed_validators"] == 1 and data["committed_height"] >= 30


# ----------------------------------------------------------------------------- extension point


@pytest.fixture
def commands_package(tmp_path: Path) -> Iterator[Path]:
    """A real ``orchestrator.commands`` package on disk (removed afterwards)."""
    folder = tmp_path / "commands"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "hello.py").write_text(
        "import typer\n"
        "from orchestrator.commands.options import PlatformOption, PlatformName\n\n"
        "def register(app: typer.Typer) -> None:\n"
        "    @app.command(help='Say hello. Example: aitbc-testnet hello')\n"
        "    def hello(platform: PlatformOption = PlatformName.local) -> None:\n"
        "        typer.echo(f'hello from {platform.value}')\n"
    )
    (folder / "no_register.py").write_text("VALUE = 1\n")
    package = types.ModuleType("orchestrator.commands")
    package.__path__ = [str(folder)]
    sys.modules["orchestrator.commands"] = package
    yield folder
    for name in [n for n in sys.modules if n.startswith("orchestrator.commands")]:
        del sys.modules[name]


def test_command_modules_register_on_the_app(commands_package: Path, runner: CliRunner) -> None:
    fresh = typer.Typer(cls=cli.AitbcGroup)
    fresh.command()(cli.scenarios)
    cli.register_command_modules(fresh)
    result = runner.invoke(fresh, ["hello", "--platform", "sim"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "hello from sim\n"
