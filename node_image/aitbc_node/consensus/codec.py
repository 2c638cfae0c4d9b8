"""Decoding of consensus records, and the peer message framing.

Records write themselves (``types``, with ``wire.Writer``); this module reads them back with
``wire.Reader``. Decoding is strict: truncation, trailing bytes, oversized fields and unknown kinds
raise :class:`DecodeError` naming the record and the field, so ``encode(decode(raw)) == raw``
for every accepted ``raw``.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

from aitbc_node.consensus.types import (
    BatchRef,
    Block,
    ConsensusParams,
    EpochState,
    Evidence,
    EvidenceMsg,
    Message,
    Mode,
    Proposal,
    QcMsg,
    QuorumCert,
    Timeout,
    TimeoutCert,
    TimeoutCertMsg,
    TimeoutGroup,
    Validator,
    ValidatorSet,
    Vote,
)
from aitbc_node.consensus.wire import MAX_MESSAGE_BYTES, Reader, Writer, read_whole
from aitbc_node.errors import DecodeError

#: Most signer groups in one TC: timeouts grouped by the highest-QC round each sender signed
#: (honest senders' rounds differ by a few at most).
MAX_TC_GROUPS = 32
#: Largest signer bitmap (2,048 validators: twice the active-set cap, see ``LedgerParams``).
MAX_BITMAP_BYTES = 256
#: Largest signature (BLS G2: 96 bytes).
MAX_SIGNATURE_BYTES = 96


class Kind(IntEnum):
    """Peer message kinds (``PeerMessage.kind`` on the wire)."""

    HELLO = 0
    PROPOSAL = 1
    VOTE = 2
    TIMEOUT = 3
    TC = 4
    BATCH = 5
    QC = 6
    EVIDENCE = 7


# ----------------------------------------------------------------------------- certificates


def read_qc(r: Reader) -> QuorumCert:
    return QuorumCert(
        epoch=r.u64("qc.epoch"),
        round=r.u64("qc.round"),
        height=r.u64("qc.height"),
        block_id=r.raw("qc.block_id", limit=32),
        signers=r.raw("qc.signers", limit=MAX_BITMAP_BYTES),
        signature=r.raw("qc.signature", limit=MAX_SIGNATURE_BYTES),
    )


def read_tc(r: Reader) -> TimeoutCert:
    epoch = r.u64("tc.epoch")
    round_ = r.u64("tc.round")
    groups = []
    for _ in range(r.count("tc.groups", MAX_TC_GROUPS)):
        groups.append(
            TimeoutGroup(
                high_qc_round=r.u64("tc.group.high_qc_round"),
                signers=r.raw("tc.group.signers", limit=MAX_BITMAP_BYTES),
                signature=r.raw("tc.group.signature", limit=MAX_SIGNATURE_BYTES),
            )
        )
    return TimeoutCert(epoch=epoch, round=round_, groups=tuple(groups), high_qc=read_qc(r))


def encode_qc(qc: QuorumCert) -> bytes:
    return qc.encode()


def decode_qc(data: bytes) -> QuorumCert:
    return read_whole("QuorumCert", data, read_qc)


# ----------------------------------------------------------------------------- evidence


def read_evidence(r: Reader) -> Evidence:
    kind = r.text("evidence.kind")
    if kind not in ("vote", "proposal"):
        raise DecodeError(f"Evidence: unknown kind {kind!r}; expected vote or proposal")
    return Evidence(
        kind=kind,
        epoch=r.u64("evidence.epoch"),
        round=r.u64("evidence.round"),
        offender=r.u32("evidence.offender"),
        height_a=r.u64("evidence.height_a"),
        block_a=r.raw("evidence.block_a", limit=32),
        signature_a=r.raw("evidence.signature_a", limit=MAX_SIGNATURE_BYTES),
        height_b=r.u64("evidence.height_b"),
        block_b=r.raw("evidence.block_b", limit=32),
        signature_b=r.raw("evidence.signature_b", limit=MAX_SIGNATURE_BYTES),
    )


# ----------------------------------------------------------------------------- block


def encode_block(b: Block) -> bytes:
    return b.encode()


def block_id(b: Block) -> bytes:
    return b.id


def read_block(r: Reader) -> Block:
    epoch = r.u64("block.epoch")
    round_ = r.u64("block.round")
    height = r.u64("block.height")
    parent = r.raw("block.parent_id", limit=32)
    proposer = r.u32("block.proposer")
    timestamp = r.u64("block.timestamp_ms")
    batches = tuple(
        BatchRef(
            digest=r.raw("batch.digest", exact=32),
            tx_count=r.u32("batch.tx_count"),
            author=r.u32("batch.author"),
        )
        for _ in range(r.count("block.batches"))
    )
    justify = read_qc(r)
    tc = read_tc(r) if r.u8("block.has_tc") else None
    evidence = tuple(read_evidence(r) for _ in range(r.count("block.evidence")))
    reveal = r.raw("block.randao_reveal", limit=MAX_SIGNATURE_BYTES)
    return Block(
        epoch=epoch,
        round=round_,
        height=height,
        parent_id=parent,
        proposer=proposer,
        timestamp_ms=timestamp,
        batches=batches,
        justify=justify,
        tc=tc,
        evidence=evidence,
        randao_reveal=reveal,
    )


def decode_block(data: bytes) -> Block:
    return read_whole("Block", data, read_block)


# ----------------------------------------------------------------------------- peer messages


def encode_message(msg: Message) -> tuple[Kind, bytes]:
    w = Writer()
    if isinstance(msg, Proposal):
        msg.block.write(w)
        w.raw(msg.signature)
        return Kind.PROPOSAL, w.getvalue()
    if isinstance(msg, Vote):
        w.u64(msg.epoch).u64(msg.round).u64(msg.height).raw(msg.block_id).u32(msg.voter)
        w.raw(msg.signature)
        return Kind.VOTE, w.getvalue()
    if isinstance(msg, Timeout):
        w.u64(msg.epoch).u64(msg.round).u32(msg.voter).raw(msg.signature)
        msg.high_qc.write(w)
        return Kind.TIMEOUT, w.getvalue()
    if isinstance(msg, QcMsg):
        msg.qc.write(w)
        return Kind.QC, w.getvalue()
    if isinstance(msg, EvidenceMsg):
        msg.evidence.write(w)
        return Kind.EVIDENCE, w.getvalue()
    msg.tc.write(w)
    return Kind.TC, w.getvalue()


def _read_proposal(r: Reader) -> Proposal:
    block = read_block(r)
    return Proposal(block=block, signature=r.raw("proposal.signature", limit=MAX_SIGNATURE_BYTES))


def _read_vote(r: Reader) -> Vote:
    return Vote(
        epoch=r.u64("vote.epoch"),
        round=r.u64("vote.round"),
        height=r.u64("vote.height"),
        block_id=r.raw("vote.block_id", exact=32),
        voter=r.u32("vote.voter"),
        signature=r.raw("vote.signature", limit=MAX_SIGNATURE_BYTES),
    )


def _read_timeout(r: Reader) -> Timeout:
    epoch = r.u64("timeout.epoch")
    round_ = r.u64("timeout.round")
    voter = r.u32("timeout.voter")
    signature = r.raw("timeout.signature", limit=MAX_SIGNATURE_BYTES)
    return Timeout(epoch=epoch, round=round_, voter=voter, signature=signature, high_qc=read_qc(r))


def _read_tc_msg(r: Reader) -> TimeoutCertMsg:
    return TimeoutCertMsg(tc=read_tc(r))


def _read_qc_msg(r: Reader) -> QcMsg:
    return QcMsg(qc=read_qc(r))


def _read_evidence_msg(r: Reader) -> EvidenceMsg:
    return EvidenceMsg(evidence=read_evidence(r))


_READERS: dict[int, tuple[str, Callable[[Reader], Message]]] = {
    Kind.QC: ("QcMsg", _read_qc_msg),
    Kind.EVIDENCE: ("EvidenceMsg", _read_evidence_msg),
    Kind.PROPOSAL: ("Proposal", _read_proposal),
    Kind.VOTE: ("Vote", _read_vote),
    Kind.TIMEOUT: ("Timeout", _read_timeout),
    Kind.TC: ("TimeoutCert", _read_tc_msg),
}


def decode_message(kind: int, data: bytes) -> Message:
    entry = _READERS.get(kind)
    if entry is None:
        raise DecodeError(f"peer message: unknown kind {kind}; expected one of {sorted(_READERS)}")
    name, parse = entry
    return read_whole(name, data, parse)


def message_epoch(msg: Message) -> int:
    """The epoch a peer message belongs to."""
    if isinstance(msg, Proposal):
        return msg.block.epoch
    if isinstance(msg, TimeoutCertMsg):
        return msg.tc.epoch
    if isinstance(msg, QcMsg):
        return msg.qc.epoch
    if isinstance(msg, EvidenceMsg):
        return msg.evidence.epoch
    return msg.epoch


# ----------------------------------------------------------------------------- epoch state


def _opt(w: Writer, value: int | None) -> None:
    if value is None:
        w.u8(0)
    else:
        w.u8(1).u64(value)


def _read_opt(r: Reader, name: str) -> int | None:
    return r.u64(name) if r.u8(name) else None


def encode_epoch_state(state: EpochState) -> bytes:
    w = Writer().text(state.chain_id).u64(state.epoch).u8(int(state.mode)).raw(state.seed)
    w.u64(state.start_height).raw(state.anchor_id)
    state.anchor_qc.write(w)
    p = state.params
    w.u64(p.epoch_length).u64(p.checkpoint_interval)
    _opt(w, p.block_interval_ms)
    _opt(w, p.base_timeout_ms)
    w.u32(p.max_batches_per_block).u32(p.max_evidence_per_block)
    w.u32(len(state.validators))
    for v in state.validators.validators:
        w.u32(v.index).raw(v.public_key).u64(v.stake).u8(int(v.authority))
    return w.getvalue()


def decode_epoch_state(data: bytes) -> EpochState:
    def parse(r: Reader) -> EpochState:
        chain_id = r.text("epoch.chain_id")
        epoch = r.u64("epoch.epoch")
        mode = Mode(r.u8("epoch.mode"))
        seed = r.raw("epoch.seed", limit=64)
        start = r.u64("epoch.start_height")
        anchor_id = r.raw("epoch.anchor_id", limit=32)
        anchor_qc = read_qc(r)
        params = ConsensusParams(
            epoch_length=r.u64("params.epoch_length"),
            checkpoint_interval=r.u64("params.checkpoint_interval"),
            block_interval_ms=_read_opt(r, "params.block_interval_ms"),
            base_timeout_ms=_read_opt(r, "params.base_timeout_ms"),
            max_batches_per_block=r.u32("params.max_batches_per_block"),
            max_evidence_per_block=r.u32("params.max_evidence_per_block"),
        )
        n = r.u32("epoch.validators")
        validators = tuple(
            Validator(
                index=r.u32("validator.index"),
                public_key=r.raw("validator.public_key", limit=96),
                stake=r.u64("validator.stake"),
                authority=bool(r.u8("validator.authority")),
            )
            for _ in range(n)
        )
        return EpochState(
            epoch,
            ValidatorSet(validators),
            mode,
            seed,
            start,
            anchor_id,
            anchor_qc,
            params,
            chain_id=chain_id,
        )

    return read_whole("EpochState", data, parse)


def encode_blocks(blocks: tuple[Block, ...] | list[Block]) -> bytes:
    w = Writer().u32(len(blocks))
    for b in blocks:
        w.raw(b.encode())
    return w.getvalue()


def decode_blocks(data: bytes) -> list[Block]:
    def parse(r: Reader) -> list[Block]:
        return [
            decode_block(r.raw("block", limit=MAX_MESSAGE_BYTES)) for _ in range(r.count("blocks"))
        ]

    return read_whole("Blocks", data, parse)
