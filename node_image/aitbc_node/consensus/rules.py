"""The core's acceptance rules as pure functions of a message and the node's state: screening
before any signature check, a block's shape and place in the tree, and the voting rule.

Each returns ``None`` when the object passes, else the :class:`Reason` it does not (the voting
rule also says when a refusal is one an honest proposer can cause, which is not reported).
"""

from __future__ import annotations

from collections.abc import Callable

from aitbc_node.consensus.codec import message_epoch
from aitbc_node.consensus.leader import select_leader
from aitbc_node.consensus.reasons import Reason
from aitbc_node.consensus.signing import qc_round_in
from aitbc_node.consensus.types import (
    MAX_CLOCK_DRIFT_MS,
    Block,
    EpochState,
    EvidenceMsg,
    Message,
    Proposal,
    QcMsg,
    SafetyState,
    Timeout,
    Vote,
)

#: How many rounds away from ours a proposal may be before it is refused outright.
MAX_ROUND_LEAD = 10_000
#: How many rounds ahead of ours a vote or timeout may be: honest validators only speak in rounds
#: they entered with a certificate, which they send along (proposals carry it, timeouts carry
#: their highest QC, TCs are re-broadcast), so a node further behind catches up from those.
FUTURE_ROUND_WINDOW = 100


#: Who may propose a round: (round, after a timeout, id of the block the proposal extends) ->
#: the proposers this node accepts, or None when it cannot tell (``ConsensusCore.may_lead``).
LeaderView = Callable[[int, bool, bytes], frozenset[int] | None]


def leader_of(
    es: EpochState, round_: int, after_timeout: bool, excluded: frozenset[int] = frozenset()
) -> int:
    return select_leader(es.validators, es.mode, es.seed, es.epoch, round_, after_timeout, excluded)


def screen(
    sender: int,
    msg: Message,
    es: EpochState,
    *,
    round_: int,
    me: int,
    high_qc_round: int,
    committed_height: int,
    may_lead: LeaderView,
) -> Reason | None:
    """Cheap checks of a peer message against a node in ``round_`` of ``es`` whose highest QC
    has ``high_qc_round``: the sender is the author of what it signs (nobody relays votes,
    timeouts or proposals), the message is not stale (a proposal at or below the committed
    height included) and not too far ahead, a vote goes to the next leader (``me``), a proposal
    has its round's leader (``may_lead``) and a bounded payload, a certificate is not one this
    node is past."""
    if isinstance(msg, Proposal):
        block = msg.block
        if sender != block.proposer:
            return Reason.SENDER_MISMATCH
        if block.epoch != es.epoch:
            return Reason.STALE_MESSAGE if block.epoch < es.epoch else None
        if block.height <= committed_height:
            return Reason.STALE_MESSAGE
        if not round_ - MAX_ROUND_LEAD <= block.round <= round_ + MAX_ROUND_LEAD:
            return Reason.ROUND_OUT_OF_RANGE
        return block_shape(block, es, may_lead)
    if isinstance(msg, Vote | Timeout):
        if sender != msg.voter:
            return Reason.SENDER_MISMATCH
        if msg.epoch != es.epoch:
            return Reason.STALE_MESSAGE if msg.epoch < es.epoch else None
        if isinstance(msg, Vote):
            if msg.round + 1 < round_:
                return Reason.STALE_MESSAGE
            if msg.round > round_ + FUTURE_ROUND_WINDOW:
                return Reason.ROUND_TOO_FAR_AHEAD
            leaders = may_lead(msg.round + 1, False, msg.block_id)
            if leaders is not None and me not in leaders:
                return Reason.MISDIRECTED_VOTE
        elif (
            msg.round > round_ + FUTURE_ROUND_WINDOW
            and qc_round_in(es.epoch, msg.high_qc) <= high_qc_round
        ):
            return Reason.ROUND_TOO_FAR_AHEAD
        return None
    if isinstance(msg, EvidenceMsg):
        # Evidence of the epoch before still commits in this one.
        return Reason.STALE_MESSAGE if msg.evidence.epoch + 1 < es.epoch else None
    if message_epoch(msg) < es.epoch:
        return Reason.STALE_MESSAGE
    if message_epoch(msg) > es.epoch:
        return None
    # A certificate this node is past brings nothing (every node forms its own TC and forwards
    # it to the next leader, and helps stragglers with it: many copies per round, each a new
    # object that would cost its pairings): only one with a higher QC is worth checking.
    if isinstance(msg, QcMsg):
        return Reason.STALE_MESSAGE if msg.qc.round < high_qc_round else None
    tc = msg.tc
    if tc.round < round_ and qc_round_in(es.epoch, tc.high_qc) <= high_qc_round:
        return Reason.STALE_MESSAGE
    return None


def block_shape(block: Block, es: EpochState, may_lead: LeaderView | None) -> Reason | None:
    """A block of ``es``: its proposer is its round's leader (the fallback after a TC for the
    round before) as ``may_lead`` tells (None: not checked, for a block a verified QC
    certifies) and its payload is within the epoch's limits."""
    params = es.params
    if len(block.batches) > params.max_batches_per_block:
        return Reason.TOO_MANY_BATCHES
    if len(block.evidence) > params.max_evidence_per_block:
        return Reason.TOO_MUCH_EVIDENCE
    if may_lead is None:
        return None
    after_timeout = block.tc is not None and block.tc.round == block.round - 1
    leaders = may_lead(block.round, after_timeout, block.parent_id)
    if leaders is not None and block.proposer not in leaders:
        return Reason.WRONG_LEADER
    return None


def placement(block: Block, parent: Block, es: EpochState) -> Reason | None:
    """Why ``block`` cannot be ``parent``'s child in ``es``, or None."""
    if block.height != parent.height + 1:
        return Reason.BAD_HEIGHT
    if parent.epoch == block.epoch and block.round <= parent.round:
        return Reason.ROUND_NOT_INCREASING
    if block.justify.epoch == block.epoch and block.justify.height != parent.height:
        return Reason.QC_HEIGHT_MISMATCH
    if block.timestamp_ms < parent.timestamp_ms:
        return Reason.TIMESTAMP_BEFORE_PARENT
    if block.height > es.end_height and (block.batches or block.evidence):
        return Reason.PAYLOAD_AFTER_EPOCH_END
    return None


def vote_refusal(
    safety: SafetyState, block: Block, now_ms: int, round_duration_ms: int
) -> tuple[bool, Reason | None]:
    """(may vote for ``block``, reason to report). The lock applies to every block, an epoch's
    first ones included (an earlier epoch's QC counts as round 0). A refusal an honest proposer
    can cause (a round already left, a lock it had not seen) reports nothing."""
    if block.round <= safety.last_voted_round:
        return False, None
    qc_round = qc_round_in(block.epoch, block.justify)
    if block.round != qc_round + 1:
        tc = block.tc
        if tc is None or block.round != tc.round + 1:
            return False, Reason.NO_CERTIFICATE_FOR_ROUND
        if qc_round < tc.high_qc_round:
            return False, Reason.STALE_JUSTIFY
    if qc_round < safety.locked_round:
        return False, None
    if now_ms - block.timestamp_ms > MAX_CLOCK_DRIFT_MS + round_duration_ms:
        return False, Reason.TIMESTAMP_TOO_OLD
    return True, None
