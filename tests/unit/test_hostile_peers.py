"""The core against hostile peers, one rule at a time: every attack of issue 10 is refused, for
the reason the metric will count, and what an honest peer does still passes.

Clock, certificates, chain id, replay, floods, proposals per round, sync answers, evidence
gossip. Messages are hand-built and signed with the validators' own keys (``Signer``), so
only what a test changes is wrong.
"""

from __future__ import annotations

from dataclasses import replace

from aitbc_node.consensus.actions import Action, Broadcast, EvidenceFound, Rejected
from aitbc_node.consensus.core import PROPOSALS_PER_PROPOSER, VOTES_PER_VOTER
from aitbc_node.consensus.reasons import REJECT_REASONS, Reason
from aitbc_node.consensus.rules import FUTURE_ROUND_WINDOW
from aitbc_node.consensus.signing import qc_round_in
from aitbc_node.consensus.types import (
    MAX_CLOCK_DRIFT_MS,
    EvidenceMsg,
    Proposal,
    QcMsg,
    TimeoutCert,
    TimeoutCertMsg,
    TimeoutGroup,
    bitmap_from,
)
from test_consensus_harness import (
    Driven,
    build_chain,
    bystander,
    leader_of,
    make_setup,
    propose,
    qc_for,
    sent,
    sign_timeout,
    sign_vote,
    signer,
    tc_for,
)

ROUNDS = range(1, 6)


def reasons(actions: list[Action]) -> list[str]:
    return [a.reason for a in actions if isinstance(a, Rejected)]


def test_every_reason_is_a_metric_label() -> None:
    assert len(set(REJECT_REASONS)) == len(REJECT_REASONS)
    assert all(r.replace("_", "").isalpha() and r.islower() for r in REJECT_REASONS)


# --------------------------------------------------------------------------- the clock


def test_a_proposal_stamped_beyond_the_clock_drift_is_refused_a_few_seconds_are_not() -> None:
    setup = make_setup(7)
    es = setup.epoch
    now = 50_000
    far = propose(
        setup,
        es,
        round_=1,
        parent=setup.root,
        justify=es.anchor_qc,
        timestamp_ms=now + MAX_CLOCK_DRIFT_MS + 1,
    )
    d = Driven(setup, bystander(setup, ROUNDS))
    d.start(now - 10)
    assert reasons(d.deliver(now, far)) == [Reason.TIMESTAMP_IN_FUTURE]
    assert far.block.id not in d.core.tree and d.votes() == []
    # A leader whose clock runs three seconds ahead: voted.
    skewed = propose(
        setup, es, round_=1, parent=setup.root, justify=es.anchor_qc, timestamp_ms=now + 3_000
    )
    d = Driven(setup, bystander(setup, ROUNDS))
    d.start(now - 10)
    d.deliver(now, skewed)
    assert d.voted_rounds() == [1]


def test_a_proposal_far_behind_the_clock_is_not_voted_for() -> None:
    setup = make_setup(7)
    es = setup.epoch
    old = propose(setup, es, round_=1, parent=setup.root, justify=es.anchor_qc, timestamp_ms=5)
    d = Driven(setup, bystander(setup, ROUNDS))
    start = 5 + MAX_CLOCK_DRIFT_MS + 2
    d.start(start)
    late = start + d.core.round_duration_ms() - 1  # still in round 1: its timer has not fired
    assert reasons(d.deliver(late, old)) == [Reason.TIMESTAMP_TOO_OLD]
    assert d.votes() == []


def test_a_leader_never_waits_more_than_one_interval_for_a_parent_stamped_ahead() -> None:
    setup = make_setup(7)
    es = setup.epoch
    interval = es.params.block_interval(es.mode)
    ahead = 3_000
    chain = build_chain(setup, [1])
    parent = replace(chain.blocks[0], timestamp_ms=1_000 + ahead)
    proposal = signer(setup, parent.proposer).proposal(parent)
    leader2 = leader_of(es, 2)
    d = Driven(setup, leader2)
    d.start(900)
    d.deliver(1_000, proposal)
    d.deliver(1_001, QcMsg(qc_for(setup, es, parent)), sender=0)
    assert d.core.proposal_due_ms == 1_001 + interval  # not parent + interval, 3 s away
    d.tick(1_001 + interval)
    mine = [p for p in sent(d.log, Proposal) if isinstance(p, Proposal) and p.block.round == 2]
    assert [p.block.timestamp_ms for p in mine] == [parent.timestamp_ms]  # never before it


# --------------------------------------------------------------------------- certificates


def test_a_relayed_qc_with_an_altered_height_or_a_padded_bitmap_is_refused() -> None:
    setup = make_setup(7)
    es = setup.epoch
    chain = build_chain(setup, [1])
    qc = chain.qcs[0]
    d = Driven(setup, bystander(setup, ROUNDS))
    d.start(0)
    assert reasons(d.deliver(5, QcMsg(replace(qc, height=qc.height + 1)), sender=2)) == [
        Reason.QC_BAD_SIGNATURE
    ]
    assert reasons(d.deliver(6, QcMsg(replace(qc, signers=qc.signers + b"\x00")), sender=2)) == [
        Reason.QC_BAD_SIGNERS
    ]
    assert d.core.high_qc == es.anchor_qc  # neither was taken
    # Inside a timeout (whose own signature covers only the QC's round) or a TC.
    timeout = sign_timeout(setup, es, 2, 2, qc)
    tampered = replace(timeout, high_qc=replace(qc, height=qc.height + 1))
    assert reasons(d.deliver(7, tampered)) == [Reason.QC_BAD_SIGNATURE]
    tc = tc_for(setup, es, 2, high_qc=qc)
    bad_tc = replace(tc, high_qc=replace(qc, height=qc.height + 1))
    assert reasons(d.deliver(8, TimeoutCertMsg(bad_tc), sender=2)) == [Reason.QC_BAD_SIGNATURE]
    assert reasons(d.deliver(9, QcMsg(qc), sender=2)) == []
    assert d.core.high_qc == qc


def test_a_timeout_signs_the_round_of_the_qc_it_carries() -> None:
    setup = make_setup(7)
    es = setup.epoch
    chain = build_chain(setup, [1, 2])
    d = Driven(setup, bystander(setup, ROUNDS))
    d.start(0)
    honest = sign_timeout(setup, es, 2, 3, chain.qcs[1])
    # A QC as high as the timeout's own round is impossible for an honest sender (refused
    # before any signature is checked).
    assert reasons(d.deliver(6, sign_timeout(setup, es, 2, 2, chain.qcs[1]))) == [
        Reason.TIMEOUT_BAD_HIGH_QC
    ]
    # The same signature with an older QC swapped in: the signed round no longer matches.
    # Timeouts are checked aggregate first, so it waits unchecked; the sender's genuine
    # timeout (over a higher QC round) then replaces it, unchecked too, and the swapped copy
    # arriving again is an overtaken one: ignored, at no cost.
    swapped = replace(honest, high_qc=chain.qcs[0])
    assert reasons(d.deliver(5, swapped)) == []
    assert reasons(d.deliver(7, honest)) == []
    assert d.core.timeouts[3].entries[2] == honest
    assert reasons(d.deliver(8, swapped)) == []
    assert d.core.timeouts[3].entries[2] == honest
    assert reasons(d.deliver(9, honest)) == []  # a retransmission: nothing to check
    # Another signature over the same signed round: one of the two is a forgery (BLS
    # signatures are unique); both are checked and the genuine one stays.
    forged = replace(honest, signature=sign_timeout(setup, es, 3, 3, chain.qcs[1]).signature)
    assert reasons(d.deliver(10, forged)) == [Reason.BAD_TIMEOUT_SIGNATURE]
    assert d.core.timeouts[3].entries[2] == honest


def test_an_honest_timeout_re_signed_over_a_higher_qc_is_no_rejection() -> None:
    """A node re-signs its timeout each time its round timer fires again, with the highest QC
    it knows by then: the newer one replaces the older, nobody is reported (at 100 validators
    these false reports cost a signature check each and flagged honest nodes)."""
    setup = make_setup(7)
    es = setup.epoch
    chain = build_chain(setup, [1, 2])
    d = Driven(setup, bystander(setup, ROUNDS))
    d.start(0)
    first = sign_timeout(setup, es, 2, 3, chain.qcs[0])
    again = sign_timeout(setup, es, 2, 3, chain.qcs[1])
    assert reasons(d.deliver(5, first)) == []
    assert reasons(d.deliver(6, again)) == []
    assert d.core.timeouts[3].entries[2] == again
    assert reasons(d.deliver(7, first)) == []  # overtaken copy
    assert d.core.timeouts[3].entries[2] == again


def test_a_tc_proves_its_high_qc_with_groups_of_signed_rounds() -> None:
    setup = make_setup(7)
    es = setup.epoch
    chain = build_chain(setup, [1, 2])
    qc1, qc2 = chain.qcs
    low = [sign_timeout(setup, es, i, 3, qc1) for i in (0, 1, 2)]
    high = [sign_timeout(setup, es, i, 3, qc2) for i in (3, 4)]

    def group(timeouts: list, round_: int) -> TimeoutGroup:
        return TimeoutGroup(
            round_,
            bitmap_from({t.voter for t in timeouts}, setup.size),
            setup.scheme.aggregate([t.signature for t in timeouts]),
        )

    good = TimeoutCert(1, 3, (group(high, 2), group(low, 1)), qc2)
    d = Driven(setup, bystander(setup, ROUNDS, fallback_rounds=[4]))
    d.start(0)
    cases = {
        Reason.TC_HIGH_QC_MISMATCH: replace(good, high_qc=qc1),
        Reason.TC_BAD_GROUPS: replace(good, groups=(group(low, 1), group(high, 2))),  # order
        Reason.TC_NO_QUORUM: replace(good, groups=(group(high, 2),)),
        Reason.TC_BAD_SIGNATURE: replace(good, groups=(group(high, 2), group(low, 0))),
    }
    overlapping = TimeoutGroup(1, bitmap_from({0, 1, 3}, setup.size), group(low, 1).signature)
    cases_bad_groups = replace(good, groups=(group(high, 2), overlapping))
    for reason, tc in cases.items():
        assert reasons(d.deliver(5, TimeoutCertMsg(tc), sender=6)) == [reason], reason
    assert reasons(d.deliver(5, TimeoutCertMsg(cases_bad_groups), sender=6)) == [
        Reason.TC_BAD_GROUPS
    ]
    assert reasons(d.deliver(6, TimeoutCertMsg(good), sender=6)) == []
    assert d.core.round == 4 and d.core.high_qc == qc2


def test_a_node_that_forms_a_tc_groups_the_signed_rounds() -> None:
    setup = make_setup(7)
    es = setup.epoch
    chain = build_chain(setup, [1, 2])
    me = bystander(setup, ROUNDS, fallback_rounds=[4])
    d = Driven(setup, me)
    d.start(0)
    for t, proposal in enumerate(chain.proposals):
        d.deliver(10 + t, proposal)
    others = [i for i in range(setup.size) if i != me]
    for t, voter in enumerate(others[:4]):
        qc = chain.qcs[1] if t % 2 else chain.qcs[0]
        d.deliver(20 + t, sign_timeout(setup, es, voter, 3, qc))
    tc = d.core.last_tc
    assert tc is not None and tc.round == 3
    assert [g.high_qc_round for g in tc.groups] == [2, 1]
    assert tc.high_qc == chain.qcs[1]
    assert d.core.verify_tc(tc) is None


# --------------------------------------------------------------------------- chain id and replay


def test_messages_signed_for_another_chain_are_refused() -> None:
    setup = make_setup(7)
    es = setup.epoch
    me = bystander(setup, ROUNDS)
    leader2 = leader_of(es, 2)
    elsewhere = {i: signer(setup, i).for_chain("another-chain") for i in range(setup.size)}
    honest = propose(setup, es, round_=1, parent=setup.root, justify=es.anchor_qc)
    block = honest.block
    forked = replace(block, randao_reveal=elsewhere[block.proposer].randao_reveal(1))
    d = Driven(setup, me)
    d.start(0)
    assert reasons(d.deliver(5, elsewhere[block.proposer].proposal(forked))) == [
        Reason.BAD_PROPOSAL_SIGNATURE
    ]
    # Timeouts and votes are checked aggregate first: a foreign one is found out when the
    # collector must decide (a weak quorum of timeouts, a quorum of votes), and does not count.
    timeouts = [elsewhere[i].timeout(1, 1, es.anchor_qc) for i in range(setup.size) if i != me]
    outs = [d.deliver(6, timeout) for timeout in timeouts]
    # The third makes a weak quorum: all three are checked and refused; from then on each
    # newcomer is checked on arrival.
    assert [len(reasons(out)) for out in outs] == [0, 0, 3, 1, 1, 1]
    assert {r for out in outs for r in reasons(out)} == {Reason.BAD_TIMEOUT_SIGNATURE}
    assert d.core.timeouts[1].signers == set() and d.core.round == 1
    leader = Driven(setup, leader2)
    leader.start(0)
    leader.deliver(7, honest)
    others = [i for i in range(setup.size) if i not in {leader2, block.proposer}]
    votes = [elsewhere[i].vote(1, 1, block.height, block.id) for i in others]
    outs = [leader.deliver(8, vote) for vote in votes]
    # With its own vote, the fourth makes a quorum: the four are checked and refused at once.
    assert [len(reasons(out)) for out in outs] == [0, 0, 0, 4, 1]
    assert {r for out in outs for r in reasons(out)} == {Reason.BAD_VOTE_SIGNATURE}
    assert leader.core.high_qc == es.anchor_qc  # no QC from foreign signatures


def test_replayed_and_relayed_messages_are_refused_before_any_signature_check() -> None:
    setup = make_setup(7)
    es = setup.epoch
    chain = build_chain(setup, [1, 2, 3, 4])
    leader3 = leader_of(es, 3)
    d = Driven(setup, leader3)
    d.start(0)
    for t, proposal in enumerate(chain.proposals):
        d.deliver(10 + t, proposal)
    assert d.core.round == 4
    old_vote = sign_vote(setup, es, 2, 2, chain.blocks[1])
    # Relayed by someone else: only its author may send a vote.
    assert reasons(d.deliver(20, old_vote, sender=3)) == [Reason.SENDER_MISMATCH]
    # Replayed by its author, rounds later.
    assert reasons(d.deliver(21, old_vote)) == [Reason.STALE_MESSAGE]
    # An old proposal replayed: its height is committed (no signature is checked for it).
    assert reasons(d.deliver(22, chain.proposals[0])) == [Reason.STALE_MESSAGE]
    # A vote sent to someone who is not the next leader.
    elsewhere = next(r for r in range(4, 40) if leader_of(es, r + 1) != leader3)
    misdirected = sign_vote(setup, es, 2, elsewhere, chain.blocks[3])
    assert reasons(d.deliver(23, misdirected)) == [Reason.MISDIRECTED_VOTE]
    # A message of an earlier epoch.
    previous = replace(old_vote, epoch=0)
    assert reasons(d.deliver(24, previous)) == [Reason.STALE_MESSAGE]


# --------------------------------------------------------------------------- floods


def test_far_future_votes_and_timeouts_leave_no_state_behind() -> None:
    setup = make_setup(7)
    es = setup.epoch
    me = bystander(setup, ROUNDS)
    d = Driven(setup, me)
    d.start(0)
    attacker = next(i for i in range(setup.size) if i != me)
    far = d.core.round + FUTURE_ROUND_WINDOW + 1
    for k in range(50):
        timeout = sign_timeout(setup, es, attacker, far + k, es.anchor_qc)
        assert reasons(d.deliver(10 + k, timeout)) == [Reason.ROUND_TOO_FAR_AHEAD]
    assert d.core.timeouts == {}
    # A far timeout carrying a higher QC than ours is still worth its certificate.
    chain = build_chain(setup, [1])
    catch_up = sign_timeout(setup, es, attacker, far + 500, chain.qcs[0])
    assert reasons(d.deliver(100, catch_up)) == []
    assert d.core.high_qc == chain.qcs[0] and d.core.round == 2
    assert d.core.timeouts == {}


def test_a_voter_counts_at_most_twice_per_round_at_the_leader() -> None:
    setup = make_setup(7)
    es = setup.epoch
    leader2 = leader_of(es, 2)
    d = Driven(setup, leader2)
    d.start(0)
    chain = build_chain(setup, [1])
    block = chain.blocks[0]
    flooder = next(i for i in range(setup.size) if i not in {leader2, block.proposer})
    for k in range(20):
        fake = replace(block, timestamp_ms=block.timestamp_ms + 1 + k)
        d.deliver(10 + k, sign_vote(setup, es, flooder, 1, fake))
    assert len(d.core.votes) == VOTES_PER_VOTER
    found = [a for a in d.log if isinstance(a, EvidenceFound)]
    assert [ev.evidence.offender for ev in found] == [flooder]  # once per epoch


def test_a_third_block_of_a_proposer_in_one_round_is_not_inserted() -> None:
    setup = make_setup(7)
    es = setup.epoch
    d = Driven(setup, bystander(setup, ROUNDS))
    d.start(0)
    blocks = [
        propose(setup, es, round_=1, parent=setup.root, justify=es.anchor_qc, timestamp_ms=1 + k)
        for k in range(PROPOSALS_PER_PROPOSER + 1)
    ]
    outs = [d.deliver(10 + k, p) for k, p in enumerate(blocks)]
    assert [reasons(out) for out in outs] == [[], [], [Reason.PROPOSAL_FLOOD]]
    assert blocks[1].block.id in d.core.tree  # the twin is kept: others may certify it
    assert blocks[2].block.id not in d.core.tree
    assert d.voted_rounds() == [1]  # one vote, for the first


# --------------------------------------------------------------------------- sync and evidence


def test_sync_inserts_only_blocks_a_verified_qc_certifies() -> None:
    setup = make_setup(7)
    es = setup.epoch
    chain = build_chain(setup, [1, 2, 3])
    fake = propose(
        setup, es, round_=2, parent=chain.blocks[0], justify=chain.qcs[0], timestamp_ms=99
    ).block
    d = Driven(setup, bystander(setup, ROUNDS))
    d.start(0)
    # An uncertified block in the middle of an answer ends it.
    out = d.core.on_sync(10, 2, [chain.blocks[0], fake, chain.blocks[2]], chain.qcs[2])
    assert reasons(out) == [Reason.SYNC_UNCERTIFIED_BLOCK]
    assert fake.id not in d.core.tree and chain.blocks[0].id in d.core.tree
    # A certifier whose height does not match the block's.
    wrong = replace(chain.qcs[1], height=7)
    out = d.core.on_sync(11, 2, [chain.blocks[1]], wrong)
    assert reasons(out) == [Reason.SYNC_BAD_QC]
    # Cut short: the last block has no certifier yet; skipped without complaint.
    out = d.core.on_sync(12, 2, [chain.blocks[1], chain.blocks[2]], None)
    assert reasons(out) == [] and chain.blocks[2].id not in d.core.tree
    assert chain.blocks[1].id in d.core.tree


def test_found_evidence_is_broadcast_and_taken_from_peers() -> None:
    setup = make_setup(7)
    es = setup.epoch
    leader2 = leader_of(es, 2)
    chain = build_chain(setup, [1])
    block = chain.blocks[0]
    offender = next(i for i in range(setup.size) if i not in {leader2, block.proposer})
    d = Driven(setup, leader2)
    d.start(0)
    d.deliver(10, chain.proposals[0])
    d.deliver(11, sign_vote(setup, es, offender, 1, block))
    out = d.deliver(12, sign_vote(setup, es, offender, 1, replace(block, timestamp_ms=77)))
    gossip = [a.message for a in out if isinstance(a, Broadcast)]
    evidence = [m.evidence for m in gossip if isinstance(m, EvidenceMsg)]
    assert [ev.offender for ev in evidence] == [offender]
    # Another node takes it from the gossip and proposes it when it leads.
    leader3 = leader_of(es, 3)
    other = Driven(setup, leader3)
    other.start(0)
    assert reasons(other.deliver(13, EvidenceMsg(evidence[0]), sender=leader2)) == []
    assert other.core.evidence.pending(16, 1) == evidence
    forged = replace(evidence[0], signature_b=evidence[0].signature_a)
    assert reasons(other.deliver(14, EvidenceMsg(forged), sender=leader2)) == [
        Reason.EVIDENCE_BAD_SIGNATURE
    ]


def test_a_tc_high_qc_round_is_relative_to_its_epoch() -> None:
    setup = make_setup(7)
    es = setup.epoch
    assert qc_round_in(es.epoch, es.anchor_qc) == 0
    tc = tc_for(setup, es, 1, high_qc=es.anchor_qc)
    assert tc.high_qc_round == 0
