"""`aitbc-testnet validate` on broken scenarios: exit 2, no traceback, one clear line per
problem with FILE:LINE: field: message (the line numbers are asserted exactly)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.errors import ScenarioError
from orchestrator.scenario.loader import load_scenario, parse_scenario_text

BASE = """\
name: broken
network:
  validators: 4
  authorities: 4
  mode: balanced
load:
  tps: 100
  duration: 60s
  warmup: 10s
  cooldown: 5s
faults:
  - at: 20s
    kind: partition
    target: minority-third
    duration: 10s
  - at: 30s
    kind: kill
    target: [1]
    duration: 5s
"""


def _invalid(
    runner: CliRunner, write_scenario: Callable[[str], Path], text: str
) -> tuple[Path, list[str]]:
    path = write_scenario(text)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    return path, result.stderr.strip().splitlines()


def test_the_base_scenario_is_valid(
    runner: CliRunner, write_scenario: Callable[[str], Path]
) -> None:
    result = runner.invoke(app, ["validate", str(write_scenario(BASE))])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK: broken: 4 validators")


def test_unknown_field_names_file_line_field_and_suggests(
    runner: CliRunner, write_scenario: Callable[[str], Path]
) -> None:
    path, lines = _invalid(
        runner, write_scenario, BASE.replace("  mode: balanced", "  modes: fast")
    )
    assert lines == [
        f"{path}:5: network.modes: unknown field 'modes' (did you mean 'mode'?); allowed: "
        "validators, authorities, mode, stake, seed, epoch_length, block_interval_ms"
    ]


def test_unknown_top_level_section(
    runner: CliRunner, write_scenario: Callable[[str], Path]
) -> None:
    path, lines = _invalid(runner, write_scenario, BASE + "critera:\n  min_tps: 5\n")
    assert len(lines) == 1
    assert lines[0].startswith(
        f"{path}:20: critera: unknown field 'critera' (did you mean 'criteria'?)"
    )


def test_wrong_type(runner: CliRunner, write_scenario: Callable[[str], Path]) -> None:
    path, lines = _invalid(runner, write_scenario, BASE.replace("  tps: 100", "  tps: lots"))
    assert lines == [f"{path}:7: load.tps: Input should be a valid number (got 'lots')"]


def test_wrong_type_inside_a_fault(
    runner: CliRunner, write_scenario: Callable[[str], Path]
) -> None:
    path, lines = _invalid(runner, write_scenario, BASE.replace("kind: kill", "kind: explode"))
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}:17: faults[1].kind: Input should be 'partition', ")
    assert "(got 'explode')" in lines[0]


def test_fault_at_a_validator_that_does_not_exist(
    runner: CliRunner, write_scenario: Callable[[str], Path]
) -> None:
    path, lines = _invalid(runner, write_scenario, BASE.replace("target: [1]", "target: [1, 4]"))
    assert lines == [
        f"{path}:18: faults[1].target: validator 4 does not exist: there are 4 validators "
        "(ids 0..3)"
    ]


def test_fault_count_larger_than_the_network(
    runner: CliRunner, write_scenario: Callable[[str], Path]
) -> None:
    path, lines = _invalid(
        runner, write_scenario, BASE.replace("target: [1]", "target: {count: 9}")
    )
    assert lines == [f"{path}:18: faults[1].target.count: count 9 exceeds the 4 validators"]


def test_authorities_above_validators(
    runner: CliRunner, write_scenario: Callable[[str], Path]
) -> None:
    path, lines = _invalid(
        runner, write_scenario, BASE.replace("  authorities: 4", "  authorities: 5")
    )
    assert lines == [
        f"{path}:4: network.authorities: authorities (5) must not exceed validators (4): lower "
        "authorities or raise validators"
    ]


def test_bad_duration(runner: CliRunner, write_scenario: Callable[[str], Path]) -> None:
    path, lines = _invalid(
        runner, write_scenario, BASE.replace("duration: 60s", "duration: 60 sec")
    )
    assert lines == [
        f"{path}:8: load.duration: cannot read duration '60 sec': use 500ms, 10s, 2m, 1h, 1m30s "
        "or a number of seconds"
    ]


def test_yaml_syntax_error_gives_the_line(
    runner: CliRunner, write_scenario: Callable[[str], Path]
) -> None:
    broken = BASE.replace("    target: [1]\n", "    target: [1\n")
    path, lines = _invalid(runner, write_scenario, broken)
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}:19: YAML syntax error: ")


def test_duplicate_key_is_a_syntax_error_at_its_line(
    runner: CliRunner, write_scenario: Callable[[str], Path]
) -> None:
    path, lines = _invalid(
        runner, write_scenario, BASE.replace("  tps: 100\n", "  tps: 100\n  tps: 5\n")
    )
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}:8: YAML syntax error: ")


def test_several_problems_are_reported_together_in_line_order(
    runner: CliRunner, write_scenario: Callable[[str], Path]
) -> None:
    text = (
        BASE.replace("  authorities: 4", "  authorities: 9")
        .replace("  tps: 100", "  tps: -1")
        .replace("kind: kill", "kind: kill\n    color: red")
    )
    path, lines = _invalid(runner, write_scenario, text)
    assert [line.split(": ", 2)[:2] for line in lines] == [
        [f"{path}:4", "network.authorities"],
        [f"{path}:7", "load.tps"],
        [f"{path}:18", "faults[1].color"],
    ]


def test_cross_checks_are_collected_too(
    runner: CliRunner, write_scenario: Callable[[str], Path]
) -> None:
    text = BASE.replace("  - at: 30s", "  - at: 90s").replace(
        "target: minority-third", "target: [7]"
    )
    path, lines = _invalid(runner, write_scenario, text)
    assert (
        lines[0]
        == f"{path}:14: faults[0].target: validator 7 does not exist: there are 4 validators "
        "(ids 0..3)"
    )
    assert lines[1].startswith(
        f"{path}:16: faults[1].at: at 1m30s is not within the load duration (1m)"
    )


@pytest.mark.parametrize(
    ("change", "line", "field", "message"),
    [
        (
            ("kind: partition", "kind: churn"),
            12,
            "faults[0].params.every",
            "required field is missing",
        ),
        (("    target: minority-third\n", ""), 12, "faults[0].target", "partition needs a target"),
        (
            ("    duration: 5s\n", "    duration: 5s\n    params: {rate: 2}\n"),
            20,
            "faults[1].params.rate",
            "unknown field 'rate': kill takes no params",
        ),
        (("warmup: 10s", "warmup: 58s"), 9, "load.warmup", "must be shorter than duration"),
        (("name: broken", "name: Broken_Name"), 1, "name", "must be 1-40 characters"),
        (
            ("target: minority-third", "target: two-thirds"),
            14,
            "faults[0].target",
            "unknown target 'two-thirds'",
        ),
        (("target: [1]", "target: [1, 1]"), 18, "faults[1].target", "lists a validator twice"),
        (("  validators: 4", "  validators: true"), 3, "network.validators", "(got True)"),
        (("  tps: 100", "  tps: 100\n  shape: ramp"), 6, "load.ramp", "shape ramp needs ramp"),
        (
            ("  mode: balanced", "  mode: balanced\n  stake: [1, 2]"),
            6,
            "network.stake",
            "has 2 entries",
        ),
    ],
)
def test_field_rules(
    runner: CliRunner,
    write_scenario: Callable[[str], Path],
    change: tuple[str, str],
    line: int,
    field: str,
    message: str,
) -> None:
    path, lines = _invalid(runner, write_scenario, BASE.replace(*change))
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}:{line}: {field}: ")
    assert message in lines[0]


def test_scenario_error_carries_file_line_field_message(
    write_scenario: Callable[[str], Path],
) -> None:
    path = write_scenario(BASE.replace("  tps: 100", "  tps: lots"))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    error = caught.value
    assert (error.file, error.line, error.field) == (str(path), 7, "load.tps")
    assert error.message.startswith("Input should be a valid number")
    assert error.exit_code == 2


def test_unknown_builtin_lists_the_builtins(runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate", "devnet-smok"])
    assert result.exit_code == 2
    assert (
        "no scenario file or built-in named 'devnet-smok' (did you mean devnet-smoke?)"
        in result.stderr
    )
    for name in (
        "byzantine",
        "churn",
        "crash-recovery",
        "devnet",
        "devnet-smoke",
        "nightly",
        "staging",
    ):
        assert name in result.stderr


def test_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{tmp_path / 'nope.yaml'}: scenario file does not exist")


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "the scenario file is empty"), ("- 1\n- 2\n", "the scenario must be a mapping")],
)
def test_empty_or_non_mapping_file(text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenario_text(text, file="x.yaml")
