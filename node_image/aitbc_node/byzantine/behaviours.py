"""The behaviours: pure transforms of the actions an honest core emits into a byzantine node's.

Each takes the context (the node's own core, read only, its keys, the time, a seeded random
source and the attacker's memory), the outgoing actions and its parameters, and returns the
actions to execute instead and how many attack actions it performed (``aitbc_byzantine_actions
_total{behaviour}``). Signatures are made with the node's own key through the core's ``Signer``,
so they are exactly what an honest verifier checks: only what the behaviour changes is wrong.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from aitbc_node.batch import Batch
from aitbc_node.byzantine.actions import DriverAction, ForgedBatch, RawMessage
from aitbc_node.consensus.actions import Broadcast, Send
from aitbc_node.consensus.codec import Kind
from aitbc_node.consensus.rules import FUTURE_ROUND_WINDOW
from aitbc_node.consensus.signing import Signer, qc_round_in
from aitbc_node.consensus.tree import BlockTree
from aitbc_node.consensus.types import (
    Block,
    EpochState,
    Evidence,
    Message,
    Proposal,
    QcMsg,
    QuorumCert,
    Timeout,
    TimeoutCertMsg,
    Vote,
)
from aitbc_node.consensus.wire import MAX_MESSAGE_BYTES
from aitbc_node.crypto import Ed25519KeyPair
from aitbc_node.ledger.tx import Transaction, TxKind, sign_register, sign_transaction

#: Old messages remembered by ``replay``, and pieces of evidence.
REPLAY_MEMORY = 256
#: ``replay`` re-sends at most once per this many ms.
REPLAY_INTERVAL_MS = 100
#: Rounds a message must be behind the current one before ``replay`` re-sends it.
REPLAY_MIN_AGE_ROUNDS = 3
#: ``flood`` sends one oversized message every this many floods.
OVERSIZED_EVERY = 10


class CoreView(Protocol):
    """What a behaviour reads of its own node's core (never writes)."""

    me: int
    signer: Signer
    epoch_state: EpochState
    round: int
    high_qc: QuorumCert
    tree: BlockTree

    @property
    def committed_block(self) -> Block: ...


@dataclass
class Memory:
    """An attacker's state across calls (its driver keeps one per node)."""

    sent: deque[Message] = field(default_factory=lambda: deque(maxlen=REPLAY_MEMORY))
    evidence: deque[Evidence] = field(default_factory=lambda: deque(maxlen=16))
    last_replay_ms: int = -(10**12)
    last_flood_ms: int = -(10**12)
    floods: int = 0
    last_registration_ms: int = -(10**12)
    unstaked_epoch: int = -1
    forged: int = 0


@dataclass
class Context:
    view: CoreView
    now_ms: int
    rng: random.Random
    memory: Memory
    #: The validator's reward account (the only account whose keys the attacker holds).
    account: Ed25519KeyPair
    #: The account's next nonce in the node's committed ledger.
    nonce_of: Callable[[bytes], int]

    def next_batch(self, transactions: Sequence[bytes]) -> Batch:
        self.memory.forged += 1
        return Batch(self.view.me, 2**62 + self.memory.forged, tuple(transactions), 0, self.now_ms)


Result = tuple[list[DriverAction], int]
Behaviour = Callable[[Context, list[DriverAction], dict[str, Any]], Result]


def _proposal_of(action: DriverAction) -> Proposal | None:
    if isinstance(action, Broadcast | Send) and isinstance(action.message, Proposal):
        return action.message
    return None


def _carrying(action: Broadcast | Send, message: Message) -> Broadcast | Send:
    """``action`` with ``message`` instead (same recipients)."""
    return Broadcast(message) if isinstance(action, Broadcast) else Send(action.to, message)


def _map_messages(
    actions: list[DriverAction], change: Callable[[Message], Message | None]
) -> Result:
    """Replace each outgoing message ``change`` returns a substitute for (None: keep it)."""
    out: list[DriverAction] = []
    done = 0
    for action in actions:
        if isinstance(action, Broadcast | Send):
            substitute = change(action.message)
            if substitute is not None:
                done += 1
                action = _carrying(action, substitute)
        out.append(action)
    return out, done


def _resigned(ctx: Context, block: Block, signer: Signer | None = None) -> Proposal:
    return (signer or ctx.view.signer).proposal(block)


# ------------------------------------------------------------------ equivocation and silence


def _twin(block: Block) -> Block:
    """The conflicting copy an equivocator signs next to ``block``: one ms later."""
    return replace(block, timestamp_ms=block.timestamp_ms + 1)


def equivocate(ctx: Context, actions: list[DriverAction], params: dict[str, Any]) -> Result:
    """A twin proposal (one ms later) next to every proposal, and a second vote next to every
    vote, for the voted block's twin (so its own twins both collect its votes): each pair is
    signed, so verifiable evidence."""
    signer = ctx.view.signer
    out: list[DriverAction] = []
    done = 0
    for action in actions:
        out.append(action)
        if isinstance(action, Send) and isinstance(action.message, Vote):
            vote = action.message
            voted = ctx.view.tree.get(vote.block_id)
            fake = (
                _twin(voted).id
                if voted is not None
                else hashlib.sha256(b"AITBC/twin\x00" + vote.block_id).digest()
            )
            out.append(Send(action.to, signer.vote(vote.epoch, vote.round, vote.height, fake)))
            done += 1
        elif isinstance(action, Broadcast) and isinstance(action.message, Proposal):
            out.append(Broadcast(_resigned(ctx, _twin(action.message.block))))
            done += 1
    return out, done


def silent_leader(ctx: Context, actions: list[DriverAction], params: dict[str, Any]) -> Result:
    kept = [a for a in actions if _proposal_of(a) is None]
    return kept, len(actions) - len(kept)


def withhold_votes(ctx: Context, actions: list[DriverAction], params: dict[str, Any]) -> Result:
    kept = [a for a in actions if not (isinstance(a, Send) and isinstance(a.message, Vote))]
    return kept, len(actions) - len(kept)


def selective_proposal(ctx: Context, actions: list[DriverAction], params: dict[str, Any]) -> Result:
    """Each proposal reaches only the lowest-indexed ``fraction`` of the other validators."""
    me = ctx.view.me
    others = [i for i in range(len(ctx.view.epoch_state.validators)) if i != me]
    reached = others[: max(1, math.ceil(float(params.get("fraction", 0.5)) * len(others)))]
    out: list[DriverAction] = []
    done = 0
    for action in actions:
        if isinstance(action, Broadcast) and isinstance(action.message, Proposal):
            out.extend(Send(i, action.message) for i in reached)
            done += 1
        else:
            out.append(action)
    return out, done


# ------------------------------------------------------------------ certificates


def _stale(ctx: Context, swap: bool) -> Callable[[Message], Message | None]:
    """As fallback leader (the block carries a TC), build on an older QC than the TC's highest:
    the one that certified the committed block (the epoch's anchor QC at an epoch's start);
    with ``swap``, also put that QC as the TC's (unsigned) high QC, so the old rule, which read
    it, would let the block through."""
    view = ctx.view
    es = view.epoch_state

    def change(msg: Message) -> Message | None:
        if not isinstance(msg, Proposal) or msg.block.tc is None:
            return None
        block = msg.block
        parent = view.committed_block
        old = view.tree.certified.get(parent.id)
        tc = msg.block.tc
        if old is None or qc_round_in(es.epoch, old) >= tc.high_qc_round:
            return None  # nothing older than the TC's high QC to fall back to
        stale = replace(
            block,
            height=parent.height + 1,
            parent_id=parent.id,
            justify=old,
            tc=replace(tc, high_qc=old) if swap else tc,
            batches=(),
            evidence=(),
        )
        return _resigned(ctx, stale)

    return change


def stale_fallback_qc(ctx: Context, actions: list[DriverAction], params: dict[str, Any]) -> Result:
    return _map_messages(actions, _stale(ctx, swap=False))


def tc_high_qc_swap(ctx: Context, actions: list[DriverAction], params: dict[str, Any]) -> Result:
    return _map_messages(actions, _stale(ctx, swap=True))


def tamper_certificate(ctx: Context, actions: list[DriverAction], params: dict[str, Any]) -> Result:
    """Every relayed QC (alone, in a timeout, a TC or its own proposal's justify) with one
    unsigned-looking field changed: the height, or a padded signer bitmap."""

    def tampered(qc: QuorumCert) -> QuorumCert:
        if ctx.rng.random() < 0.5:
            return replace(qc, height=qc.height + 1)
        return replace(qc, signers=qc.signers + b"\x00")

    def change(msg: Message) -> Message | None:
        if isinstance(msg, QcMsg):
            return QcMsg(tampered(msg.qc))
        if isinstance(msg, Timeout):
            return replace(msg, high_qc=tampered(msg.high_qc))
        if isinstance(msg, TimeoutCertMsg):
            return TimeoutCertMsg(replace(msg.tc, high_qc=tampered(msg.tc.high_qc)))
        if isinstance(msg, Proposal):
            return _resigned(ctx, replace(msg.block, justify=tampered(msg.block.justify)))
        return None

    return _map_messages(actions, change)


# ------------------------------------------------------------------ blocks and batches


def timestamp_skew(ctx: Context, actions: list[DriverAction], params: dict[str, Any]) -> Result:
    skew = int(params.get("skew_ms", 60_000))

    def change(msg: Message) -> Message | None:
        if not isinstance(msg, Proposal):
            return None
        block = msg.block
        return _resigned(ctx, replace(block, timestamp_ms=max(0, block.timestamp_ms + skew)))

    return _map_messages(actions, change)


def _bad_transfer(ctx: Context) -> Transaction:
    account = ctx.account
    unsigned = Transaction(
        kind=TxKind.TRANSFER,
        chain_id=ctx.view.signer.chain_id,
        sender=account.public,
        nonce=ctx.nonce_of(account.public),
        amount=1,
        recipient=account.public,
    )
    signed = sign_transaction(account, unsigned)
    return replace(signed, signature=bytes([signed.signature[0] ^ 1]) + signed.signature[1:])


def invalid_batch(ctx: Context, actions: list[DriverAction], params: dict[str, Any]) -> Result:
    """Each proposal references one more batch, holding a transaction whose signature is
    broken; the batch is gossiped and served on FetchBatches and Sync."""
    es = ctx.view.epoch_state
    out: list[DriverAction] = []
    done = 0
    for action in actions:
        proposal = _proposal_of(action)
        if proposal is None or proposal.block.height > es.end_height:
            out.append(action)
            continue
        assert isinstance(action, Broadcast | Send)
        batch = ctx.next_batch([_bad_transfer(ctx).encode()])
        block = replace(proposal.block, batches=(*proposal.block.batches, batch.ref))
        out.append(ForgedBatch(batch))
        out.append(_carrying(action, _resigned(ctx, block)))
        done += 1
    return out, done


# ------------------------------------------------------------------ replay, chain, flood


def replay(ctx: Context, actions: list[DriverAction], params: dict[str, Any]) -> Result:
    """Remember what the node sends; re-send old votes, timeouts and proposals, and put
    evidence its earlier proposals carried into its new ones."""
    memory = ctx.memory
    view = ctx.view
    out: list[DriverAction] = []
    done = 0
    for action in actions:
        proposal = _proposal_of(action)
        if proposal is not None:
            memory.evidence.extend(proposal.block.evidence)
            old = [ev for ev in memory.evidence if ev not in proposal.block.evidence]
            limit = view.epoch_state.params.max_evidence_per_block
            block = proposal.block
            if old and block.height <= view.epoch_state.end_height and len(block.evidence) < limit:
                assert isinstance(action, Broadcast | Send)
                block = replace(block, evidence=(*block.evidence, old[0]))
                action = _carrying(action, _resigned(ctx, block))
                done += 1
        if isinstance(action, Broadcast | Send) and isinstance(
            action.message, Vote | Timeout | Proposal
        ):
            memory.sent.append(action.message)
        out.append(action)
    if ctx.now_ms - memory.last_replay_ms < REPLAY_INTERVAL_MS:
        return out, done
    memory.last_replay_ms = ctx.now_ms
    epoch, round_ = view.epoch_state.epoch, view.round
    old_messages = [
        msg for msg in memory.sent if _epoch_round(msg) < (epoch, round_ - REPLAY_MIN_AGE_ROUNDS)
    ]
    for msg in ctx.rng.sample(old_messages, min(len(old_messages), int(params.get("count", 4)))):
        out.append(Broadcast(msg))
        done += 1
    return out, done


def _epoch_round(msg: Message) -> tuple[int, int]:
    if isinstance(msg, Proposal):
        return msg.block.epoch, msg.block.round
    if isinstance(msg, Vote | Timeout):
        return msg.epoch, msg.round
    return (0, 0)


def wrong_chain(ctx: Context, actions: list[DriverAction], params: dict[str, Any]) -> Result:
    """Votes, timeouts and proposals signed for another chain id (same key, same fields)."""
    honest = ctx.view.signer
    other = honest.for_chain(str(params.get("chain_id") or f"{honest.chain_id}-fork"))

    def change(msg: Message) -> Message | None:
        if isinstance(msg, Vote):
            return other.vote(msg.epoch, msg.round, msg.height, msg.block_id)
        if isinstance(msg, Timeout):
            return other.timeout(msg.epoch, msg.round, msg.high_qc)
        if isinstance(msg, Proposal):
            block = replace(msg.block, randao_reveal=other.randao_reveal(msg.block.epoch))
            return _resigned(ctx, block, other)
        return None

    return _map_messages(actions, change)


def flood(ctx: Context, actions: list[DriverAction], params: dict[str, Any]) -> Result:
    """Every ``interval_ms``: signed votes and timeouts for rounds far past the window, a few
    votes just inside it, and now and then an oversized message."""
    memory = ctx.memory
    if ctx.now_ms - memory.last_flood_ms < int(params.get("interval_ms", 200)):
        return actions, 0
    memory.last_flood_ms = ctx.now_ms
    memory.floods += 1
    view = ctx.view
    signer = view.signer
    epoch = view.epoch_state.epoch
    count = int(params.get("count", 20))
    out = list(actions)
    for i in range(count):
        far = view.round + FUTURE_ROUND_WINDOW + 1_000 + ctx.rng.randrange(1_000_000) + i
        out.append(Broadcast(signer.vote(epoch, far, 0, ctx.rng.randbytes(32))))
        out.append(Broadcast(signer.timeout(epoch, far, view.high_qc)))
    near = min(count, 5)
    for i in range(near):
        out.append(Broadcast(signer.vote(epoch, view.round + 2 + i, 0, ctx.rng.randbytes(32))))
    done = 2 * count + near
    if params.get("oversized", True) and memory.floods % OVERSIZED_EVERY == 1:
        out.append(RawMessage(None, Kind.VOTE, bytes(MAX_MESSAGE_BYTES + 1)))
        done += 1
    return out, done


# ------------------------------------------------------------------ stake


def unstake_escape(ctx: Context, actions: list[DriverAction], params: dict[str, Any]) -> Result:
    """Equivocate, and once per epoch unstake all the stake the epoch counts for this node
    (a valid, signed UNSTAKE in a gossiped batch) before the evidence can commit."""
    out, done = equivocate(ctx, actions, params)
    view = ctx.view
    es = view.epoch_state
    stake = es.validators.validators[view.me].stake
    if stake > 0 and ctx.memory.unstaked_epoch != es.epoch:
        ctx.memory.unstaked_epoch = es.epoch
        account = ctx.account
        unsigned = Transaction(
            kind=TxKind.UNSTAKE,
            chain_id=view.signer.chain_id,
            sender=account.public,
            nonce=ctx.nonce_of(account.public),
            amount=stake,
            validator=view.me,
        )
        tx = sign_transaction(account, unsigned)
        out.append(ForgedBatch(ctx.next_batch([tx.encode()])))
        done += 1
    return out, done


def registration_flood(ctx: Context, actions: list[DriverAction], params: dict[str, Any]) -> Result:
    """Every ``interval_ms``, a batch of ``count`` signed registrations of fresh keys."""
    memory = ctx.memory
    if ctx.now_ms - memory.last_registration_ms < int(params.get("interval_ms", 500)):
        return actions, 0
    memory.last_registration_ms = ctx.now_ms
    scheme = ctx.view.signer.scheme
    account = ctx.account
    nonce = ctx.nonce_of(account.public)
    raws = []
    for _ in range(int(params.get("count", 8))):
        keys = scheme.keypair(ctx.rng.randbytes(32))
        tx = sign_register(
            account,
            ctx.view.signer.chain_id,
            keys.public,
            scheme.pop_prove(keys.secret),
            int(params.get("stake", 1)),
            nonce,
            fee=int(params.get("fee", 0)),
        )
        raws.append(tx.encode())
    return [*actions, ForgedBatch(ctx.next_batch(raws))], len(raws)


#: The implementation of every behaviour of ``catalogue.BEHAVIOURS``.
IMPLEMENTATIONS: dict[str, Behaviour] = {
    "equivocate": equivocate,
    "silent-leader": silent_leader,
    "withhold-votes": withhold_votes,
    "selective-proposal": selective_proposal,
    "stale-fallback-qc": stale_fallback_qc,
    "tc-high-qc-swap": tc_high_qc_swap,
    "tamper-certificate": tamper_certificate,
    "timestamp-skew": timestamp_skew,
    "invalid-batch": invalid_batch,
    "replay": replay,
    "wrong-chain": wrong_chain,
    "flood": flood,
    "unstake-escape": unstake_escape,
    "registration-flood": registration_flood,
}
