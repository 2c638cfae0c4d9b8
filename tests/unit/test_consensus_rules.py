"""Vote, timeout and proposal rules of the consensus core, driven by hand-built signed messages.

Every core here is a ``Driven`` core: each action list it returns is checked for the
persistence rule (a ``PersistSafety`` covering a vote, timeout or proposal comes before it
leaves), and every vote it signs is recorded, including votes it keeps for itself as the next
leader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from itertools import pairwise

from aitbc_node.consensus.actions import (
    Action,
    Broadcast,
    EvidenceFound,
    PersistSafety,
    Rejected,
    Send,
)
from aitbc_node.consensus.core import HELP_BACKOFF_MS
from aitbc_node.consensus.reasons import Reason
from aitbc_node.consensus.types import (
    MAX_TIMEOUT_DOUBLINGS,
    Proposal,
    QcMsg,
    SafetyState,
    Timeout,
    TimeoutCert,
    TimeoutCertMsg,
    Vote,
)
from test_consensus_harness import (
    Driven,
    build_chain,
    bystander,
    leader_of,
    make_setup,
    propose,
    sent,
    sign_timeout,
    tc_for,
)

ROUNDS = range(1, 8)


def test_never_votes_twice_in_a_round_even_for_an_equivocating_leader() -> None:
    setup = make_setup(7)
    es = setup.epoch
    d = Driven(setup, bystander(setup, ROUNDS))
    d.start(0)
    first = propose(setup, es, round_=1, parent=setup.root, justify=es.anchor_qc)
    twin = propose(setup, es, round_=1, parent=setup.root, justify=es.anchor_qc, timestamp_ms=7)
    assert first.block.id != twin.block.id
    d.deliver(10, first)
    d.deliver(11, twin)
    d.deliver(12, first)
    assert d.votes() == [(1, 1, first.block.id)]
    found = [a.evidence for a in d.log if isinstance(a, EvidenceFound)]
    assert [(ev.kind, ev.round, ev.offender) for ev in found] == [
        ("proposal", 1, first.block.proposer)
    ]


def test_no_vote_at_or_below_the_persisted_last_voted_round() -> None:
    setup = make_setup(7)
    chain = build_chain(setup, [1, 2, 3])
    d = Driven(setup, bystander(setup, ROUNDS), SafetyState(epoch=1, last_voted_round=2))
    d.start(0)
    assert d.core.round == 1  # the round after its highest QC: the state forbids the votes
    for t, proposal in enumerate(chain.proposals):
        d.deliver(10 + t, proposal)
    assert d.voted_rounds() == [3]


def test_no_vote_for_a_block_whose_justify_is_below_the_lock() -> None:
    setup = make_setup(7)
    es = setup.epoch
    chain = build_chain(setup, [1, 2, 3])
    me = bystander(setup, ROUNDS, fallback_rounds=[5])

    def replayed() -> Driven:
        d = Driven(setup, me)
        d.start(0)
        for t, proposal in enumerate(chain.proposals):
            d.deliver(10 + t, proposal)
        assert d.voted_rounds() == [1, 2, 3]
        assert d.core.safety.locked_round == 2  # QC of round 2 arrived in block 3's justify
        return d

    b1, b2 = chain.blocks[0], chain.blocks[1]
    qc1, qc2 = chain.qcs[0], chain.qcs[1]
    # A fork off block 1 in round 5, with a TC for round 4 whose high QC is only QC1: it passes
    # the TC rule (qc.round >= tc.high_qc.round) but its justify (round 1) is below the lock.
    d = replayed()
    fork = propose(
        setup, es, round_=5, parent=b1, justify=qc1, tc=tc_for(setup, es, 4, high_qc=qc1)
    )
    d.deliver(20, fork)
    assert d.core.round == 5
    assert d.voted_rounds() == [1, 2, 3]
    # The same round, a block that respects the lock (at a node that saw no fork): voted.
    d = replayed()
    locked_ok = propose(
        setup, es, round_=5, parent=b2, justify=qc2, tc=tc_for(setup, es, 4, high_qc=qc2)
    )
    d.deliver(21, locked_ok)
    assert d.votes()[-1] == (1, 5, locked_ok.block.id)


def test_the_lock_holds_at_an_epoch_start_against_a_fallback_leader_on_the_anchor() -> None:
    """Before: blocks justified by the previous epoch's QC skipped the lock, and a TC's high
    QC was unsigned, so a fallback leader could fork an epoch's certified blocks away by
    building on the anchor. Each variant is refused, for its own reason."""
    setup = make_setup(7)
    es = setup.epoch
    chain = build_chain(setup, [1, 2])  # QC1 travels in block 2: the lock is 1, nothing commits
    me = bystander(setup, range(1, 5), fallback_rounds=[4])

    def locked() -> Driven:
        d = Driven(setup, me)
        d.start(0)
        for t, proposal in enumerate(chain.proposals):
            d.deliver(10 + t, proposal)
        assert d.core.safety.locked_round == 1 and d.core.committed_height == 0
        return d

    def on_anchor(tc: TimeoutCert) -> Proposal:
        return propose(setup, es, round_=4, parent=setup.root, justify=es.anchor_qc, tc=tc)

    def refusals(out: list[Action]) -> list[str]:
        return [a.reason for a in out if isinstance(a, Rejected)]

    # Round 3 failed; its timeouts signed high-QC round 1 (they carried QC1).
    tc3 = tc_for(setup, es, 3, high_qc=chain.qcs[0])
    d = locked()
    assert refusals(d.deliver(20, on_anchor(tc3))) == [Reason.STALE_JUSTIFY]
    assert d.voted_rounds() == [1, 2]
    # The TC's high QC swapped for the anchor's: the signed rounds expose it.
    d = locked()
    swapped = on_anchor(replace(tc3, high_qc=es.anchor_qc))
    assert refusals(d.deliver(20, swapped)) == [Reason.TC_HIGH_QC_MISMATCH]
    assert d.voted_rounds() == [1, 2]
    # A genuine TC whose signers never saw QC1: the TC rule passes, the lock still holds.
    d = locked()
    d.deliver(20, on_anchor(tc_for(setup, es, 3, high_qc=es.anchor_qc)))
    assert d.voted_rounds() == [1, 2]
    # Control: the same round on block 2 is voted.
    d = locked()
    good = propose(setup, es, round_=4, parent=chain.blocks[1], justify=chain.qcs[1], tc=tc3)
    d.deliver(20, good)
    assert d.votes()[-1] == (1, 4, good.block.id)


def test_after_a_tc_votes_only_when_the_justify_is_at_least_the_tc_high_qc() -> None:
    setup = make_setup(7)
    es = setup.epoch
    chain = build_chain(setup, [1, 2])
    (b1, b2), (qc1, qc2) = chain.blocks, chain.qcs
    # Round 3 timed out; the timeouts carried QC2 (for block 2).
    tc3 = tc_for(setup, es, 3, high_qc=qc2)

    def at_round_4() -> Driven:
        d = Driven(setup, bystander(setup, ROUNDS, fallback_rounds=[4]))
        d.start(0)
        for t, proposal in enumerate(chain.proposals):
            d.deliver(10 + t, proposal)
        assert d.voted_rounds() == [1, 2]
        d.deliver(20, TimeoutCertMsg(tc3), sender=0)
        assert d.core.round == 4
        return d

    # Round 4 without a TC in the block: 4 != qc.round + 1, refused.
    d = at_round_4()
    out = d.deliver(21, propose(setup, es, round_=4, parent=b2, justify=qc2))
    assert d.voted_rounds() == [1, 2]
    assert Reason.NO_CERTIFICATE_FOR_ROUND in [a.reason for a in out if isinstance(a, Rejected)]
    # Round 4 with the TC but justified by QC1 < the TC's signed high QC round: refused.
    d = at_round_4()
    out = d.deliver(22, propose(setup, es, round_=4, parent=b1, justify=qc1, tc=tc3))
    assert d.voted_rounds() == [1, 2]
    assert [a.reason for a in out if isinstance(a, Rejected)] == [Reason.STALE_JUSTIFY]
    # Justified by QC2 == tc.high_qc: voted.
    d = at_round_4()
    fresh = propose(setup, es, round_=4, parent=b2, justify=qc2, tc=tc3)
    d.deliver(23, fresh)
    assert d.votes()[-1] == (1, 4, fresh.block.id)


def test_a_tc_for_an_older_round_does_not_allow_a_vote() -> None:
    setup = make_setup(7)
    es = setup.epoch
    chain = build_chain(setup, [1])
    d = Driven(setup, bystander(setup, range(1, 6), fallback_rounds=[3, 4]))
    d.start(0)
    d.deliver(10, chain.proposals[0])
    qc1 = chain.qcs[0]
    # TCs for rounds 2 and 3 move the core to round 4; the block carries only the round-2 TC.
    d.deliver(11, TimeoutCertMsg(tc_for(setup, es, 2, high_qc=qc1)), sender=0)
    d.deliver(12, TimeoutCertMsg(tc_for(setup, es, 3, high_qc=qc1)), sender=0)
    assert d.core.round == 4
    wrong_tc = propose(
        setup,
        es,
        round_=4,
        parent=chain.blocks[0],
        justify=qc1,
        tc=tc_for(setup, es, 2, high_qc=qc1),
    )
    out = d.deliver(13, wrong_tc)
    assert d.voted_rounds() == [1]
    assert [a.reason for a in out if isinstance(a, Rejected)] == [Reason.NO_CERTIFICATE_FOR_ROUND]


def test_no_vote_in_a_round_after_timing_out_in_it() -> None:
    setup = make_setup(7)
    es = setup.epoch
    d = Driven(setup, bystander(setup, ROUNDS))
    d.start(0)
    deadline = d.core.round_deadline_ms
    assert deadline == es.params.base_timeout(es.mode)
    out = d.tick(deadline)
    assert [t.round for t in sent(out, Timeout)] == [1]
    late = propose(setup, es, round_=1, parent=setup.root, justify=es.anchor_qc)
    d.deliver(deadline + 1, late)
    assert d.voted_rounds() == []
    # Everyone timed out in round 1: the round-2 block carries the TC and is voted for.
    tc1 = tc_for(setup, es, 1, high_qc=es.anchor_qc)
    after = propose(setup, es, round_=2, parent=setup.root, justify=es.anchor_qc, tc=tc1)
    d.deliver(deadline + 2, after)
    assert d.votes() == [(1, 2, after.block.id)]


def test_timeout_carries_the_high_qc_and_backs_off() -> None:
    setup = make_setup(7)
    es = setup.epoch
    chain = build_chain(setup, [1, 2])
    d = Driven(setup, bystander(setup, ROUNDS))
    d.start(0)
    for t, proposal in enumerate(chain.proposals):
        d.deliver(10 + t, proposal)
    base = es.params.base_timeout(es.mode)
    cap = base * (1 << MAX_TIMEOUT_DOUBLINGS)
    deadlines = []
    for _ in range(2 * MAX_TIMEOUT_DOUBLINGS + 6):  # the round stays stuck: its timer fires again
        deadline = d.core.round_deadline_ms
        deadlines.append(deadline)
        out = d.tick(deadline)
        timeouts = sent(out, Timeout)
        assert [(t.round, t.high_qc) for t in timeouts] == [(2, chain.qcs[0])]
    gaps = [b - a for a, b in pairwise(deadlines)]
    assert gaps == sorted(gaps), gaps  # never shorter while the round stays stuck
    assert base <= gaps[0] and gaps[-1] == gaps[-2] == cap, gaps  # grows to the cap, stays
    assert d.voted_rounds() == [1, 2]


def test_joins_the_timeouts_of_a_weak_quorum_then_forms_a_tc() -> None:
    setup = make_setup(7)  # 7 authorities: a weak quorum is 3, a quorum 5
    es = setup.epoch
    me = bystander(setup, ROUNDS)
    d = Driven(setup, me)
    d.start(0)
    others = [i for i in range(setup.size) if i != me]
    d.deliver(10, sign_timeout(setup, es, others[0], 1, es.anchor_qc))
    out = d.deliver(11, sign_timeout(setup, es, others[1], 1, es.anchor_qc))
    assert not sent(out, Timeout)  # two of seven: could be byzantine alone
    out = d.deliver(12, sign_timeout(setup, es, others[2], 1, es.anchor_qc))
    mine = sent(out, Timeout)
    assert [(t.voter, t.round) for t in mine] == [(me, 1)]  # Bracha: more than a third gave up
    assert d.core.safety.last_voted_round == 1
    assert d.core.round == 1
    d.deliver(13, sign_timeout(setup, es, others[3], 1, es.anchor_qc))
    assert d.core.round == 2  # own + 4 others = 5: a TC
    assert d.core.last_tc is not None and d.core.last_tc.round == 1


def _first(actions: list[Action], kind: type) -> int:
    return next(
        i
        for i, a in enumerate(actions)
        if isinstance(a, Send | Broadcast) and isinstance(a.message, kind)
    )


def _persisted_before(
    actions: list[Action], end: int, covers: Callable[[SafetyState], bool]
) -> bool:
    return any(isinstance(a, PersistSafety) and covers(a.state) for a in actions[:end])


def test_persist_safety_precedes_proposal_vote_and_timeout_in_the_action_list() -> None:
    setup = make_setup(7)
    es = setup.epoch
    interval = es.params.block_interval(es.mode)
    # A proposal: the leader of round 1 when its block interval has passed.
    leader = Driven(setup, leader_of(es, 1))
    leader.start(0)
    out = leader.tick(interval)
    at = _first(out, Proposal)
    assert _persisted_before(out, at, lambda s: s.last_proposed_round >= 1)
    # A vote: a bystander receiving that proposal.
    proposal = sent(out, Proposal)[0]
    assert isinstance(proposal, Proposal)
    voter = Driven(setup, bystander(setup, ROUNDS))
    voter.start(0)
    out = voter.deliver(interval + 5, proposal)
    at = _first(out, Vote)
    assert _persisted_before(out, at, lambda s: s.last_voted_round >= 1)
    # A timeout: another bystander whose round-1 timer fires.
    sleeper = Driven(setup, bystander(setup, ROUNDS))
    sleeper.start(0)
    out = sleeper.tick(sleeper.core.round_deadline_ms)
    at = _first(out, Timeout)
    assert _persisted_before(out, at, lambda s: s.last_voted_round >= 1)


def test_leader_proposes_once_per_round_including_after_a_restart() -> None:
    setup = make_setup(7)
    es = setup.epoch
    leader = leader_of(es, 1)
    d = Driven(setup, leader)
    d.start(0)
    interval = es.params.block_interval(es.mode)
    for now in (interval, interval + 1, interval + 100, 2 * interval):
        d.tick(now)
    proposals = sent(d.log, Proposal)
    assert [p.block.round for p in proposals] == [1]
    restarted = Driven(setup, leader, d.persisted)
    restarted.start(2 * interval + 10)
    restarted.tick(3 * interval)
    assert not sent(restarted.log, Proposal)


def test_next_leader_proposes_once_when_the_qc_arrives_twice() -> None:
    setup = make_setup(7)
    es = setup.epoch
    leader2 = leader_of(es, 2)
    assert leader_of(es, 1) != leader2
    chain = build_chain(setup, [1])
    d = Driven(setup, leader2)
    d.start(0)
    d.deliver(10, chain.proposals[0])
    d.deliver(11, QcMsg(chain.qcs[0]), sender=0)
    d.deliver(12, QcMsg(chain.qcs[0]), sender=0)
    interval = es.params.block_interval(es.mode)
    due = chain.blocks[0].timestamp_ms + interval
    for now in (due, due + 1, due + 50):
        d.tick(now)
    d.deliver(due + 60, chain.proposals[0])
    proposals = sent(d.log, Proposal)
    assert [(p.block.round, p.block.parent_id) for p in proposals] == [(2, chain.blocks[0].id)]


def test_a_restarted_core_with_its_persisted_state_does_not_vote_again() -> None:
    setup = make_setup(7)
    es = setup.epoch
    me = bystander(setup, ROUNDS)
    chain = build_chain(setup, [1, 2])
    d = Driven(setup, me)
    d.start(0)
    d.deliver(10, chain.proposals[0])
    assert d.voted_rounds() == [1]
    assert d.persisted is not None and d.persisted.last_voted_round == 1
    # Crash; come back from disk. The same proposal, and a conflicting one, arrive again.
    again = Driven(setup, me, d.persisted)
    again.start(100)
    twin = propose(setup, es, round_=1, parent=setup.root, justify=es.anchor_qc, timestamp_ms=9)
    again.deliver(110, chain.proposals[0])
    again.deliver(111, twin)
    assert again.votes() == []
    again.deliver(112, chain.proposals[1])
    assert again.voted_rounds() == [2]


def test_a_restarted_core_does_not_vote_in_a_round_it_timed_out_in() -> None:
    setup = make_setup(7)
    es = setup.epoch
    me = bystander(setup, ROUNDS)
    d = Driven(setup, me)
    d.start(0)
    d.tick(d.core.round_deadline_ms)
    assert d.persisted is not None and d.persisted.last_voted_round == 1
    again = Driven(setup, me, d.persisted)
    again.start(d.core.round_deadline_ms)
    late = propose(setup, es, round_=1, parent=setup.root, justify=es.anchor_qc)
    again.deliver(again.core.round_deadline_ms - 1, late)
    assert again.votes() == []


def test_a_node_that_forms_a_tc_forwards_it_to_the_next_leader() -> None:
    """Found by the property tests: with message loss the next leader may miss timeouts; if
    nobody sends it the TC it cannot propose, and the next round times out as well."""
    setup = make_setup(7)
    es = setup.epoch
    me = bystander(setup, ROUNDS, fallback_rounds=[2])
    next_leader = leader_of(es, 2, after_timeout=True)  # round 2 follows the TC of round 1
    d = Driven(setup, me)
    d.start(0)
    d.tick(d.core.round_deadline_ms)  # our own timeout for round 1
    others = [i for i in range(setup.size) if i not in {me, next_leader}]
    for t, voter in enumerate(others[:4]):
        d.deliver(
            d.core.round_deadline_ms - 100 + t, sign_timeout(setup, es, voter, 1, es.anchor_qc)
        )
    assert d.core.round == 2
    forwarded = [
        (a.to, a.message.tc.round)
        for a in d.log
        if isinstance(a, Send) and isinstance(a.message, TimeoutCertMsg)
    ]
    assert forwarded == [(next_leader, 1)]


def test_a_straggler_timing_out_in_a_left_round_is_sent_the_tc_at_most_once_per_backoff() -> None:
    """The TC is no longer re-broadcast with every timeout (N^2 messages per period): a node
    that keeps timing out in a round others left gets the certificate sent to it alone, not
    for the usual late timeouts of the round just left, and at most once per back-off."""
    setup = make_setup(7)
    es = setup.epoch
    me = bystander(setup, ROUNDS, fallback_rounds=[2])
    d = Driven(setup, me)
    d.start(0)
    others = [i for i in range(setup.size) if i != me]
    tc1 = tc_for(setup, es, 1, es.anchor_qc, signers=others[:5])
    d.deliver(10, TimeoutCertMsg(tc1), sender=others[0])
    assert d.core.round == 2
    entered = d.core.round_entered_ms
    straggler = others[5]  # not among the TC's signers
    late = sign_timeout(setup, es, straggler, 1, es.anchor_qc)

    def helped(out: list[Action]) -> list[tuple[int, int]]:
        return [
            (a.to, a.message.tc.round)
            for a in out
            if isinstance(a, Send) and isinstance(a.message, TimeoutCertMsg)
        ]

    assert helped(d.deliver(entered + 1, late)) == []  # the usual race: it forms the TC too
    half = d.core.round_duration_ms() // 2
    assert helped(d.deliver(entered + half, late)) == [(straggler, 1)]
    assert helped(d.deliver(entered + half + 1, late)) == []
    assert helped(d.deliver(entered + half + HELP_BACKOFF_MS, late)) == [(straggler, 1)]
    assert not any(
        isinstance(a, Broadcast) and isinstance(a.message, TimeoutCertMsg) for a in d.log
    )


def test_a_certificate_the_node_is_past_is_refused_before_any_signature_check() -> None:
    setup = make_setup(7)
    es = setup.epoch
    chain = build_chain(setup, [1, 2, 3])
    me = bystander(setup, ROUNDS)
    d = Driven(setup, me)
    d.start(0)
    for t, proposal in enumerate(chain.proposals):
        d.deliver(10 + t, proposal)
    assert d.core.round == 3 and d.core.qc_round(d.core.high_qc) == 2
    checks = sum(d.recorder.checks.values())
    old_qc = d.deliver(20, QcMsg(chain.qcs[0]), sender=0)
    old_tc = d.deliver(21, TimeoutCertMsg(tc_for(setup, es, 1, es.anchor_qc)), sender=0)
    assert [a.reason for a in old_qc + old_tc if isinstance(a, Rejected)] == [
        Reason.STALE_MESSAGE,
        Reason.STALE_MESSAGE,
    ]
    assert sum(d.recorder.checks.values()) == checks
    # A TC of a round left by TCs that carries a higher QC than ours still counts.
    behind = Driven(setup, me)
    behind.start(0)
    behind.deliver(10, chain.proposals[0])
    behind.deliver(11, TimeoutCertMsg(tc_for(setup, es, 1, es.anchor_qc)), sender=0)
    behind.deliver(12, TimeoutCertMsg(tc_for(setup, es, 2, es.anchor_qc)), sender=0)
    assert behind.core.round == 3 and behind.core.qc_round(behind.core.high_qc) == 0
    out = behind.deliver(13, TimeoutCertMsg(tc_for(setup, es, 2, chain.qcs[0])), sender=0)
    assert not [a for a in out if isinstance(a, Rejected)]
    assert behind.core.qc_round(behind.core.high_qc) == 1


def test_a_failed_round_counts_once_towards_the_back_off() -> None:
    """A round that timed out locally and then ended with a TC is one timeout, not two: after
    the same failed rounds, a node whose own timer fired first waits exactly as long in the next
    round as a node that only received the TCs."""
    setup = make_setup(7)
    es = setup.epoch
    timed_out = Driven(setup, bystander(setup, ROUNDS))
    joined = Driven(setup, bystander(setup, ROUNDS))
    timed_out.start(0)
    joined.start(0)
    for round_ in range(1, 2 * MAX_TIMEOUT_DOUBLINGS + 4):
        tc = TimeoutCertMsg(tc_for(setup, es, round_, high_qc=es.anchor_qc))
        fired = timed_out.core.round_deadline_ms
        timed_out.tick(fired)
        timed_out.deliver(fired + 1, tc, sender=0)
        before_timer = joined.core.round_deadline_ms - 1
        joined.deliver(before_timer, tc, sender=0)
        assert timed_out.core.round == joined.core.round == round_ + 1
        waits = (
            timed_out.core.round_deadline_ms - (fired + 1),
            joined.core.round_deadline_ms - before_timer,
        )
        assert waits[0] == waits[1], (round_, waits)


def test_a_restarted_core_enters_the_round_after_its_highest_qc() -> None:
    """Its last voted round may have been reached through a TC lost in the crash: waiting there,
    it would ignore the others' timeouts for the rounds before and never help form that TC."""
    setup = make_setup(7)
    es = setup.epoch
    me = bystander(setup, range(1, 6), fallback_rounds=[3, 4])
    chain = build_chain(setup, [1])
    d = Driven(setup, me)
    d.start(0)
    d.deliver(10, chain.proposals[0])
    for round_ in (2, 3):  # two TCs move it to round 4, where it votes
        d.deliver(20 + round_, TimeoutCertMsg(tc_for(setup, es, round_, high_qc=chain.qcs[0])))
    fourth = propose(
        setup,
        es,
        round_=4,
        parent=chain.blocks[0],
        justify=chain.qcs[0],
        tc=tc_for(setup, es, 3, high_qc=chain.qcs[0]),
    )
    d.deliver(30, fourth)
    assert d.voted_rounds() == [1, 4]
    again = Driven(setup, me, d.persisted)
    again.start(1000)
    assert again.core.round == 1  # its stored blocks are gone: the highest QC it has is genesis
    # The others time out in round 2 (they never formed the TCs): it joins them.
    for t, voter in enumerate(i for i in range(setup.size) if i != me):
        again.deliver(1010 + t, sign_timeout(setup, es, voter, 2, es.anchor_qc))
    assert [t.round for t in sent(again.log, Timeout)] == [2]
    assert again.core.round == 3
    assert again.votes() == []
