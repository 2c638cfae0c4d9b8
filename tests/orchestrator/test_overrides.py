"""`--set key=value` overrides: applied to the YAML before validation; a bad one names the flag."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.errors import ScenarioError
from orchestrator.scenario.loader import load_scenario, parse_override


def test_values_are_parsed_as_yaml() -> None:
    assert parse_override("load.tps=500").value == 500
    assert parse_override("load.tps=2.5").value == 2.5
    assert parse_override("criteria.safety=false").value is False
    assert parse_override("faults.0.target=[1, 2]").value == [1, 2]
    assert parse_override("faults.0.target={count: 2}").value == {"count": 2}
    assert parse_override("network.block_interval_ms=null").value is None
    assert parse_override("name=a=b").value == "a=b"
    assert parse_override("faults.0.at=25s").path == ("faults", 0, "at")


def test_overrides_apply_before_validation() -> None:
    scenario = load_scenario(
        "devnet-smoke",
        [
            "load.tps=500",
            "faults.0.at=25s",
            "faults.0.target=[2, 3]",
            "network.mode=fast",
            "sim.blocks=10",
            "criteria.max_finality_p50_ms=800",
        ],
    )
    assert scenario.load.tps == 500
    assert scenario.faults[0].at == 25.0
    assert scenario.faults[0].target == [2, 3]
    assert scenario.network.mode == "fast"
    assert scenario.sim.blocks == 10
    assert scenario.criteria.max_finality_p50_ms == 800


def test_later_override_wins_and_missing_sections_are_created(
    write_scenario: Callable[[str], Path],
) -> None:
    path = write_scenario("name: tiny\n")
    scenario = load_scenario(
        path, ["sim.blocks=5", "sim.blocks=7", "faults.0={at: 1s, kind: heal}"]
    )
    assert scenario.sim.blocks == 7
    assert scenario.faults[0].kind == "heal"


def test_bad_value_names_the_flag(runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate", "devnet-smoke", "--set", "criteria.min_tps=abc"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "--set criteria.min_tps=abc: criteria.min_tps: Input should be a valid number (got 'abc')"
    )


def test_unknown_key_names_the_flag(runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate", "devnet-smoke", "-s", "load.tsp=5"])
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "--set load.tsp=5: load.tsp: unknown field 'tsp' (did you mean 'tps'?)"
    )


def test_cross_check_caused_by_an_override_names_the_flag(runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate", "crash-recovery", "--set", "faults.0.target=[9]"])
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "--set faults.0.target=[9]: faults[0].target: validator 9 does not exist"
    )


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("load.tps", "expected key=value"),
        ("=5", "expected key=value"),
        ("load..tps=5", "has an empty part"),
        ("faults.5.at=1s", "faults has 1 entries; index 5 does not exist"),
        ("faults.at=1s", "faults is a list: use an index"),
        ("load.tps.max=1", "load.tps is a value (300), not a section"),
        ("load.tps=[1, 2", "is not valid YAML"),
    ],
)
def test_malformed_overrides(runner: CliRunner, flag: str, message: str) -> None:
    result = runner.invoke(app, ["validate", "devnet-smoke", "--set", flag])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"--set {flag}: ")
    assert message in result.stderr


def test_override_error_is_a_scenario_error() -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario("devnet-smoke", ["network.validators=0"])
    assert caught.value.issues[0].flag == "network.validators=0"
    assert caught.value.field == "network.validators"
