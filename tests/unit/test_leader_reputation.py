"""Leader reputation: validators absent from the recent certified chain do not lead, computed
from a block's certified ancestry alone, never more than a minority excluded."""

from __future__ import annotations

from collections.abc import Callable

from aitbc_node.consensus import reputation
from aitbc_node.consensus.actions import Rejected
from aitbc_node.consensus.core import ConsensusCore
from aitbc_node.consensus.reasons import Reason
from aitbc_node.consensus.types import Block, Proposal, QcMsg, QuorumCert, SafetyState
from test_consensus_harness import (
    Driven,
    Setup,
    leader_of,
    make_setup,
    new_replica,
    propose,
    qc_for,
)

WINDOW = reputation.WINDOW
SIZE = 7
#: Blocks of the hand-built chains: the first one's justify is the epoch's anchor QC, outside
#: any window, so a full window needs one block more.
LENGTH = WINDOW + 1


def absent_leader_setup() -> tuple[Setup, int]:
    """A 7-validator setup and a validator that leads none of rounds 1..LENGTH but is the plain
    draw for round LENGTH + 1 (searched over harness seeds: deterministic)."""
    for attempt in range(200):
        setup = make_setup(SIZE, seed=f"reputation-{attempt}")
        es = setup.epoch
        candidate = leader_of(es, LENGTH + 1)
        if candidate not in {leader_of(es, r) for r in range(1, LENGTH + 1)}:
            return setup, candidate
    raise AssertionError("no seed gives a validator absent from the first rounds' leaders")


def chain_without(
    setup: Setup, missing: int, present_in: frozenset[int] = frozenset()
) -> tuple[list[Proposal], list[QuorumCert]]:
    """Blocks at rounds 1..LENGTH, each QC signed by everyone but ``missing`` (except the QCs
    of the blocks at the positions in ``present_in``)."""
    es = setup.epoch
    parent: Block = setup.root
    justify = es.anchor_qc
    proposals, qcs = [], []
    for position, round_ in enumerate(range(1, LENGTH + 1)):
        proposal = propose(setup, es, round_=round_, parent=parent, justify=justify)
        signers = [i for i in range(setup.size) if i != missing or position in present_in]
        justify = qc_for(setup, es, proposal.block, signers)
        parent = proposal.block
        proposals.append(proposal)
        qcs.append(justify)
    return proposals, qcs


def observer(setup: Setup, missing: int) -> int:
    es = setup.epoch
    busy = {missing} | {leader_of(es, r) for r in range(1, LENGTH + 3)}
    return next(i for i in range(setup.size) if i not in busy)


def test_a_validator_absent_from_the_window_does_not_lead_and_its_proposal_is_refused() -> None:
    setup, absent = absent_leader_setup()
    es = setup.epoch
    proposals, qcs = chain_without(setup, absent)
    d = Driven(setup, observer(setup, absent))
    d.start(0)
    for t, proposal in enumerate(proposals):
        d.deliver(10 + t, proposal)
    tip = proposals[-1].block
    d.deliver(50, QcMsg(qcs[-1]), sender=proposals[0].block.proposer)
    assert d.core.round == LENGTH + 1
    excluded = reputation.absent(tip, d.core.tree.get, es)
    assert excluded == frozenset({absent})
    chosen = d.core.leader(LENGTH + 1, parent=tip)
    assert chosen != absent
    assert all(d.core.leader(r, parent=tip) != absent for r in range(1, 200))
    refused = propose(setup, es, round_=LENGTH + 1, parent=tip, justify=qcs[-1], proposer=absent)
    out = d.deliver(100, refused)
    assert [a.reason for a in out if isinstance(a, Rejected)] == [Reason.WRONG_LEADER]
    accepted = propose(setup, es, round_=LENGTH + 1, parent=tip, justify=qcs[-1], proposer=chosen)
    d.deliver(101, accepted)
    assert d.voted_rounds()[-1] == LENGTH + 1


def test_one_qc_naming_the_validator_in_the_window_keeps_it_in_the_draw() -> None:
    """An aggregator that leaves an honest validator out of its QC is not enough: the validator
    is absent only if every QC of the window (formed by as many leaders) misses it."""
    setup, absent = absent_leader_setup()
    proposals, _ = chain_without(setup, absent, present_in=frozenset({LENGTH - 3}))
    d = Driven(setup, observer(setup, absent))
    d.start(0)
    for t, proposal in enumerate(proposals):
        d.deliver(10 + t, proposal)
    tip = proposals[-1].block
    assert reputation.absent(tip, d.core.tree.get, setup.epoch) == frozenset()
    assert d.core.leader(LENGTH + 1, parent=tip) == absent


def test_no_exclusion_at_the_epoch_start_or_of_a_weak_quorum() -> None:
    setup, absent = absent_leader_setup()
    es = setup.epoch
    proposals, _ = chain_without(setup, absent)
    blocks = {p.block.id: p.block for p in proposals}
    # Fewer than WINDOW blocks of the epoch: the plain draw.
    assert reputation.absent(proposals[LENGTH - 2].block, blocks.get, es) == frozenset()
    # An ancestor this node does not hold: it cannot tell.
    assert reputation.absent(proposals[-1].block, {}.get, es) is None
    # Two of seven absent are excluded; three (more than a third) turn reputation off.
    assert reputation.absent(*signed_by(setup, [0, 1, 2, 3, 4]), es) == frozenset({5, 6})
    assert reputation.absent(*signed_by(setup, [0, 1, 2, 3]), es) == frozenset()


def signed_by(setup: Setup, signers: list[int]) -> tuple[Block, Callable[[bytes], Block | None]]:
    """The tip of LENGTH blocks all proposed by validator 0 and certified by ``signers``, and
    the lookup of its ancestors (the proposer is not checked here: only who appears counts)."""
    es = setup.epoch
    parent: Block = setup.root
    justify = es.anchor_qc
    held: dict[bytes, Block] = {}
    for round_ in range(1, LENGTH + 1):
        block = propose(setup, es, round_=round_, parent=parent, justify=justify, proposer=0).block
        justify = qc_for(setup, es, block, signers)
        held[block.id] = parent = block
    return parent, held.get


def test_a_restarted_core_given_its_committed_history_draws_the_same_leaders() -> None:
    setup, absent = absent_leader_setup()
    proposals, qcs = chain_without(setup, absent)
    blocks = [p.block for p in proposals]
    restarted = ConsensusCore(
        me=observer(setup, absent),
        secret=setup.keys[0].secret,
        scheme=setup.scheme,
        app=new_replica(setup),
        epoch=setup.epoch,
        root=blocks[-1],
        root_qc=qcs[-1],
        safety=SafetyState(epoch=setup.epoch.epoch),
        history=blocks[:-1],
    )
    assert restarted.may_lead(LENGTH + 1, False, blocks[-1].id) == frozenset(
        {restarted.leader(LENGTH + 1, parent=blocks[-1])}
    )
    assert restarted.leader(LENGTH + 1, parent=blocks[-1]) != absent
