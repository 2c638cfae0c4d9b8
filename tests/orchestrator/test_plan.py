"""resolve_plan: the frozen, resolved testnet."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.errors import ScenarioError, UsageError
from orchestrator.scenario.loader import load_scenario, parse_scenario_text
from orchestrator.scenario.model import Scenario
from orchestrator.scenario.plan import Outage, churn_schedule, default_run_id, resolve_plan

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

TIMELINE = """\
name: timeline
network: {validators: 7, authorities: 7, mode: balanced, seed: 3}
load: {duration: 100s, warmup: 5s, cooldown: 5s}
faults:
  - {at: 10s, kind: partition, target: minority-third}
  - {at: 20s, kind: kill, target: [3]}
  - {at: 30s, kind: delay, target: [5], duration: 5s, params: {delay_ms: 200}}
  - {at: 40s, kind: heal}
  - {at: 50s, kind: restart}
  - {at: 60s, kind: churn, duration: 30s, params: {every: 10s}}
  - {at: 70s, kind: loss, target: {count: 2}, duration: 5s, params: {rate: 0.2}}
"""


def test_plan_of_devnet_smoke() -> None:
    scenario = load_scenario("devnet-smoke")
    plan = resolve_plan(scenario, platform="local", now=NOW)
    assert plan.run_id == "devnet-smoke-20260102-030405"
    assert (plan.platform, plan.name, plan.created) == ("local", "devnet-smoke", NOW.isoformat())
    assert plan.source_path is not None and plan.source_path.name == "devnet-smoke.yaml"
    assert plan.network.block_interval_ms == 500  # balanced default
    assert plan.network.genesis_seed == "1"
    assert plan.load.duration_s == 60.0 and isinstance(plan.load.duration_s, float)
    assert (plan.load.measure_start_s, plan.load.measure_end_s) == (10.0, 55.0)
    [fault] = plan.faults
    assert (fault.kind, fault.target, fault.start_s, fault.end_s) == (
        "partition",
        "minority-third",
        20.0,
        30.0,
    )
    assert len(fault.ids) == 1 and fault.ids != (0,)
    assert fault.fractions.stake == fault.fractions.authorities == fault.fractions.count == 0.25
    assert plan.scenario["faults"][0]["at"] == 20.0
    assert plan.criteria.min_tps == 180


def test_plan_is_frozen_and_json_serialisable() -> None:
    plan = resolve_plan(load_scenario("nightly"), platform="sim", now=NOW)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.run_id = "x"  # type: ignore[misc]
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["run_id"] == plan.run_id
    assert data["network"]["stake"][0] == {"index": 0, "stake": 1_000_000, "authority": True}
    assert data["faults"][0]["fractions"]["stake"] == pytest.approx(2 / 7)
    assert data["measure_window_s"] == [15.0, 170.0]
    assert data["source_path"].endswith("nightly.yaml")


def test_sim_plans_use_the_simulators_genesis_seed() -> None:
    scenario = load_scenario("devnet", ["network.stake=uniform:1:100"])
    sim, local = (resolve_plan(scenario, platform=p, now=NOW) for p in ("sim", "local"))
    assert (sim.network.genesis_seed, local.network.genesis_seed) == ("sim-5", "5")
    assert sim.network.stake != local.network.stake


def test_run_id() -> None:
    assert default_run_id("x", NOW) == "x-20260102-030405"
    scenario = load_scenario("devnet-smoke")
    assert resolve_plan(scenario, platform="local", run_id="nightly.42").run_id == "nightly.42"
    with pytest.raises(UsageError, match=r"run id '\.\./x'"):
        resolve_plan(scenario, platform="local", run_id="../x")


def test_timeline_resolution() -> None:
    plan = resolve_plan(parse_scenario_text(TIMELINE), platform="local", now=NOW)
    partition, kill, delay, heal, restart, churn, loss = plan.faults
    assert partition.end_s == 40.0  # closed by the heal that covers it
    assert len(partition.ids) == 2 and 0 not in partition.ids  # 2 of 7 < 1/3
    assert kill.ids == (3,) and kill.end_s == 50.0  # closed by the restart
    assert delay.end_s == 35.0
    assert heal.target == "all" and heal.ids == partition.ids  # what was still open at 40 s
    assert restart.ids == (3,)
    assert churn.ids == (1, 2, 3, 4, 5, 6) and churn.params == {"every": 10.0, "downtime": 5.0}
    assert loss.target == "count 2" and len(loss.ids) == 2 and loss.params == {"rate": 0.2}
    assert churn_schedule(churn, plan.load.duration_s) == (
        Outage(1, 60.0, 65.0),
        Outage(2, 70.0, 75.0),
        Outage(3, 80.0, 85.0),
    )


def test_open_churn_runs_to_the_horizon() -> None:
    text = TIMELINE.replace(
        "duration: 30s, params: {every: 10s}", "params: {every: 10s, downtime: 2s}"
    )
    plan = resolve_plan(parse_scenario_text(text), platform="local")
    churn = plan.faults[5]
    assert churn.end_s is None
    outages = churn_schedule(churn, 100.0)
    assert [o.start_s for o in outages] == [60.0, 70.0, 80.0, 90.0]
    assert outages[-1] == Outage(4, 90.0, 92.0)


def test_unreachable_target_is_a_scenario_error_at_the_fault_line(
    write_scenario: Callable[[str], Path],
) -> None:
    path = write_scenario(TIMELINE.replace("target: minority-third", "target: majority"))
    # 7 equal validators: majority needs 4 or 5 of 7 (> 1/2 and < 2/3): 4/7 = 57 % works
    assert resolve_plan(load_scenario(path), platform="local").faults[0].ids
    path = write_scenario(
        TIMELINE.replace("validators: 7, authorities: 7", "validators: 4, authorities: 4")
        .replace("target: minority-third", "target: majority")
        .replace("[3]", "[2]")
        .replace("[5]", "[3]")
    )
    with pytest.raises(ScenarioError) as caught:
        resolve_plan(load_scenario(path), platform="local")
    assert (caught.value.file, caught.value.line, caught.value.field) == (
        str(path),
        5,
        "faults[0].target",
    )
    assert "no set of validators is majority" in caught.value.message


def test_a_bare_model_resolves_too() -> None:
    scenario = Scenario.model_validate(
        {"name": "bare", "faults": [{"at": 1, "kind": "pause", "target": "half"}]}
    )
    plan = resolve_plan(scenario, platform="kubernetes")
    assert plan.source_path is None and plan.faults[0].ids and plan.faults[0].end_s is None
