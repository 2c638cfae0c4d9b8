"""Votes and timeouts are checked aggregate first (``consensus.collector``): one
``fast_aggregate_verify`` per certificate when every signature is good, each signature alone only
when that fails, and no forgery in an honest validator's name can displace its real message or
turn into evidence against it."""

from __future__ import annotations

from dataclasses import replace

from aitbc_node.consensus.actions import Action, EvidenceFound, Rejected
from aitbc_node.consensus.reasons import Reason
from aitbc_node.consensus.types import Vote
from test_consensus_harness import (
    Driven,
    build_chain,
    bystander,
    leader_of,
    make_setup,
    sign_timeout,
    sign_vote,
)

VALIDATORS = 10


def reasons(actions: list[Action]) -> list[str]:
    return [a.reason for a in actions if isinstance(a, Rejected)]


def forged(vote: Vote) -> Vote:
    """``vote`` with a signature that is not its voter's (the bytes of another signature)."""
    return replace(vote, signature=bytes(reversed(vote.signature)))


def leader_with_block(setup_size: int = VALIDATORS) -> tuple[Driven, object, list[int]]:
    setup = make_setup(setup_size)
    es = setup.epoch
    leader2 = leader_of(es, 2)
    chain = build_chain(setup, [1])
    d = Driven(setup, leader2)
    d.start(0)
    d.deliver(5, chain.proposals[0])  # the leader votes for it itself
    voters = [i for i in range(setup.size) if i not in {leader2, chain.blocks[0].proposer}]
    return d, chain.blocks[0], voters


def test_a_quorum_of_good_votes_costs_one_aggregate_check_and_no_single_one() -> None:
    d, block, voters = leader_with_block()
    setup, es = d.setup, d.setup.epoch
    d.recorder.checks.clear()
    for t, voter in enumerate(voters):
        d.deliver(10 + t, sign_vote(setup, es, voter, 1, block))
        if d.core.high_qc.round == 1:
            break
    assert d.core.high_qc.round == 1 and d.core.high_qc.block_id == block.id
    assert d.recorder.checks == {"fast_aggregate_verify": 1}
    assert d.core.verify_qc(d.core.high_qc) is None


def test_a_bad_vote_is_found_only_when_the_aggregate_fails_and_the_rest_certify() -> None:
    d, block, voters = leader_with_block()
    setup, es = d.setup, d.setup.epoch
    bad_voter = voters[0]
    d.recorder.checks.clear()
    out = d.deliver(10, forged(sign_vote(setup, es, bad_voter, 1, block)))
    assert reasons(out) == [] and not d.recorder.checks  # nothing checked on arrival
    found: list[str] = []
    for t, voter in enumerate(voters[1:]):
        found += reasons(d.deliver(11 + t, sign_vote(setup, es, voter, 1, block)))
        if d.core.high_qc.round == 1:
            break
    assert found == [Reason.BAD_VOTE_SIGNATURE]
    qc = d.core.high_qc
    assert qc.round == 1 and bad_voter not in qc.signer_set
    # One failed aggregate, then each signature alone (one QC, no second aggregate).
    assert d.recorder.checks["fast_aggregate_verify"] == 1
    assert d.recorder.checks["verify"] >= len(qc.signer_set) - 1
    assert d.core.verify_qc(qc) is None


def test_a_forgery_sent_first_in_a_voters_name_does_not_displace_its_real_vote() -> None:
    d, block, voters = leader_with_block()
    setup, es = d.setup, d.setup.epoch
    victim = voters[0]
    real = sign_vote(setup, es, victim, 1, block)
    assert reasons(d.deliver(10, forged(real))) == []
    # The real one arrives: the two are checked against each other, the forgery goes.
    assert reasons(d.deliver(11, real)) == [Reason.BAD_VOTE_SIGNATURE]
    assert reasons(d.deliver(12, forged(real))) == [Reason.BAD_VOTE_SIGNATURE]
    for t, voter in enumerate(voters[1:]):
        d.deliver(13 + t, sign_vote(setup, es, voter, 1, block))
        if d.core.high_qc.round == 1:
            break
    assert victim in d.core.high_qc.signer_set
    assert d.core.verify_qc(d.core.high_qc) is None


def test_only_a_real_double_vote_becomes_evidence() -> None:
    d, block, voters = leader_with_block()
    setup, es = d.setup, d.setup.epoch
    twin = replace(block, timestamp_ms=block.timestamp_ms + 1)
    victim, offender = voters[0], voters[1]
    # A forged vote for another block in an honest voter's name: refused, no evidence.
    d.deliver(10, sign_vote(setup, es, victim, 1, block))
    out = d.deliver(11, forged(sign_vote(setup, es, victim, 1, twin)))
    assert reasons(out) == [Reason.BAD_VOTE_SIGNATURE]
    assert not [a for a in out if isinstance(a, EvidenceFound)]
    # A forged FIRST vote then the voter's real one for another block: the forgery is dropped
    # (from the evidence pool and its collector), the real one counts, no evidence.
    d.deliver(12, forged(sign_vote(setup, es, offender, 1, twin)))
    out = d.deliver(13, sign_vote(setup, es, offender, 1, block))
    assert reasons(out) == [Reason.BAD_VOTE_SIGNATURE]
    assert not [a for a in out if isinstance(a, EvidenceFound)]
    assert offender in d.core.votes[(1, block.height, block.id)].signatures
    assert offender not in d.core.votes[(1, twin.height, twin.id)].signatures
    # A real double vote: evidence.
    out = d.deliver(14, sign_vote(setup, es, offender, 1, twin))
    assert [a.evidence.offender for a in out if isinstance(a, EvidenceFound)] == [offender]


def test_timeouts_cost_one_aggregate_check_per_decision_and_retransmissions_nothing() -> None:
    setup = make_setup(VALIDATORS)
    es = setup.epoch
    me = bystander(setup, range(1, 4), fallback_rounds=[2])
    d = Driven(setup, me)
    d.start(0)
    others = [i for i in range(setup.size) if i != me]
    d.recorder.checks.clear()
    for t, voter in enumerate(others):
        timeout = sign_timeout(setup, es, voter, 1, es.anchor_qc)
        for repeat in range(3):  # every timeout period, a stuck node sends its timeout again
            d.deliver(10 + 3 * t + repeat, timeout)
        if d.core.round == 2:
            break
    assert d.core.round == 2 and d.core.last_tc is not None
    # One aggregate for the weak quorum that made this node join, one for the TC's newcomers.
    assert d.recorder.checks == {"fast_aggregate_verify": 2}
    assert d.core.verify_tc(d.core.last_tc) is None
