"""Consensus benchmarks: QC verification through the core next to bare blspy, the hot path of a
replica (one vote verified, one proposal processed: checks, signatures, insertion, its vote), and
the two acceptance simulations (100 validators with real BLS, 1,000 validators modeled)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from aitbc_node.chain import first_epoch, genesis_block
from aitbc_node.consensus.core import ConsensusCore
from aitbc_node.consensus.signing import vote_message
from aitbc_node.consensus.types import QuorumCert, SafetyState, bitmap_from
from aitbc_node.consensus.verify import Verifier
from aitbc_node.crypto import BlsScheme, Domain, signed_message, testnet_bls_keypair
from aitbc_node.genesis import make_testnet_genesis
from aitbc_node.ledger.state import LedgerState
from aitbc_node.replica import Replica
from blspy import G1Element, G2Element, PopSchemeMPL
from figures import Figure, at_least, at_most

UNIT_TESTS = Path(__file__).resolve().parent.parent / "tests" / "unit"
if str(UNIT_TESTS) not in sys.path:
    sys.path.insert(0, str(UNIT_TESTS))

#: Validators of the hot-path epoch (real BLS).
HOT_PATH_VALIDATORS = 100

#: Core QC verification may cost at most this multiple of a bare fast_aggregate_verify.
QC_OVERHEAD_LIMIT = 1.5
#: Wall-clock budget of each acceptance simulation (seconds).
SIM_WALL_LIMIT_S = 120.0
SIM_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class QcCase:
    core: ConsensusCore
    qc: QuorumCert
    public_keys: list[G1Element]
    signature: G2Element
    message: bytes


def qc_case(signers: int) -> QcCase:
    """A real-BLS epoch of ``signers`` validators, its core, and a QC signed by all of them."""
    scheme = BlsScheme()
    seed = f"bench-qc-{signers}"
    genesis = make_testnet_genesis(
        validators=signers, authorities=min(21, signers), seed=seed, scheme=scheme
    )
    ledger = LedgerState.from_genesis(genesis, scheme)
    epoch = first_epoch(genesis, ledger.validator_records())
    root, root_qc = genesis_block(genesis)
    keys = [testnet_bls_keypair(scheme, seed, i) for i in range(signers)]
    core = ConsensusCore(
        me=0,
        secret=keys[0].secret,
        scheme=scheme,
        app=Replica(ledger, epoch, "balanced", state_roots=False),
        epoch=epoch,
        root=root,
        root_qc=root_qc,
        safety=SafetyState(epoch=epoch.epoch),
    )
    block_id = bytes(range(32))
    vote = vote_message(epoch.chain_id, epoch.epoch, 1, 1, block_id)
    aggregate = scheme.aggregate([scheme.sign(k.secret, Domain.VOTE, vote) for k in keys])
    qc = QuorumCert(
        epoch=epoch.epoch,
        round=1,
        height=1,
        block_id=block_id,
        signers=bitmap_from(set(range(signers)), signers),
        signature=aggregate,
    )
    if core.verify_qc(qc) is not None:  # also parses every key into the scheme's cache
        raise RuntimeError(f"bench QC of {signers} signers does not verify: {core.verify_qc(qc)}")
    return QcCase(
        core=core,
        qc=qc,
        public_keys=[G1Element.from_bytes(k.public) for k in keys],
        signature=G2Element.from_bytes(aggregate),
        message=signed_message(Domain.VOTE, vote),
    )


def _median_ms(samples: list[int]) -> float:
    return statistics.median(samples) / 1e6


def time_qc(case: QcCase, repeats: int) -> tuple[float, float]:
    """(core, bare) median milliseconds, measured interleaved so both see the same load."""
    core_ns: list[int] = []
    bare_ns: list[int] = []
    for _ in range(repeats):
        fresh = replace(case.qc)  # a QC as it comes off the wire: no cached signer set
        # A verifier that has not seen it (the core remembers valid QCs: a QC travels in many
        # messages, and only the first one pays).
        verifier = Verifier(case.core.scheme, case.core.epoch_state, None)
        started = time.perf_counter_ns()
        reason = verifier.qc(fresh)
        core_ns.append(time.perf_counter_ns() - started)
        if reason is not None:
            raise RuntimeError(f"core rejected the bench QC: {reason}")
        started = time.perf_counter_ns()
        ok = PopSchemeMPL.fast_aggregate_verify(case.public_keys, case.message, case.signature)
        bare_ns.append(time.perf_counter_ns() - started)
        if not ok:
            raise RuntimeError("bare fast_aggregate_verify rejected the bench QC")
    return _median_ms(core_ns), _median_ms(bare_ns)


def time_signature_parse(case: QcCase, repeats: int) -> float:
    raw = bytes(case.signature)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        G2Element.from_bytes(raw)
        samples.append(time.perf_counter_ns() - started)
    return _median_ms(samples)


def qc_figures(quick: bool) -> list[Figure]:
    repeats = 20 if quick else 200
    figures = []
    for signers in (100, 1000):
        case = qc_case(signers)
        core_ms, bare_ms = time_qc(case, repeats)
        ratio = core_ms / bare_ms
        figures += [
            Figure(f"QC verify via core, {signers} signers", core_ms, "ms"),
            Figure(f"bare fast_aggregate_verify, {signers} signers", bare_ms, "ms"),
            Figure(
                f"core / bare, {signers} signers",
                ratio,
                "x",
                f"<= {QC_OVERHEAD_LIMIT}x",
                ratio <= QC_OVERHEAD_LIMIT,
            ),
        ]
    figures.append(
        Figure(
            "parse a fresh aggregate signature (G2)",
            time_signature_parse(case, repeats),
            "ms",
            "paid once per new QC",
        )
    )
    return figures


def hot_path_figures(quick: bool) -> list[Figure]:
    """Median cost of what every replica does per round with real BLS: verify one vote (as the
    runtime's verifier thread does) and process one proposal end to end (screening, proposer,
    RANDAO and QC signatures, the tree, the vote rule, signing its vote)."""
    from test_consensus_harness import build_chain, bystander, make_setup, new_core, sign_vote

    rounds = 12 if quick else 60
    setup = make_setup(HOT_PATH_VALIDATORS, 21, scheme=BlsScheme())
    chain = build_chain(setup, range(1, rounds + 1))
    me = bystander(setup, range(1, rounds + 2))
    votes = [
        sign_vote(setup, setup.epoch, (me + 1) % setup.size, block.round, block)
        for block in chain.blocks
    ]
    core = new_core(setup, me)
    core.start(0)
    vote_ns: list[int] = []
    for vote in votes:
        started = time.perf_counter_ns()
        reason = core.verify_message(vote)
        vote_ns.append(time.perf_counter_ns() - started)
        if reason is not None:
            raise RuntimeError(f"bench vote rejected: {reason}")
    proposal_ns: list[int] = []
    for position, proposal in enumerate(chain.proposals):
        now = proposal.block.timestamp_ms + 5
        started = time.perf_counter_ns()
        core.on_message(now, proposal.block.proposer, proposal)
        proposal_ns.append(time.perf_counter_ns() - started)
        if core.safety.last_voted_round != proposal.block.round:
            raise RuntimeError(f"bench core did not vote for block {position + 1}")
    return [
        Figure(f"verify one vote, {HOT_PATH_VALIDATORS} validators", _median_ms(vote_ns), "ms"),
        Figure(
            f"process one proposal (verify, insert, vote), {HOT_PATH_VALIDATORS} validators",
            _median_ms(proposal_ns),
            "ms",
        ),
    ]


@dataclass(frozen=True)
class SimRun:
    label: str
    args: tuple[str, ...]
    blocks: int


def run_sim(run: SimRun) -> list[Figure]:
    command = [sys.executable, "-m", "aitbc_node.cli", "sim", *run.args, "--json"]
    started = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=SIM_TIMEOUT_S, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(
            f"{' '.join(command[2:])} exited {done.returncode}: {done.stderr.strip()[-500:]}"
        )
    report = json.loads(done.stdout)
    height = int(report["committed_height"])
    return [
        at_most(f"{run.label}: wall time", wall, "s", SIM_WALL_LIMIT_S),
        at_least(f"{run.label}: committed height", height, "blocks", run.blocks),
        Figure(
            f"{run.label}: safety violations",
            int(report["safety_violations"]),
            "",
            "== 0",
            report["safety_violations"] == 0,
        ),
        Figure(f"{run.label}: simulated blocks per wall second", height / wall, "blocks/s"),
        Figure(f"{run.label}: simulated time", float(report["simulated_seconds"]), "s"),
        Figure(f"{run.label}: finality p50 (simulated)", report["finality_ms"]["p50"], "ms"),
    ]


def sim_runs(quick: bool) -> list[SimRun]:
    if quick:
        return [
            SimRun("sim 100 real (quick: 10 blocks)", _args(100, "balanced", 10, "real"), 10),
            SimRun("sim 200 modeled (quick: 5 blocks)", _args(200, "secure", 5, "modeled"), 5),
        ]
    return [
        SimRun("sim 100 validators real 50 blocks", _args(100, "balanced", 50, "real"), 50),
        SimRun("sim 1000 validators modeled 20 blocks", _args(1000, "secure", 20, "modeled"), 20),
    ]


def _args(validators: int, mode: str, blocks: int, crypto: str) -> tuple[str, ...]:
    return (
        "--validators",
        str(validators),
        "--authorities",
        "21",
        "--mode",
        mode,
        "--blocks",
        str(blocks),
        "--seed",
        "1",
        "--crypto",
        crypto,
    )


def run(quick: bool) -> list[Figure]:
    figures = qc_figures(quick) + hot_path_figures(quick)
    for sim in sim_runs(quick):
        figures += run_sim(sim)
    return figures
