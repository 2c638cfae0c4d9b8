"""Equivocation evidence: verification (valid vote and proposal evidence, forged signature, wrong
epoch, same block twice, unknown offender, another chain), the pool (one offence per offender
and epoch), the core (detects, includes, rejects bad evidence), and slashing of committed
evidence in the ledger through the simulator (once per offender and epoch)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from aitbc_node.consensus.actions import EvidenceFound, Rejected
from aitbc_node.consensus.evidence import EvidencePool
from aitbc_node.consensus.signing import vote_message
from aitbc_node.consensus.types import Block, EpochState, Evidence, Proposal
from aitbc_node.consensus.verify import Verifier
from aitbc_node.crypto import Domain, SignatureScheme
from aitbc_node.ledger.state import SLASH_DIVISOR
from aitbc_node.sim import SimConfig, Simulator
from test_consensus_harness import (
    Driven,
    Setup,
    build_chain,
    bystander,
    leader_of,
    make_setup,
    propose,
    sent,
    sign_vote,
)

DOMAIN = {"vote": Domain.VOTE, "proposal": Domain.PROPOSAL}


def signed_pair(
    setup: Setup,
    kind: str,
    offender: int,
    epoch: int = 1,
    round_: int = 5,
    chain_id: str | None = None,
) -> Evidence:
    """Two signatures by ``offender`` over different block ids for one (epoch, round)."""
    chain = setup.epoch.chain_id if chain_id is None else chain_id
    ids = sorted([bytes([1]) * 32, bytes([2]) * 32])
    secret = setup.keys[offender].secret
    sigs = [
        setup.scheme.sign(secret, DOMAIN[kind], vote_message(chain, epoch, round_, 7, block_id))
        for block_id in ids
    ]
    return Evidence(kind, epoch, round_, offender, 7, ids[0], sigs[0], 7, ids[1], sigs[1])


def verify_evidence(
    ev: Evidence, current: EpochState, previous: EpochState | None, scheme: SignatureScheme
) -> str | None:
    return Verifier(scheme, current, previous).evidence(ev)


@pytest.fixture(scope="module")
def setup() -> Setup:
    return make_setup(7)


@pytest.mark.parametrize("kind", ["vote", "proposal"])
def test_valid_evidence_verifies(setup: Setup, kind: str) -> None:
    assert verify_evidence(signed_pair(setup, kind, 3), setup.epoch, None, setup.scheme) is None


def test_forged_signature_is_refused(setup: Setup) -> None:
    ev = signed_pair(setup, "vote", 3)
    by_someone_else = signed_pair(setup, "vote", 4)
    forged = replace(ev, signature_b=by_someone_else.signature_b)
    assert verify_evidence(forged, setup.epoch, None, setup.scheme) == "evidence_bad_signature"
    garbage = replace(ev, signature_a=bytes(len(ev.signature_a)))
    assert verify_evidence(garbage, setup.epoch, None, setup.scheme) == "evidence_bad_signature"


def test_signatures_under_the_other_domain_are_refused(setup: Setup) -> None:
    vote_sigs = signed_pair(setup, "vote", 3)
    as_proposal = replace(vote_sigs, kind="proposal")
    assert verify_evidence(as_proposal, setup.epoch, None, setup.scheme) == (
        "evidence_bad_signature"
    )


def test_signatures_for_another_round_are_refused(setup: Setup) -> None:
    ev = signed_pair(setup, "vote", 3, round_=5)
    assert verify_evidence(replace(ev, round=6), setup.epoch, None, setup.scheme) == (
        "evidence_bad_signature"
    )


def test_wrong_epoch_is_refused_and_the_previous_epoch_accepted(setup: Setup) -> None:
    current = setup.epoch
    future = signed_pair(setup, "vote", 3, epoch=2)
    assert verify_evidence(future, current, None, setup.scheme) == "evidence_wrong_epoch"
    old = signed_pair(setup, "vote", 3, epoch=1)
    epoch3 = replace(current, epoch=3)
    epoch2 = replace(current, epoch=2)
    assert verify_evidence(old, epoch3, epoch2, setup.scheme) == "evidence_wrong_epoch"
    assert verify_evidence(old, epoch2, current, setup.scheme) is None


def test_signatures_for_another_chain_or_height_are_refused(setup: Setup) -> None:
    elsewhere = signed_pair(setup, "vote", 3, chain_id="another-chain")
    assert verify_evidence(elsewhere, setup.epoch, None, setup.scheme) == ("evidence_bad_signature")
    ev = signed_pair(setup, "vote", 3)
    assert verify_evidence(replace(ev, height_a=8), setup.epoch, None, setup.scheme) == (
        "evidence_bad_signature"
    )


def test_same_block_twice_is_no_evidence(setup: Setup) -> None:
    ev = signed_pair(setup, "vote", 3)
    same = replace(ev, block_b=ev.block_a, signature_b=ev.signature_a)
    assert verify_evidence(same, setup.epoch, None, setup.scheme) == "evidence_same_block"


def test_unknown_offender_and_kind_are_refused(setup: Setup) -> None:
    ev = signed_pair(setup, "vote", 3)
    assert verify_evidence(replace(ev, offender=setup.size), setup.epoch, None, setup.scheme) == (
        "evidence_unknown_offender"
    )
    assert verify_evidence(replace(ev, kind="timeout"), setup.epoch, None, setup.scheme) == (
        "evidence_unknown_kind"
    )


def test_pool_reports_one_offence_per_offender_and_epoch() -> None:
    pool = EvidencePool()
    assert pool.observe("vote", 1, 5, 3, 2, b"a" * 32, b"sa") is None
    assert pool.observe("vote", 1, 5, 3, 2, b"a" * 32, b"sa") is None  # the same vote again
    ev = pool.observe("vote", 1, 5, 3, 2, b"b" * 32, b"sb")
    assert ev is not None and (ev.offender, ev.epoch, ev.round) == (3, 1, 5)
    assert ev.key == (3, 1)
    assert (ev.block_a, ev.block_b) == (b"a" * 32, b"b" * 32)  # canonical order
    assert pool.observe("vote", 1, 5, 3, 2, b"b" * 32, b"sb") is None
    assert pool.observe("vote", 1, 5, 3, 2, b"c" * 32, b"sc") is None  # a third block: same offence
    # Another round of the same epoch adds nothing: one punishment per offender and epoch.
    assert pool.observe("vote", 1, 6, 3, 3, b"a" * 32, b"x") is None
    assert pool.observe("vote", 1, 6, 3, 3, b"d" * 32, b"y") is None
    assert pool.pending(16, 1) == [ev]
    assert pool.found == [ev]
    pool.mark_committed(ev)
    assert pool.pending(16, 1) == []
    pool.add(ev)  # seen again inside a later proposal: already committed, not pending again
    assert pool.pending(16, 1) == []
    assert pool.is_committed(ev.key)
    assert pool.observe("vote", 1, 7, 3, 4, b"e" * 32, b"z") is None
    assert pool.observe("vote", 1, 7, 3, 4, b"f" * 32, b"w") is None  # committed this epoch
    # The next epoch is another offence.
    assert pool.observe("vote", 2, 1, 3, 30, b"a" * 32, b"x2") is None
    assert pool.observe("vote", 2, 1, 3, 30, b"d" * 32, b"y2") is not None
    # A proposal and a vote for different blocks in one round are not an equivocation.
    assert pool.observe("proposal", 2, 7, 4, 30, b"a" * 32, b"p") is None
    assert pool.observe("vote", 2, 7, 4, 30, b"d" * 32, b"v") is None


def test_pool_drops_evidence_too_old_to_commit() -> None:
    pool = EvidencePool()
    pool.observe("vote", 1, 5, 3, 2, b"a" * 32, b"sa")
    ev = pool.observe("vote", 1, 5, 3, 2, b"b" * 32, b"sb")
    assert pool.pending(16, 2) == [ev]  # epoch 2 blocks may still carry epoch 1's evidence
    assert pool.pending(16, 3) == []  # epoch 3 ones may not: proposing it would be refused


def test_next_leader_detects_double_votes_once_and_includes_the_evidence() -> None:
    setup = make_setup(7)
    es = setup.epoch
    collector = leader_of(es, 2)
    chain = build_chain(setup, [1])
    block = chain.blocks[0]
    offender = next(i for i in range(setup.size) if i not in {collector, block.proposer})
    d = Driven(setup, collector)
    d.start(0)
    d.deliver(10, chain.proposals[0])
    fake = replace(block, timestamp_ms=block.timestamp_ms + 1)
    d.deliver(11, sign_vote(setup, es, offender, 1, block))
    d.deliver(12, sign_vote(setup, es, offender, 1, fake))
    d.deliver(13, sign_vote(setup, es, offender, 1, fake))
    found = [a.evidence for a in d.log if isinstance(a, EvidenceFound)]
    assert [(ev.kind, ev.offender, ev.round) for ev in found] == [("vote", offender, 1)]
    assert verify_evidence(found[0], es, None, setup.scheme) is None
    # Votes from the others complete a QC for block 1; the proposal for round 2 carries it.
    for t, voter in enumerate(i for i in range(setup.size) if i not in {collector, offender}):
        d.deliver(20 + t, sign_vote(setup, es, voter, 1, block))
    d.tick(block.timestamp_ms + es.params.block_interval(es.mode))
    proposals = [p for p in sent(d.log, Proposal) if isinstance(p, Proposal)]
    assert [p.block.round for p in proposals] == [2]
    assert proposals[0].block.evidence == (found[0],)


def test_a_proposal_with_forged_evidence_is_rejected() -> None:
    setup = make_setup(7)
    es = setup.epoch
    ev = signed_pair(setup, "vote", 3, round_=1)
    forged = replace(ev, signature_b=signed_pair(setup, "vote", 4, round_=1).signature_b)
    d = Driven(setup, bystander(setup, range(1, 3)))
    d.start(0)
    bad = propose(setup, es, round_=1, parent=setup.root, justify=es.anchor_qc, evidence=[forged])
    out = d.deliver(10, bad)
    assert [a.reason for a in out if isinstance(a, Rejected)] == ["evidence_bad_signature"]
    assert d.votes() == []
    good = propose(setup, es, round_=1, parent=setup.root, justify=es.anchor_qc, evidence=[ev])
    d.deliver(11, good)
    assert d.voted_rounds() == [1]


# --------------------------------------------------------------------------- slashing


def test_committed_evidence_slashes_ten_percent_and_removes_the_offender() -> None:
    offender = 2
    sim = Simulator(
        SimConfig(
            validators=7,
            authorities=7,
            blocks=25,
            seed=3,
            crypto="modeled",
            equivocator_ids=(offender,),
            epoch_length=10,
            latency_ms=20,
        )
    )
    result = sim.run()
    assert result.safety_violations == 0
    assert offender in result.slashed_validators
    assert result.final_epoch >= 3
    honest = next(n for n in sim.nodes if not n.byzantine)
    # Replay the committed evidence: each offence (offender, epoch) takes a tenth, once.
    genesis_stake = sim.genesis.validators[offender].stake
    expected = genesis_stake
    offences: set[tuple[int, int]] = set()
    first_slash_height = None
    committed: list[Block] = [block for block, _qc in honest.committed]
    for block in committed:
        for ev in block.evidence:
            assert ev.offender == offender  # nobody honest is ever accused
            if ev.key not in offences:
                offences.add(ev.key)
                expected -= expected // SLASH_DIVISOR
                first_slash_height = first_slash_height or block.height
    assert offences, "no evidence was committed"
    assert honest.replica.ledger.slash_events() == tuple(sorted(offences))
    record = honest.replica.ledger.validator(offender)
    assert record.slashed
    assert record.stake == expected
    assert expected <= genesis_stake - genesis_stake // SLASH_DIVISOR
    # From the next epoch on, the offender has no stake and no authority in the set.
    assert first_slash_height is not None
    later: list[EpochState] = [e for e in honest.epochs if e.start_height > first_slash_height]
    assert later
    for state in later:
        slot = state.validators.validators[offender]
        assert (slot.stake, slot.authority) == (0, False)
        assert state.validators.authority_count == 6
    # Other validators keep their stake.
    for index in range(7):
        if index != offender:
            assert not honest.replica.ledger.validator(index).slashed
