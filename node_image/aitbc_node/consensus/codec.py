"""Canonical binary encoding of consensus records (what is hashed, signed and sent).

Layout: big-endian fixed-width integers, byte strings prefixed by a u32 length, optional values by
a u8 presence flag, sequences by a u32 count. Decoding is strict: truncation, trailing bytes,
oversized fields and unknown kinds raise :class:`DecodeError` naming the record and the field.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from enum import IntEnum
from typing import TypeVar

from aitbc_node.consensus.types import (
    BatchRef,
    Block,
    ConsensusParams,
    EpochState,
    Evidence,
    Message,
    Mode,
    Proposal,
    QcMsg,
    QuorumCert,
    Timeout,
    TimeoutCert,
    TimeoutCertMsg,
    Validator,
    ValidatorSet,
    Vote,
)
from aitbc_node.errors import DecodeError

#: Largest byte string any field may hold (a signer bitmap of 1,000 validators is 125 bytes).
MAX_FIELD_BYTES = 1 << 16
#: Largest sequence (batches or evidence) in one block.
MAX_ITEMS = 4096
#: Largest encoded message accepted from a peer.
MAX_MESSAGE_BYTES = 4 << 20

T = TypeVar("T")


class Kind(IntEnum):
    """Peer message kinds (``PeerMessage.kind`` on the wire)."""

    HELLO = 0
    PROPOSAL = 1
    VOTE = 2
    TIMEOUT = 3
    TC = 4
    BATCH = 5
    QC = 6


class Writer:
    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def u8(self, value: int) -> Writer:
        self.parts.append(struct.pack(">B", value))
        return self

    def u32(self, value: int) -> Writer:
        self.parts.append(struct.pack(">I", value))
        return self

    def u64(self, value: int) -> Writer:
        self.parts.append(struct.pack(">Q", value))
        return self

    def raw(self, value: bytes) -> Writer:
        self.parts.append(struct.pack(">I", len(value)))
        self.parts.append(value)
        return self

    def text(self, value: str) -> Writer:
        return self.raw(value.encode())

    def raw_large(self, value: bytes) -> Writer:
        """A byte string that may exceed MAX_FIELD_BYTES (snapshots; never from the network)."""
        self.parts.append(struct.pack(">Q", len(value)))
        self.parts.append(value)
        return self

    def getvalue(self) -> bytes:
        return b"".join(self.parts)


class Reader:
    __slots__ = ("data", "pos", "record")

    def __init__(self, data: bytes, record: str) -> None:
        self.data = data
        self.pos = 0
        self.record = record

    def _take(self, n: int, name: str) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise DecodeError(
                f"{self.record}: truncated at field {name!r} (needs {n} bytes at offset "
                f"{self.pos}, {len(self.data)} in all)"
            )
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def u8(self, name: str) -> int:
        return int(self._take(1, name)[0])

    def u32(self, name: str) -> int:
        return int(struct.unpack(">I", self._take(4, name))[0])

    def u64(self, name: str) -> int:
        return int(struct.unpack(">Q", self._take(8, name))[0])

    def raw(self, name: str, exact: int | None = None, limit: int = MAX_FIELD_BYTES) -> bytes:
        size = self.u32(name)
        if size > limit or (exact is not None and size != exact):
            want = f"exactly {exact}" if exact is not None else f"at most {limit}"
            raise DecodeError(f"{self.record}: field {name!r} has {size} bytes, {want} allowed")
        return bytes(self._take(size, name))

    def raw_large(self, name: str) -> bytes:
        size = self.u64(name)
        return bytes(self._take(size, name))

    def text(self, name: str) -> str:
        try:
            return self.raw(name, limit=256).decode()
        except UnicodeDecodeError:
            raise DecodeError(f"{self.record}: field {name!r} is not UTF-8") from None

    def count(self, name: str) -> int:
        n = self.u32(name)
        if n > MAX_ITEMS:
            raise DecodeError(f"{self.record}: {name!r} has {n} items, at most {MAX_ITEMS}")
        return n

    def done(self) -> None:
        if self.pos != len(self.data):
            raise DecodeError(
                f"{self.record}: {len(self.data) - self.pos} trailing bytes after the record"
            )


def _guard(
    record: str, data: bytes, parse: Callable[[Reader], T], limit: int = MAX_MESSAGE_BYTES
) -> T:
    if len(data) > limit:
        raise DecodeError(f"{record}: {len(data)} bytes, at most {limit} allowed")
    reader = Reader(data, record)
    value = parse(reader)
    reader.done()
    return value


# ----------------------------------------------------------------------------- signed messages


def vote_message(epoch: int, round_: int, block_id: bytes) -> bytes:
    """What a vote (and so a QC) signs. Proposals sign the same triple under another domain."""
    return struct.pack(">QQ", epoch, round_) + block_id


def timeout_message(epoch: int, round_: int) -> bytes:
    return struct.pack(">QQ", epoch, round_)


def randao_message(epoch: int) -> bytes:
    return struct.pack(">Q", epoch)


# ----------------------------------------------------------------------------- QC / TC


def write_qc(w: Writer, qc: QuorumCert) -> None:
    w.u64(qc.epoch).u64(qc.round).u64(qc.height).raw(qc.block_id).raw(qc.signers)
    w.raw(qc.signature)


def read_qc(r: Reader) -> QuorumCert:
    return QuorumCert(
        epoch=r.u64("qc.epoch"),
        round=r.u64("qc.round"),
        height=r.u64("qc.height"),
        block_id=r.raw("qc.block_id", limit=32),
        signers=r.raw("qc.signers", limit=256),
        signature=r.raw("qc.signature", limit=96),
    )


def write_tc(w: Writer, tc: TimeoutCert) -> None:
    w.u64(tc.epoch).u64(tc.round).raw(tc.signers).raw(tc.signature)
    write_qc(w, tc.high_qc)


def read_tc(r: Reader) -> TimeoutCert:
    return TimeoutCert(
        epoch=r.u64("tc.epoch"),
        round=r.u64("tc.round"),
        signers=r.raw("tc.signers", limit=256),
        signature=r.raw("tc.signature", limit=96),
        high_qc=read_qc(r),
    )


def encode_qc(qc: QuorumCert) -> bytes:
    w = Writer()
    write_qc(w, qc)
    return w.getvalue()


def decode_qc(data: bytes) -> QuorumCert:
    return _guard("QuorumCert", data, read_qc)


# ----------------------------------------------------------------------------- evidence


def write_evidence(w: Writer, ev: Evidence) -> None:
    w.text(ev.kind).u64(ev.epoch).u64(ev.round).u32(ev.offender)
    w.raw(ev.block_a).raw(ev.signature_a).raw(ev.block_b).raw(ev.signature_b)


def read_evidence(r: Reader) -> Evidence:
    kind = r.text("evidence.kind")
    if kind not in ("vote", "proposal"):
        raise DecodeError(f"Evidence: unknown kind {kind!r}; expected vote or proposal")
    return Evidence(
        kind=kind,
        epoch=r.u64("evidence.epoch"),
        round=r.u64("evidence.round"),
        offender=r.u32("evidence.offender"),
        block_a=r.raw("evidence.block_a", limit=32),
        signature_a=r.raw("evidence.signature_a", limit=96),
        block_b=r.raw("evidence.block_b", limit=32),
        signature_b=r.raw("evidence.signature_b", limit=96),
    )


# ----------------------------------------------------------------------------- block


def _write_header(w: Writer, b: Block) -> None:
    w.u64(b.epoch).u64(b.round).u64(b.height).raw(b.parent_id).u32(b.proposer)
    w.u64(b.timestamp_ms)
    w.u32(len(b.batches))
    for ref in b.batches:
        w.raw(ref.digest).u32(ref.tx_count).u32(ref.author)
    write_qc(w, b.justify)
    if b.tc is None:
        w.u8(0)
    else:
        w.u8(1)
        write_tc(w, b.tc)
    w.u32(len(b.evidence))
    for ev in b.evidence:
        write_evidence(w, ev)
    w.raw(b.randao_reveal)


def encode_block(b: Block) -> bytes:
    w = Writer()
    _write_header(w, b)
    return w.getvalue()


def block_id(b: Block) -> bytes:
    return hashlib.sha256(b"AITBC/v1/block\x00" + encode_block(b)).digest()


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
    reveal = r.raw("block.randao_reveal", limit=96)
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
    return _guard("Block", data, read_block)


# ----------------------------------------------------------------------------- peer messages


def encode_message(msg: Message) -> tuple[Kind, bytes]:
    w = Writer()
    if isinstance(msg, Proposal):
        _write_header(w, msg.block)
        w.raw(msg.signature)
        return Kind.PROPOSAL, w.getvalue()
    if isinstance(msg, Vote):
        w.u64(msg.epoch).u64(msg.round).u64(msg.height).raw(msg.block_id).u32(msg.voter)
        w.raw(msg.signature)
        return Kind.VOTE, w.getvalue()
    if isinstance(msg, Timeout):
        w.u64(msg.epoch).u64(msg.round).u32(msg.voter).raw(msg.signature)
        write_qc(w, msg.high_qc)
        return Kind.TIMEOUT, w.getvalue()
    if isinstance(msg, QcMsg):
        write_qc(w, msg.qc)
        return Kind.QC, w.getvalue()
    write_tc(w, msg.tc)
    return Kind.TC, w.getvalue()


def _read_proposal(r: Reader) -> Proposal:
    block = read_block(r)
    return Proposal(block=block, signature=r.raw("proposal.signature", limit=96))


def _read_vote(r: Reader) -> Vote:
    return Vote(
        epoch=r.u64("vote.epoch"),
        round=r.u64("vote.round"),
        height=r.u64("vote.height"),
        block_id=r.raw("vote.block_id", exact=32),
        voter=r.u32("vote.voter"),
        signature=r.raw("vote.signature", limit=96),
    )


def _read_timeout(r: Reader) -> Timeout:
    epoch = r.u64("timeout.epoch")
    round_ = r.u64("timeout.round")
    voter = r.u32("timeout.voter")
    signature = r.raw("timeout.signature", limit=96)
    return Timeout(epoch=epoch, round=round_, voter=voter, signature=signature, high_qc=read_qc(r))


def _read_tc_msg(r: Reader) -> TimeoutCertMsg:
    return TimeoutCertMsg(tc=read_tc(r))


def _read_qc_msg(r: Reader) -> QcMsg:
    return QcMsg(qc=read_qc(r))


_READERS: dict[int, tuple[str, Callable[[Reader], Message]]] = {
    Kind.QC: ("QcMsg", _read_qc_msg),
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
    return _guard(name, data, parse)


# ----------------------------------------------------------------------------- epoch state


def _opt(w: Writer, value: int | None) -> None:
    if value is None:
        w.u8(0)
    else:
        w.u8(1).u64(value)


def _read_opt(r: Reader, name: str) -> int | None:
    return r.u64(name) if r.u8(name) else None


def encode_epoch_state(state: EpochState) -> bytes:
    w = Writer().u64(state.epoch).u8(int(state.mode)).raw(state.seed).u64(state.start_height)
    w.raw(state.anchor_id)
    write_qc(w, state.anchor_qc)
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
            epoch, ValidatorSet(validators), mode, seed, start, anchor_id, anchor_qc, params
        )

    return _guard("EpochState", data, parse)


def encode_blocks(blocks: tuple[Block, ...] | list[Block]) -> bytes:
    w = Writer().u32(len(blocks))
    for b in blocks:
        w.raw(encode_block(b))
    return w.getvalue()


def decode_blocks(data: bytes) -> list[Block]:
    def parse(r: Reader) -> list[Block]:
        return [
            decode_block(r.raw("block", limit=MAX_MESSAGE_BYTES)) for _ in range(r.count("blocks"))
        ]

    return _guard("Blocks", data, parse)
