"""Byzantine faults on the orchestrator side: the ``byzantine`` kind in scenario files (the
behaviour and its parameters checked by the node's own models, FILE:LINE: field: message), the
plan's rule that byzantine validators stay below a third of the voting power at every moment
(unless ``allow_unsafe``), the node fault specs and the simulator flags they become."""

from __future__ import annotations

import pytest
from aitbc_node.byzantine import BEHAVIOURS, CATALOGUE

from orchestrator.errors import ScenarioError
from orchestrator.faults.kinds import (
    MAY_BE_SLASHED_BEHAVIOURS,
    SLASHED_BEHAVIOURS,
    BehaviourError,
    behaviour_params,
    fault_kind,
    may_be_slashed,
    must_be_slashed,
)
from orchestrator.faults.node_faults import node_specs
from orchestrator.platforms.sim.flags import sim_flags
from orchestrator.scenario.loader import load_scenario, parse_scenario_text
from orchestrator.scenario.plan import Plan, resolve_plan

SUITE = """\
name: attacks
network: {validators: 7, authorities: 7, mode: balanced, seed: 3}
load: {duration: 60s, warmup: 5s, cooldown: 5s}
faults:
  - at: 10s
    kind: byzantine
    behaviour: flood
    params: {count: 50, oversized: false}
    target: [6]
    duration: 5s
  - at: 20s
    kind: equivocate
    target: [5]
    duration: 5s
"""


def plan_of(text: str, platform: str = "local") -> Plan:
    return resolve_plan(parse_scenario_text(text), platform=platform, run_id="r1")


def problems(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        plan_of(text)
    return [f"{issue.line}: {issue.field}: {issue.message}" for issue in caught.value.issues]


# ----------------------------------------------------------------------------- scenario


def test_a_byzantine_fault_carries_its_behaviour_and_the_params_given() -> None:
    plan = plan_of(SUITE)
    flood, equivocate = plan.faults
    assert (flood.kind, flood.behaviour, dict(flood.params)) == (
        "byzantine",
        "flood",
        {"count": 50, "oversized": False},  # defaults are the node's: not copied in
    )
    assert flood.name == "byzantine flood" and "byzantine flood [6] -> ids [6]" in flood.describe()
    assert (equivocate.kind, equivocate.behaviour, equivocate.name) == (
        "equivocate",
        "equivocate",
        "equivocate",
    )


def test_behaviour_params_come_from_the_nodes_models() -> None:
    assert set(SLASHED_BEHAVIOURS) | set(MAY_BE_SLASHED_BEHAVIOURS) <= set(BEHAVIOURS)
    assert behaviour_params("selective-proposal", {"fraction": 0.25}) == {"fraction": 0.25}
    assert behaviour_params("flood", {"count": "7", "oversized": "false"}, from_text=True) == {
        "count": 7,
        "oversized": False,
    }
    with pytest.raises(BehaviourError) as caught:
        behaviour_params("flood", {"count": "7.5"}, from_text=True)
    assert caught.value.field == "count"
    with pytest.raises(BehaviourError, match="is no behaviour"):
        behaviour_params("fork", {})
    for name in BEHAVIOURS:  # every behaviour's own model is the one the scenario checks
        assert CATALOGUE[name][0].model_validate(behaviour_params(name, {}))
    assert must_be_slashed("equivocate") and must_be_slashed("byzantine", "unstake-escape")
    assert not must_be_slashed("byzantine", "flood") and may_be_slashed("byzantine", "flood")
    assert not may_be_slashed("byzantine", "replay") and not may_be_slashed("partition")


# ----------------------------------------------------------------------------- below a third


def test_byzantine_targets_must_stay_below_a_third_by_every_measure() -> None:
    (found,) = problems(SUITE.replace("target: [6]", "target: [4, 5, 6]"))
    assert found.startswith("9: faults[0].target: validators [4, 5, 6] hold 3 of 7 authorities")
    assert "by every quorum measure of balanced mode" in found
    assert "set allow_unsafe: true on the fault" in found
    allowed = SUITE.replace("target: [6]", "target: [4, 5, 6]\n    allow_unsafe: true")
    assert plan_of(allowed).faults[0].allow_unsafe is True


def test_overlapping_byzantine_faults_count_together() -> None:
    overlapping = SUITE.replace("at: 20s", "at: 12s").replace("target: [5]", "target: [4, 5]")
    found = problems(overlapping)
    assert len(found) == 2  # each of the two faults is refused, naming the other
    assert "(with fault 1 at the same time)" in found[0]
    assert found[1].startswith("13: faults[1].target: validators [4, 5, 6]")
    # one after the other, the same validators are fine
    assert len(plan_of(SUITE.replace("target: [5]", "target: [4, 5]")).faults) == 2


def test_fractions_count_stake_not_validators() -> None:
    # validator 6 holds most of the stake: alone it is a third of it in secure mode
    lumpy = SUITE.replace(
        "mode: balanced, seed: 3}",
        "mode: secure, seed: 3, stake: [1, 1, 1, 1, 1, 1, 10]}",
    )
    (found,) = problems(lumpy)
    assert "faults[0].target: validators [6] hold 10 of 16 stake" in found


def test_the_builtin_suite_runs_every_behaviour_below_a_third() -> None:
    plan = resolve_plan(load_scenario("byzantine-suite"), platform="local", run_id="r1")
    assert {fault.behaviour for fault in plan.faults} == set(BEHAVIOURS)
    assert plan.network.validators == 7
    assert not any(fault.allow_unsafe for fault in plan.faults)
    assert plan.criteria.safety and plan.criteria.commits_resume_within_s == 10
    assert plan.criteria.equivocators_slashed_exactly_once_per_epoch


# ----------------------------------------------------------------------------- where they go


def test_node_specs_of_byzantine_faults() -> None:
    flood, equivocate = plan_of(SUITE).faults
    assert node_specs(flood, 7) == [
        (6, {"kind": "byzantine", "behaviour": "flood", "count": 50, "oversized": False,
             "duration_s": 35.0}),
    ]  # fmt: skip
    assert node_specs(equivocate, 7) == [
        (5, {"kind": "byzantine", "behaviour": "equivocate", "duration_s": 35.0})
    ]
    assert fault_kind("equivocate").node_spec({}) == fault_kind("byzantine").node_spec(
        {}, "equivocate"
    )


def test_simulator_flags_of_byzantine_faults() -> None:
    text = SUITE + (
        "  - {at: 30s, kind: byzantine, behaviour: wrong-chain, target: [4], duration: 5s, "
        "params: {chain_id: 'a:b'}}\n"
        "  - {at: 40s, kind: byzantine, behaviour: selective-proposal, target: [3], "
        "params: {fraction: 0.25}}\n"
    )
    flags = sim_flags(plan_of(text, platform="sim"))
    argv = list(flags.argv)
    specs = [argv[i + 1] for i, item in enumerate(argv) if item == "--byzantine"]
    assert specs == [
        "6:flood@count=50,oversized=false:10:15",
        "5:equivocate:20:25",
        "3:selective-proposal@fraction=0.25:40:60",  # open: until the end of load
    ]
    assert "--equivocators" not in argv
    (dropped,) = flags.not_simulated
    assert dropped.startswith("byzantine wrong-chain #2 ([4], ids [4]): a text parameter")
    open_ended = [note for note in flags.notes if "byzantine selective-proposal #3" in note]
    assert open_ended and "has no end" in open_ended[0]
