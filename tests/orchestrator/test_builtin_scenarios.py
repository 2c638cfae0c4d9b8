"""Every built-in scenario validates, resolves on every platform and says what it is."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.scenario.loader import builtin_dir, builtin_scenarios, load_scenario
from orchestrator.scenario.plan import resolve_plan

EXPECTED = ["byzantine", "churn", "crash-recovery", "devnet", "devnet-smoke", "nightly", "staging"]


def test_the_builtins_are_shipped_as_package_data() -> None:
    assert list(builtin_scenarios()) == EXPECTED
    assert all(path.parent == builtin_dir() for path in builtin_scenarios().values())


@pytest.mark.parametrize("name", EXPECTED)
@pytest.mark.parametrize("platform", ["local", "kubernetes", "sim"])
def test_builtin_validates_and_resolves(name: str, platform: str) -> None:
    scenario = load_scenario(name)
    assert scenario.name == name
    assert scenario.description and "\n" not in scenario.description
    plan = resolve_plan(scenario, platform=platform)
    assert len(plan.network.stake) == scenario.network.validators
    assert all(fault.ids for fault in plan.faults if fault.kind not in ("heal", "restart"))


@pytest.mark.parametrize("name", EXPECTED)
def test_validate_command_accepts_each_builtin(runner: CliRunner, name: str) -> None:
    result = runner.invoke(app, ["validate", name])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"OK: {name}: ")


def test_devnet_smoke_is_the_laptop_smoke_test() -> None:
    scenario = load_scenario("devnet-smoke")
    assert scenario.network.validators == 4
    assert scenario.load.duration == 60.0 and scenario.load.tps == 300
    [fault] = scenario.faults
    assert (fault.kind, fault.target, fault.duration) == ("partition", "minority-third", 10.0)
    assert scenario.criteria.min_tps == pytest.approx(0.6 * scenario.load.tps)
    assert scenario.criteria.safety and scenario.criteria.max_recovery_s == 30.0


def test_crash_recovery_kills_one_validator_for_10s() -> None:
    plan = resolve_plan(load_scenario("crash-recovery"), platform="local")
    [fault] = plan.faults
    assert fault.kind == "kill" and len(fault.ids) == 1 and 0 not in fault.ids
    assert fault.duration_s == 10.0
    assert 0 < fault.start_s < plan.load.duration_s


def test_churn_every_15s() -> None:
    plan = resolve_plan(load_scenario("churn"), platform="local")
    [fault] = plan.faults
    assert fault.kind == "churn" and fault.params["every"] == 15.0


def test_byzantine_equivocator_is_an_authority() -> None:
    scenario = load_scenario("byzantine")
    plan = resolve_plan(scenario, platform="local")
    [fault] = plan.faults
    assert fault.kind == "equivocate" and len(fault.ids) == 1
    assert plan.network.stake[fault.ids[0]].authority
    assert scenario.criteria.safety is True


def test_devnet_and_staging_sizes() -> None:
    devnet, staging = load_scenario("devnet"), load_scenario("staging")
    assert (devnet.network.validators, devnet.network.authorities) == (100, 21)
    assert (staging.network.validators, staging.network.authorities) == (1000, 21)
    assert staging.network.mode == "secure"
    assert (staging.sim.crypto, staging.sim.blocks) == ("modeled", 20)


def test_nightly_has_steps_and_partition_kill_delay() -> None:
    scenario = load_scenario("nightly")
    assert scenario.load.shape == "step" and len(scenario.load.steps) >= 2
    assert {f.kind for f in scenario.faults} >= {"partition", "kill", "delay"}


def test_scenarios_command_lists_name_and_description(runner: CliRunner) -> None:
    result = runner.invoke(app, ["scenarios"])
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == EXPECTED
    for line, name in zip(lines, EXPECTED, strict=True):
        assert line.split(maxsplit=1)[1] == load_scenario(name).description
