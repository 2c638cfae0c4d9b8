"""The 2-chain commit rule, the end of an epoch (suffix blocks, transition) and the first block
of the next epoch, driven by hand-built certified chains."""

from __future__ import annotations

from aitbc_node.batch import Batch, VerifiedBatch
from aitbc_node.consensus.actions import Committed, EpochStarted, Rejected
from aitbc_node.consensus.types import Proposal, QcMsg, SafetyState
from test_consensus_harness import (
    Chain,
    Driven,
    build_chain,
    bystander,
    committed_blocks,
    epochs_started,
    leader_of,
    make_setup,
    new_replica,
    propose,
    sent,
    tc_for,
)


def test_two_chain_with_consecutive_rounds_commits_the_parent() -> None:
    setup = make_setup(7)
    chain = build_chain(setup, [1, 2, 3, 4])
    d = Driven(setup, bystander(setup, range(1, 6)))
    d.start(0)
    commits = []
    for t, proposal in enumerate(chain.proposals):
        commits.append([b.height for b in committed_blocks(d.deliver(10 + t, proposal))])
    # Block 3 carries QC(2), block 2's parent is block 1 at round 1 = 2 - 1: block 1 commits.
    assert commits == [[], [], [1], [2]]
    assert d.core.committed_height == 2
    certifying = [a.certifying_qc for a in d.log if isinstance(a, Committed)]
    assert certifying == [chain.qcs[0], chain.qcs[1]]


def test_non_consecutive_rounds_do_not_commit_until_a_later_two_chain() -> None:
    setup = make_setup(7)
    es = setup.epoch
    chain = Chain(setup, es)
    chain.extend(1)
    # Round 2 times out; block 2 is proposed in round 3 with the TC.
    chain.extend(3, tc=tc_for(setup, es, 2, high_qc=chain.qcs[0]))
    chain.extend(4)
    chain.extend(5)
    d = Driven(setup, bystander(setup, range(1, 7), fallback_rounds=[3]))
    d.start(0)
    commits = []
    for t, proposal in enumerate(chain.proposals):
        commits.append([b.height for b in committed_blocks(d.deliver(10 + t, proposal))])
    # Block 3 (round 4) carries QC(block 2, round 3): its parent is at round 1, not 2: nothing.
    # Block 4 (round 5) carries QC(block 3, round 4), parent round 3: blocks 1 and 2 commit,
    # in height order.
    assert commits == [[], [], [], [1, 2]]


def test_commit_only_once_and_never_below_the_committed_height() -> None:
    setup = make_setup(7)
    chain = build_chain(setup, [1, 2, 3, 4])
    d = Driven(setup, bystander(setup, range(1, 6)))
    d.start(0)
    for t, proposal in enumerate(chain.proposals):
        d.deliver(10 + t, proposal)
    for t, proposal in enumerate(chain.proposals):  # replayed: nothing commits twice
        d.deliver(100 + t, proposal)
    d.deliver(200, QcMsg(chain.qcs[2]), sender=0)  # QC of block 3 once more: no new commit
    heights = [b.height for b in committed_blocks(d.log)]
    assert heights == [1, 2]


def _epoch_chain(epoch_length: int) -> tuple[Chain, int]:
    setup = make_setup(7, epoch_length=epoch_length)
    rounds = range(1, epoch_length + 3)  # the epoch's blocks plus two suffix blocks
    chain = build_chain(setup, rounds)
    return chain, bystander(setup, [*rounds, epoch_length + 3])


def test_epoch_end_commits_up_to_the_end_height_and_switches_epoch() -> None:
    chain, me = _epoch_chain(10)
    setup = chain.setup
    d = Driven(setup, me)
    d.start(0)
    started = []
    for t, proposal in enumerate(chain.proposals):
        out = d.deliver(10 + t, proposal)
        started += epochs_started(out)
        if epochs_started(out):
            # The transition happens in the list that commits the end block, after it.
            kinds = [type(a) for a in out]
            assert kinds.index(Committed) < kinds.index(EpochStarted)
    heights = [b.height for b in committed_blocks(d.log)]
    assert heights == list(range(1, 11))  # block 11 (round 11) is a suffix: never committed
    assert len(started) == 1
    new = started[0]
    end_block = chain.blocks[9]
    assert (new.epoch, new.start_height, new.anchor_id) == (2, 11, end_block.id)
    assert new.anchor_qc == chain.qcs[10]  # the QC that certified the suffix block 11
    assert d.core.epoch == 2
    assert d.persisted == SafetyState(epoch=2)
    # The next epoch's first block extends the end block and commits in its turn.
    next_chain = build_chain(setup, [1, 2, 3], es=new, anchor=end_block)
    for t, proposal in enumerate(next_chain.proposals):
        d.deliver(100 + t, proposal)
    committed = committed_blocks(d.log)
    assert [(b.epoch, b.height) for b in committed[-1:]] == [(2, 11)]
    assert committed[-1].parent_id == end_block.id
    assert any(round_ == 1 and epoch == 2 for epoch, round_, _ in d.votes())


def test_suffix_blocks_with_payload_are_rejected() -> None:
    chain, me = _epoch_chain(10)
    setup, es = chain.setup, chain.es
    d = Driven(setup, me)
    d.start(0)
    for t, proposal in enumerate(chain.proposals[:10]):
        d.deliver(10 + t, proposal)
    batch = Batch(author=0, sequence=1, transactions=(), synthetic_count=3)
    stuffed = propose(
        setup, es, round_=11, parent=chain.blocks[9], justify=chain.qcs[9], batches=[batch.ref]
    )
    out = d.deliver(100, stuffed)
    assert [a.reason for a in out if isinstance(a, Rejected)] == ["payload_after_epoch_end"]
    assert 11 not in d.voted_rounds()


def _leader_proposal_at_height_11(epoch_length: int) -> Proposal:
    setup = make_setup(7, epoch_length=epoch_length)
    es = setup.epoch
    chain = build_chain(setup, range(1, 11))
    leader = leader_of(es, 11)
    replica = new_replica(setup)
    batch = Batch(author=leader, sequence=1, transactions=(), synthetic_count=5)
    replica.add_batch(VerifiedBatch.local(batch))
    d = Driven(setup, leader, replica=replica)
    d.start(0)
    for t, proposal in enumerate(chain.proposals):
        d.deliver(10 + t, proposal)
    d.deliver(50, QcMsg(chain.qcs[9]), sender=0)
    due = chain.blocks[9].timestamp_ms + es.params.block_interval(es.mode)
    d.tick(max(due, 60))
    proposals = [p for p in sent(d.log, Proposal) if isinstance(p, Proposal)]
    mine = [p for p in proposals if p.block.round == 11]
    assert len(mine) == 1, [p.block.round for p in proposals]
    assert mine[0].block.height == 11
    return mine[0]


def test_leader_puts_no_payload_in_a_block_past_the_epoch_end() -> None:
    assert _leader_proposal_at_height_11(epoch_length=10).block.batches == ()
    # Control: the same leader, chain and batch in a longer epoch carries the batch.
    assert len(_leader_proposal_at_height_11(epoch_length=100).block.batches) == 1


def test_next_epoch_accepts_any_valid_qc_that_ended_the_epoch() -> None:
    """Found by the property tests: two nodes can commit the same end block through different
    QCs (one saw the QC of suffix block S1 and the rest, who missed it, committed later through
    a fork of the suffix). Each node's epoch anchor then carries a different QC, and the next
    epoch's blocks of one must still be accepted by the other."""
    setup = make_setup(7, epoch_length=10)
    es = setup.epoch
    chain = build_chain(setup, range(1, 12))  # blocks 1..10, then suffix S1 at round 11
    end_block, qc_end = chain.blocks[9], chain.qcs[9]
    fork = Chain(
        setup,
        es,
        blocks=list(chain.blocks[:10]),
        proposals=list(chain.proposals[:10]),
        qcs=list(chain.qcs[:10]),
    )
    fork.extend(13, tc=tc_for(setup, es, 12, high_qc=qc_end))  # S1' via a TC, rounds 13..15
    fork.extend(14)
    fork.extend(15)
    suffix_leaders = {leader_of(es, r) for r in range(11, 16)}
    a_index, b_index = [i for i in range(setup.size) if i not in suffix_leaders][:2]
    a = Driven(setup, a_index)
    b = Driven(setup, b_index)
    a.start(0)
    b.start(0)
    for t, proposal in enumerate(chain.proposals):
        a.deliver(10 + t, proposal)
        b.deliver(10 + t, proposal)
    a.deliver(30, QcMsg(chain.qcs[10]), sender=0)  # A alone sees QC(S1): B10 commits for A
    for t, proposal in enumerate(fork.proposals[10:]):
        b.deliver(40 + t, proposal)  # B commits B10 through QC(S2') at the end of the fork
    (epoch_a,) = epochs_started(a.log)
    (epoch_b,) = epochs_started(b.log)
    assert epoch_a.anchor_id == epoch_b.anchor_id == end_block.id
    assert epoch_a.anchor_qc != epoch_b.anchor_qc
    # The first block of epoch 2 from a leader that ended the epoch like A, and one like B.
    from_a = build_chain(setup, [1], es=epoch_a, anchor=end_block).proposals[0]
    from_b = build_chain(setup, [1], es=epoch_b, anchor=end_block).proposals[0]
    b.deliver(100, from_a)
    a.deliver(100, from_b)
    assert (2, 1, from_a.block.id) in b.votes()
    assert (2, 1, from_b.block.id) in a.votes()
