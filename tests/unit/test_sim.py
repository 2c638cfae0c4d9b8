"""The simulator and ``aitbc-node sim``: determinism, the partition and equivocation acceptance
runs, crash recovery, the JSON report and the command line's errors."""

from __future__ import annotations

import json
from dataclasses import replace
from itertools import pairwise
from typing import Any

import pytest
from aitbc_node.chain import consensus_params
from aitbc_node.cli import main
from aitbc_node.consensus.reasons import Reason
from aitbc_node.consensus.types import Mode
from aitbc_node.sim import CrashSpec, PartitionSpec, SimConfig, Simulator, run_simulation

#: Keys of the JSON report that depend on the machine, not on the run.
WALL_CLOCK_KEYS = {"wall_seconds", "blocks_per_wall_second"}
REQUIRED_KEYS = {
    "committed_height",
    "safety_violations",
    "slashed_validators",
    "simulated_seconds",
    "wall_seconds",
    "messages_sent",
    "mode",
    "crypto",
    "finality_ms",
}


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``aitbc-node`` in-process: (exit code, stdout, stderr); argparse errors exit via
    ``SystemExit``."""
    try:
        code = main(args)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def without_wall_clock(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in WALL_CLOCK_KEYS}


FAULTY = SimConfig(
    validators=12,
    authorities=5,
    mode="balanced",
    blocks=15,
    seed=7,
    crypto="modeled",
    stake="zipf",
    drop_rate=0.02,
    partitions=(PartitionSpec(1.0, 3.0, 0.4),),
    crashes=(CrashSpec(2.0, 4.0, 2),),
    equivocators=1,
    epoch_length=10,
)


def test_same_seed_gives_the_same_json() -> None:
    first = run_simulation(FAULTY).to_json()
    second = run_simulation(FAULTY).to_json()
    assert without_wall_clock(first) == without_wall_clock(second)
    assert first["safety_violations"] == 0
    assert first["committed_height"] >= FAULTY.blocks
    other = run_simulation(replace(FAULTY, seed=8)).to_json()
    assert without_wall_clock(other) != without_wall_clock(first)


def test_the_modelled_load_is_committed_at_its_rate() -> None:
    config = SimConfig(validators=4, authorities=4, mode="balanced", blocks=30, seed=2,
                       crypto="modeled", load_tps=2000.0)  # fmt: skip
    result = run_simulation(config).to_json()
    assert result["load_tps"] == 2000.0
    assert result["committed_txs"] > 0
    assert result["committed_tps"] == pytest.approx(2000.0, rel=0.02)
    idle = run_simulation(replace(config, load_tps=0.0)).to_json()
    assert idle["committed_txs"] == 0 and idle["committed_tps"] == 0.0


def test_cli_json_is_deterministic_and_complete(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "sim",
        "--validators",
        "10",
        "--authorities",
        "4",
        "--mode",
        "fast",
        "--blocks",
        "12",
        "--seed",
        "3",
        "--crypto",
        "modeled",
        "--crash",
        "0.5:1.5:1",
        "--json",
    ]
    code, out, _ = run_cli(args, capsys)
    assert code == 0
    first = json.loads(out)
    code, out, _ = run_cli(args, capsys)
    assert code == 0
    assert without_wall_clock(json.loads(out)) == without_wall_clock(first)
    assert set(first) >= REQUIRED_KEYS
    assert {"p50", "p99"} <= set(first["finality_ms"])
    assert first["mode"] == "fast" and first["crypto"] == "modeled"
    assert "modeled" in first["crypto_note"]
    assert first["committed_height"] >= 12


def test_partition_of_half_the_voting_power_stops_commits_until_the_heal() -> None:
    config = SimConfig(
        validators=100,
        authorities=21,
        mode="balanced",
        blocks=30,
        seed=1,
        crypto="modeled",
        partitions=(PartitionSpec(5.0, 15.0, 0.5),),
    )
    sim = Simulator(config)
    result = sim.run()
    assert result.safety_violations == 0
    assert result.committed_height >= 30
    (window,) = result.partitions
    # Neither side holds a quorum: the cut-off side has at most half of each measure.
    side = sim.partitions[0].side
    validators = sim.genesis.validators
    assert 2 * sum(1 for i in side if validators[i].authority) <= 21
    assert 2 * sum(validators[i].stake for i in side) <= sum(v.stake for v in validators)
    assert window["commits_during"] == 0
    assert window["resumed_after_heal_s"] is not None
    # Nothing at all commits while the partition lasts (beyond what was in flight at 5 s).
    during = [t for t in sim.commit_times.values() if 5_500 <= t < 15_000]
    assert during == []
    assert any(t >= 15_000 for t in sim.commit_times.values())
    heights_at_heal = max(h for (_, h), t in sim.commit_times.items() if t < 15_000)
    assert result.committed_height >= heights_at_heal + 3


def test_five_equivocators_among_21_authorities_are_slashed_and_safety_holds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(
        [
            "sim",
            "--validators",
            "50",
            "--authorities",
            "21",
            "--mode",
            "balanced",
            "--blocks",
            "30",
            "--seed",
            "1",
            "--crypto",
            "modeled",
            "--equivocators",
            "5",
            "--epoch-length",
            "10",
            "--json",
        ],
        capsys,
    )
    report = json.loads(out)
    assert code == 0
    assert report["safety_violations"] == 0
    assert report["committed_height"] >= 30
    assert len(report["equivocators"]) == 5
    assert len(report["slashed_validators"]) >= 1
    assert set(report["slashed_validators"]) <= set(report["equivocators"])
    assert report["final_epoch"] >= 3  # slashed validators left the set mid-index


def test_restart_of_every_node_keeps_the_chain_live() -> None:
    """Found by the property tests: nodes that voted after seeing a QC persist a lock on it; if
    every node that held the QC crashes and only committed blocks survive, no block can ever
    satisfy that lock again. Restarted nodes reload their stored blocks and highest QC."""
    config = SimConfig(
        validators=6,
        authorities=1,
        mode="balanced",
        blocks=11,
        seed=0,
        latency_ms=2.0,
        jitter_ms=0.0,
        partitions=(
            PartitionSpec(0.3, 0.6, fraction=0.2),
            PartitionSpec(0.1, 0.4, ids=(1,)),
        ),
        crashes=(CrashSpec(0.4, 0.7, ids=(0, 5)), CrashSpec(0.3, 0.6, ids=(2, 3, 4))),
        crypto="modeled",
        epoch_length=10,
        block_interval_ms=100,
        load_tps=0.0,
        load_nodes=1,
        max_simulated_s=60,
    )
    result = run_simulation(config)
    assert result.safety_violations == 0
    assert result.committed_height >= 11, result.to_json()


def test_whole_network_restart_after_an_equivocating_leader_keeps_the_chain_live() -> None:
    """Found by the property tests: the byzantine leader of round 1 sends twins; the honest
    voters of the twin that gets a QC all crash before they persist anything else, while the
    leader keeps the QC but never stored that twin. Without the voters' stored blocks the QC can
    never be extended and every later round times out."""
    config = SimConfig(
        validators=5,
        authorities=4,
        mode="balanced",
        blocks=9,
        seed=166130,
        latency_ms=2.0,
        jitter_ms=1.0,
        crashes=(CrashSpec(0.2, 0.5, ids=(0, 1, 3, 4)),),
        equivocator_ids=(2,),
        crypto="modeled",
        stake="uniform:1:100",
        epoch_length=10,
        block_interval_ms=100,
        load_tps=0.0,
        load_nodes=1,
        max_simulated_s=60,
    )
    result = run_simulation(config)
    assert result.safety_violations == 0
    assert result.committed_height >= 9, result.to_json()


def test_whole_network_restart_after_a_lost_tc_keeps_the_chain_live() -> None:
    """Found by the property tests: before a whole-network crash, validator 0 entered round 3
    through a TC for round 2 that only it held, and voted there. Restarting in its last voted
    round, it ignored everyone's round-2 timeouts while they could not form that TC without it;
    a restarted node now enters the round after its highest QC."""
    config = SimConfig(
        validators=4,
        authorities=3,
        mode="fast",
        blocks=18,
        seed=0,
        latency_ms=30.0,
        jitter_ms=15.0,
        drop_rate=0.05,
        partitions=(PartitionSpec(0.1, 0.4, ids=(0,)),),
        crashes=(CrashSpec(3.7, 4.0, ids=(0, 1, 2, 3)),),
        crypto="modeled",
        epoch_length=10,
        block_interval_ms=300,
        load_tps=0.0,
        load_nodes=1,
        max_simulated_s=51.4,
    )
    result = run_simulation(config)
    assert result.safety_violations == 0
    assert result.committed_height >= 18, result.to_json()


def test_nodes_that_missed_timeouts_get_the_tc_and_recover_quickly() -> None:
    """Found by the property tests (with the TC forwarding and the single doubling per failed
    round): one authority, SECURE, a permanent equivocator and 5 % message loss."""
    config = SimConfig(
        validators=6,
        authorities=1,
        mode="secure",
        blocks=4,
        seed=0,
        latency_ms=2.0,
        jitter_ms=4.0,
        drop_rate=0.05,
        equivocator_ids=(3,),
        crypto="modeled",
        epoch_length=10,
        block_interval_ms=100,
        load_tps=0.0,
        load_nodes=1,
        max_simulated_s=97.44,
    )
    result = run_simulation(config)
    assert result.safety_violations == 0
    assert result.committed_height >= 4
    assert result.simulated_seconds < 60


def test_voting_power_partition_respects_each_measure_of_the_mode() -> None:
    for mode in ("fast", "balanced", "secure"):
        sim = Simulator(
            SimConfig(
                validators=30,
                authorities=7,
                mode=mode,
                stake="zipf",
                blocks=1,
                seed=5,
                crypto="modeled",
                partitions=(PartitionSpec(1.0, 2.0, 0.34),),
            )
        )
        side = sim.partitions[0].side
        validators = sim.genesis.validators
        authorities = sum(1 for i in side if validators[i].authority)
        stake = sum(validators[i].stake for i in side)
        assert side
        if Mode.parse(mode) in (Mode.FAST, Mode.BALANCED):
            assert authorities <= 0.34 * 7
        if Mode.parse(mode) in (Mode.SECURE, Mode.BALANCED):
            assert stake <= 0.34 * sum(v.stake for v in validators)


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        (["--validators", "0"], "--validators"),
        (["--validators", "ten"], "--validators"),
        (["--authorities", "9"], "--authorities"),
        (["--mode", "turbo"], "--mode"),
        (["--crypto", "fake"], "--crypto"),
        (["--blocks", "0"], "--blocks"),
        (["--latency-ms", "-1"], "--latency-ms"),
        (["--jitter-ms", "-1"], "--jitter-ms"),
        (["--drop-rate", "1"], "--drop-rate"),
        (["--partition", "5:15"], "--partition"),
        (["--partition", "15:5:0.5"], "--partition"),
        (["--partition", "5:15:1.5"], "--partition"),
        (["--crash", "5:x:1"], "--crash"),
        (["--crash", "5:6:0"], "--crash"),
        (["--equivocators", "-1"], "--equivocators"),
        (["--stake", "bogus"], "--stake"),
        (["--stake", "uniform:9:1"], "--stake"),
        (["--epoch-length", "5"], "--epoch-length"),
        (["--block-interval-ms", "0"], "--block-interval-ms"),
        (["--load-tps", "-5"], "--load-tps"),
        (["--max-simulated-s", "0"], "--max-simulated-s"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(
    extra: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = {"--validators": "4", "--authorities": "4", "--blocks": "2", "--crypto": "modeled"}
    for name, value in zip(extra[::2], extra[1::2], strict=True):
        base[name] = value
    args = ["sim", *[part for item in base.items() for part in item]]
    code, out, err = run_cli(args, capsys)
    assert code == 2, (args, out, err)
    assert flag in err, err
    assert out == ""


def test_summary_line_without_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        ["sim", "--validators", "4", "--authorities", "4", "--blocks", "3", "--crypto", "modeled"],
        capsys,
    )
    assert code == 0
    assert "height 3" in out and "safety violations 0" in out


@pytest.mark.slow
def test_100_validators_real_crypto_50_blocks() -> None:
    """How long it takes is a `make bench` figure (bench_consensus), not an assertion."""
    result = run_simulation(
        SimConfig(validators=100, authorities=21, mode="balanced", blocks=50, seed=1)
    )
    assert result.config.crypto == "real"
    assert result.safety_violations == 0
    assert result.committed_height >= 50
    assert result.state_roots_agree


@pytest.mark.parametrize("fault", ["crash", "partition"])
def test_one_of_four_away_stalls_the_others_once_then_never_again(fault: str) -> None:
    """Leader reputation: once ``reputation.WINDOW`` blocks are certified without the missing
    validator it no longer leads, and its rounds stop timing out. Without it, every round it
    led stalled the other three for a round timeout or more (about one in four rounds)."""
    away = (1,)
    faults: dict[str, Any] = (
        {"crashes": (CrashSpec(2.0, 30.0, ids=away),)}
        if fault == "crash"
        else {"partitions": (PartitionSpec(2.0, 30.0, ids=away),)}
    )
    config = SimConfig(
        validators=4,
        authorities=4,
        mode="balanced",
        blocks=40,
        seed=3,
        crypto="modeled",
        load_tps=50.0,
        epoch_length=1000,
        **faults,
    )
    sim = Simulator(config)
    result = sim.run()
    assert result.safety_violations == 0
    times = sorted({h: t for (i, h), t in sim.commit_times.items() if i == 0}.values())
    during = [(a, b) for a, b in pairwise(times) if 2_000 <= a < 30_000]
    assert len(during) >= 30, during
    base_ms = consensus_params(sim.genesis).base_timeout(Mode.BALANCED)
    stalls = [(a, b) for a, b in during if b - a >= base_ms]
    assert len(stalls) <= 1, stalls


def test_a_sole_leader_restarted_without_its_batches_fetches_them_from_a_peer() -> None:
    """Found by the property tests: 1 authority (the only leader, FAST), a whole-network restart
    with load on that leader. It came back without the batches it had authored, proposed on
    from its QCs, and asked itself for them every round: the others committed 83 blocks, it
    none. It must ask another validator."""
    config = SimConfig(
        validators=4,
        authorities=1,
        mode="fast",
        seed=0,
        latency_ms=2.0,
        crashes=(CrashSpec(start_s=0.1, end_s=0.4, ids=(0, 1, 2, 3)),),
        crypto="modeled",
        block_interval_ms=100,
        load_tps=20.0,
        load_nodes=1,
        blocks=30,
        max_simulated_s=8.0,
    )
    sim = Simulator(config)
    sim.run()
    heights = {node.index: node.core.committed_height for node in sim.nodes}
    assert min(heights.values()) >= 30, heights


def test_a_timeout_whose_qc_ends_the_epoch_stays_out_of_the_new_epoch() -> None:
    """Found by `make soak` (seed 243): a timeout of epoch 2 whose high QC committed the epoch's
    end was then stored in epoch 3's collector of the same round number; the node's own timeout
    of epoch 3, round 12 was refused as a second signature (``bad_timeout_signature`` from an
    honest node, itself)."""
    config = SimConfig(
        validators=7,
        authorities=1,
        mode="fast",
        seed=243,
        latency_ms=30.0,
        jitter_ms=15.0,
        drop_rate=0.05,
        crashes=(
            CrashSpec(start_s=0.1, end_s=0.4, ids=(6,)),
            CrashSpec(start_s=0.1, end_s=2.5, ids=(0, 1, 2, 3, 4, 5, 6)),
        ),
        crypto="modeled",
        epoch_length=10,
        block_interval_ms=100,
        blocks=29,
        max_simulated_s=13.4,
        progress_after_faults=3,
        stake="equal",
        load_tps=0.0,
        load_nodes=1,
    )
    sim = Simulator(config)
    result = sim.run()
    assert result.safety_violations == 0
    assert result.committed_height >= 29
    refused = sim.attacks.rejected_by_behaviour.get("honest", {})
    assert Reason.BAD_TIMEOUT_SIGNATURE not in refused, refused
