"""The sim platform: plan -> simulator flags (pure), result parsing, its capabilities, and
the real simulator subprocess."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from orchestrator_support import needs_simulator

from orchestrator.errors import CapabilityError, PlatformError, UsageError
from orchestrator.external.simulator import parse_sim_output
from orchestrator.faults.driver import apply_fault
from orchestrator.platforms import PLATFORMS, get_platform
from orchestrator.platforms.capabilities import KillRestart, Platform, capabilities_of, require
from orchestrator.platforms.sim import SimPlatform
from orchestrator.platforms.sim.flags import mean_offered_tps, sim_flags, sim_fraction
from orchestrator.platforms.sim.platform import RESULT_FILE
from orchestrator.scenario.loader import load_scenario, parse_scenario_text
from orchestrator.scenario.plan import Plan, resolve_plan

ALL_KINDS = """\
name: all-kinds
network: {validators: 7, authorities: 7, mode: balanced, seed: 9, epoch_length: 30}
load: {tps: 250, duration: 100s, warmup: 5s, cooldown: 5s}
sim: {blocks: 40, latency_ms: 20, crypto: real}
faults:
  - {at: 10s, kind: partition, target: minority-third, duration: 10s}
  - {at: 20s, kind: kill, target: {count: 2}}
  - {at: 35s, kind: restart}
  - {at: 40s, kind: delay, target: [1], duration: 5s, params: {delay_ms: 200, jitter_ms: 30}}
  - {at: 50s, kind: loss, target: [2], duration: 5s, params: {rate: 0.1}}
  - {at: 55s, kind: pause, target: [4], duration: 3s}
  - {at: 60s, kind: equivocate, target: [5, 6]}
  - {at: 70s, kind: churn, duration: 20s, params: {every: 10s, downtime: 4s}}
  - {at: 95s, kind: heal}
"""


def plan_of(text_or_name: str, *sets: str) -> Plan:
    scenario = (
        parse_scenario_text(text_or_name, overrides=sets)
        if "\n" in text_or_name
        else load_scenario(text_or_name, sets)
    )
    return resolve_plan(scenario, platform="sim", run_id="test-run")


# ----------------------------------------------------------------------------- flag mapping


def test_devnet_smoke_flags() -> None:
    flags = sim_flags(plan_of("devnet-smoke"))
    assert flags.argv == (
        "--validators", "4", "--authorities", "4", "--mode", "balanced", "--blocks", "120",
        "--seed", "1", "--latency-ms", "50", "--partition", "20:30:0.2500",
        "--epoch-length", "100", "--load-tps", "300", "--crypto", "modeled", "--json",
    )  # fmt: skip
    assert flags.not_simulated == ()
    assert any("fractions of voting power" in note for note in flags.notes)


def test_every_fault_kind_is_mapped_or_reported() -> None:
    plan = plan_of(ALL_KINDS)
    flags = sim_flags(plan)
    argv = list(flags.argv)

    def values(flag: str) -> list[str]:
        return [argv[i + 1] for i, item in enumerate(argv) if item == flag]

    assert values("--partition") == ["10:20:0.2857"]  # 2 of 7 validators
    assert values("--crash") == [
        "20:35:2",  # kill {count: 2}, ended by the restart at 35 s
        "55:58:1",  # pause -> crash (said in the notes)
        "70:74:1",  # churn every 10 s, 4 s down
        "80:84:1",
    ]
    assert values("--equivocators") == ["2"]
    assert values("--latency-ms") == ["220"]  # 20 + the 200 ms delay
    assert values("--jitter-ms") == ["30"]
    assert values("--drop-rate") == ["0.1"]
    assert values("--epoch-length") == ["30"]
    assert values("--crypto") == ["real"]
    assert values("--load-tps") == ["250"]
    assert "--stake" not in argv and argv[-1] == "--json"
    notes = "\n".join(flags.notes)
    for expected in ("delay #3", "loss #4", "pause #5", "equivocate #6", "churn #7"):
        assert expected in notes
    assert flags.not_simulated == ()


def test_what_cannot_be_simulated_is_listed_not_dropped() -> None:
    text = ALL_KINDS.replace("mode: balanced", "mode: fast").replace(
        "validators: 7, authorities: 7", "validators: 7, authorities: 3"
    )
    # a partition of a non-authority cuts no voting power in fast mode
    text = text.replace("target: minority-third", "target: [6]").replace("[5, 6]", "[1, 2]")
    flags = sim_flags(plan_of(text))
    assert "--partition" not in flags.argv
    assert flags.not_simulated == (
        "partition #0 ([6], ids [6]): cuts 0% of the voting power in fast mode; the simulator "
        "cuts a fraction strictly between 0 and 1",
    )


def test_non_equal_stake_and_explicit_interval_are_passed() -> None:
    flags = sim_flags(
        plan_of("devnet-smoke", "network.stake=zipf", "network.block_interval_ms=250")
    )
    argv = list(flags.argv)
    assert argv[argv.index("--stake") + 1] == "zipf"
    assert argv[argv.index("--block-interval-ms") + 1] == "250"
    listed = sim_flags(plan_of("devnet-smoke", "network.stake=[1, 2, 3, 4]"))
    assert "--stake" not in listed.argv
    assert any("explicit stake list is not passed" in note for note in listed.notes)


def test_faults_past_the_simulated_horizon_are_flagged() -> None:
    flags = sim_flags(plan_of("devnet-smoke", "sim.blocks=10"))  # ~5 s of 500 ms blocks
    assert any("raise sim.blocks to reach it" in note for note in flags.notes)


@pytest.mark.parametrize(
    ("mode", "stake", "expected"),
    [("fast", "zipf", 6 / 21), ("secure", "equal", 0.33), ("balanced", "equal", 0.33)],
)
def test_sim_fraction_uses_the_modes_measure(mode: str, stake: str, expected: float) -> None:
    plan = plan_of("devnet", f"network.mode={mode}", f"network.stake={stake}")
    assert sim_fraction(plan.faults[0], mode) == pytest.approx(expected, abs=0.005)


def test_mean_offered_tps_of_each_shape() -> None:
    assert mean_offered_tps(plan_of("nightly")) == pytest.approx((100 + 300 + 600) / 3)
    ramp = plan_of("devnet-smoke", "load.shape=ramp", "load.ramp={from_tps: 100, to_tps: 300}")
    assert mean_offered_tps(ramp) == 200
    spike = plan_of(
        "devnet-smoke", "load.shape=spike", "load.spike={at: 10s, duration: 6s, tps: 1300}"
    )
    assert mean_offered_tps(spike) == pytest.approx(300 + 1000 * 6 / 60)


# ----------------------------------------------------------------------------- results


GOOD = {
    "committed_height": 50,
    "safety_violations": 0,
    "slashed_validators": [3],
    "simulated_seconds": 25.5,
    "wall_seconds": 0.4,
    "messages_sent": 1234,
    "mode": "balanced",
    "crypto": "modeled",
    "finality_ms": {"p50": 600.0, "p90": 700.0, "p99": 900.0},
    "extra_field": "kept",
}


def parse(stdout: str, returncode: int = 0) -> object:
    return parse_sim_output(
        stdout,
        run_id="r1",
        scenario="byzantine",
        notes=(),
        not_simulated=(),
        command=("py", "sim"),
        returncode=returncode,
    )


def test_parse_output() -> None:
    stdout = "progress line\n" + json.dumps(GOOD) + "\n"
    result = parse_sim_output(
        stdout,
        run_id="r1",
        scenario="byzantine",
        notes=("n",),
        not_simulated=("x",),
        command=("py", "sim"),
        returncode=0,
    )
    assert result.run_id == "r1" and result.scenario == "byzantine"
    assert result.simulated is True
    assert (result.committed_height, result.slashed_validators, result.slashed_ids) == (50, 1, (3,))
    assert (result.finality_p50_ms, result.finality_p99_ms) == (600.0, 900.0)
    assert result.notes == ("n",) and result.not_simulated == ("x",)
    data = result.to_dict()
    assert data["simulated"] is True and data["output"]["extra_field"] == "kept"
    assert json.loads(json.dumps(data)) == data


def test_parse_output_rejects_missing_json_or_contract_fields() -> None:
    with pytest.raises(PlatformError, match="printed no JSON object"):
        parse("boom", returncode=1)
    broken = {k: v for k, v in GOOD.items() if k != "committed_height"}
    with pytest.raises(PlatformError, match="committed_height: Field required"):
        parse(json.dumps(broken))


# ----------------------------------------------------------------------------- capabilities


def test_registry(tmp_path: Path) -> None:
    platform = get_platform("sim", tmp_path / "run")
    assert isinstance(platform, SimPlatform) and isinstance(platform, Platform)
    for name, spec in PLATFORMS.items():
        assert set(capabilities_of(get_platform(name, tmp_path / name))) == set(spec.capabilities)
    with pytest.raises(UsageError, match="unknown platform 'mars'"):
        get_platform("mars", tmp_path)


def test_no_live_operations(tmp_path: Path) -> None:
    platform = SimPlatform(tmp_path)
    with pytest.raises(CapabilityError, match="platform sim cannot kill validator 1") as caught:
        require(platform, KillRestart, "kill validator 1")
    assert "use --platform local or kubernetes" in str(caught.value)
    assert caught.value.exit_code == 2
    fault = plan_of("devnet-smoke").faults[0]
    with pytest.raises(CapabilityError, match=r"cannot apply fault 0 \(partition\)"):
        apply_fault(platform, fault)
    with pytest.raises(PlatformError, match="nothing deployed"):
        platform.wait_ready(1)


# ----------------------------------------------------------------------------- the real simulator


@pytest.fixture
def sim_platform(tmp_path: Path) -> Iterator[SimPlatform]:
    platform = SimPlatform(tmp_path / "run")
    yield platform
    platform.destroy()  # kills the simulator by pid (process group) if it still runs


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie still answers kill(0): look at its state
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@needs_simulator
def test_real_simulation_of_byzantine(sim_platform: SimPlatform) -> None:
    plan = plan_of("byzantine", "sim.blocks=30")
    result = sim_platform.run(plan, timeout_s=600)
    assert result.simulated is True and result.returncode == 0
    assert result.committed_height >= 30
    assert result.safety_violations == 0
    assert result.slashed_validators == 1
    assert result.mode == "balanced" and result.crypto == "modeled"
    stored = json.loads((sim_platform.run_dir / RESULT_FILE).read_text())
    assert stored["simulated"] is True and stored["committed_height"] == result.committed_height
    assert (sim_platform.run_dir / "plan.json").is_file()
    collected = sim_platform.run_dir.parent / "collected"
    sim_platform.collect_artifacts(collected)
    assert (collected / RESULT_FILE).read_text() == (sim_platform.run_dir / RESULT_FILE).read_text()


@needs_simulator
def test_timeout_kills_the_simulation(sim_platform: SimPlatform) -> None:
    plan = plan_of("staging", "sim.blocks=2000", "sim.crypto=real")
    sim_platform.deploy(plan)
    pid = sim_platform.pid
    assert pid is not None
    with pytest.raises(PlatformError, match=r"did not finish within 0\.5 s"):
        sim_platform.wait_ready(0.5)
    assert not _alive(pid)
