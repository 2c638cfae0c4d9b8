"""The canonical codec: round trips of every message and record (hypothesis), and garbage,
truncated, oversized or padded bytes raise ``DecodeError`` and never anything else."""

from __future__ import annotations

import contextlib
from dataclasses import fields, replace
from typing import get_args

import pytest
from aitbc_node.batch import Batch, decode_batch
from aitbc_node.consensus import codec
from aitbc_node.consensus.codec import MAX_TC_GROUPS, Kind
from aitbc_node.consensus.types import (
    BatchRef,
    Block,
    Evidence,
    EvidenceMsg,
    Message,
    Proposal,
    QcMsg,
    QuorumCert,
    Timeout,
    TimeoutCert,
    TimeoutCertMsg,
    TimeoutGroup,
    Vote,
)
from aitbc_node.consensus.wire import MAX_ITEMS, MAX_MESSAGE_BYTES, Writer
from aitbc_node.errors import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

u32 = st.integers(min_value=0, max_value=2**32 - 1)
u64 = st.integers(min_value=0, max_value=2**64 - 1)
block_ids = st.binary(min_size=32, max_size=32)
short_ids = st.binary(max_size=32)
signatures = st.binary(max_size=96)
bitmaps = st.binary(max_size=256)

qcs = st.builds(
    QuorumCert,
    epoch=u64,
    round=u64,
    height=u64,
    block_id=short_ids,
    signers=bitmaps,
    signature=signatures,
)
groups = st.builds(TimeoutGroup, high_qc_round=u64, signers=bitmaps, signature=signatures)
tcs = st.builds(
    TimeoutCert,
    epoch=u64,
    round=u64,
    groups=st.lists(groups, max_size=3).map(tuple),
    high_qc=qcs,
)
batch_refs = st.builds(BatchRef, digest=block_ids, tx_count=u32, author=u32)
evidences = st.builds(
    Evidence,
    kind=st.sampled_from(["vote", "proposal"]),
    epoch=u64,
    round=u64,
    offender=u32,
    height_a=u64,
    block_a=short_ids,
    signature_a=signatures,
    height_b=u64,
    block_b=short_ids,
    signature_b=signatures,
)
blocks = st.builds(
    Block,
    epoch=u64,
    round=u64,
    height=u64,
    parent_id=short_ids,
    proposer=u32,
    timestamp_ms=u64,
    batches=st.lists(batch_refs, max_size=4).map(tuple),
    justify=qcs,
    tc=st.none() | tcs,
    evidence=st.lists(evidences, max_size=3).map(tuple),
    randao_reveal=signatures,
)
proposals = st.builds(Proposal, block=blocks, signature=signatures)
votes = st.builds(
    Vote, epoch=u64, round=u64, height=u64, block_id=block_ids, voter=u32, signature=signatures
)
timeouts = st.builds(Timeout, epoch=u64, round=u64, high_qc=qcs, voter=u32, signature=signatures)
messages: st.SearchStrategy[Message] = st.one_of(
    proposals,
    votes,
    timeouts,
    st.builds(TimeoutCertMsg, tc=tcs),
    st.builds(QcMsg, qc=qcs),
    st.builds(EvidenceMsg, evidence=evidences),
)
batches = st.builds(
    Batch,
    author=u32,
    sequence=u64,
    transactions=st.lists(st.binary(max_size=64), max_size=5).map(tuple),
    synthetic_count=u32,
)

EXPECTED_KIND = {
    Proposal: Kind.PROPOSAL,
    Vote: Kind.VOTE,
    Timeout: Kind.TIMEOUT,
    TimeoutCertMsg: Kind.TC,
    QcMsg: Kind.QC,
    EvidenceMsg: Kind.EVIDENCE,
}


def test_every_message_type_has_a_strategy() -> None:
    covered = set(EXPECTED_KIND)
    assert covered == {Proposal, Vote, Timeout, TimeoutCertMsg, QcMsg, EvidenceMsg}
    assert set(get_args(Message)) == covered


# --------------------------------------------------------------------------- round trips


@FUZZ
@given(messages)
def test_message_round_trip(msg: Message) -> None:
    kind, data = codec.encode_message(msg)
    assert kind == EXPECTED_KIND[type(msg)]
    decoded = codec.decode_message(int(kind), data)
    assert decoded == msg
    assert codec.encode_message(decoded) == (kind, data)  # canonical: one encoding per value


@FUZZ
@given(blocks)
def test_block_round_trip_keeps_the_id(block: Block) -> None:
    decoded = codec.decode_block(codec.encode_block(block))
    assert decoded == block
    assert decoded.id == block.id == codec.block_id(block)


@FUZZ
@given(qcs)
def test_qc_round_trip(qc: QuorumCert) -> None:
    assert codec.decode_qc(codec.encode_qc(qc)) == qc


@FUZZ
@given(batches)
def test_batch_round_trip(batch: Batch) -> None:
    decoded = decode_batch(batch.encode())
    assert decoded == batch
    assert decoded.digest == batch.digest


def test_block_id_covers_every_field() -> None:
    base = Block(
        epoch=1,
        round=2,
        height=3,
        parent_id=b"p" * 32,
        proposer=4,
        timestamp_ms=5,
        batches=(),
        justify=QuorumCert(1, 1, 2, b"q" * 32, b"\x01", b"s"),
        tc=None,
        evidence=(),
        randao_reveal=b"r",
    )
    changed = {
        "epoch": 9,
        "round": 9,
        "height": 9,
        "parent_id": b"x" * 32,
        "proposer": 9,
        "timestamp_ms": 9,
        "batches": (BatchRef(b"d" * 32, 1, 0),),
        "justify": QuorumCert(1, 1, 2, b"q" * 32, b"\x03", b"s"),
        "tc": TimeoutCert(
            1, 1, (TimeoutGroup(0, b"\x01", b"t"),), QuorumCert(1, 0, 1, b"q" * 32, b"\x01", b"s")
        ),
        "evidence": (Evidence("vote", 1, 1, 0, 1, b"a", b"1", 1, b"b", b"2"),),
        "randao_reveal": b"R",
    }
    assert set(changed) == {f.name for f in fields(Block)}
    ids = {replace(base, **{name: value}).id for name, value in changed.items()}
    assert len(ids) == len(changed) and base.id not in ids


# --------------------------------------------------------------------------- bad bytes


def _decode_any(kind: int, data: bytes) -> None:
    """Decode through every entry point; only DecodeError may escape."""
    for decode in (
        lambda: codec.decode_message(kind, data),
        lambda: codec.decode_block(data),
        lambda: codec.decode_qc(data),
        lambda: decode_batch(data),
    ):
        with contextlib.suppress(DecodeError):
            decode()


@FUZZ
@given(st.integers(min_value=-3, max_value=12), st.binary(max_size=600))
def test_garbage_raises_only_decode_error(kind: int, data: bytes) -> None:
    _decode_any(kind, data)


@FUZZ
@given(messages, st.data())
def test_truncated_messages_raise_decode_error(msg: Message, data: st.DataObject) -> None:
    kind, raw = codec.encode_message(msg)
    cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    with pytest.raises(DecodeError):
        codec.decode_message(int(kind), raw[:cut])


@FUZZ
@given(messages, st.binary(min_size=1, max_size=64))
def test_trailing_bytes_raise_decode_error(msg: Message, extra: bytes) -> None:
    kind, raw = codec.encode_message(msg)
    with pytest.raises(DecodeError, match="trailing"):
        codec.decode_message(int(kind), raw + extra)


@FUZZ
@given(messages, st.data())
def test_corrupted_messages_decode_or_raise_decode_error(msg: Message, data: st.DataObject) -> None:
    kind, raw = codec.encode_message(msg)
    corrupted = bytearray(raw)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        position = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        corrupted[position] = data.draw(st.integers(min_value=0, max_value=255))
    other_kind = data.draw(st.sampled_from([int(k) for k in Kind]))
    _decode_any(int(kind), bytes(corrupted))
    _decode_any(other_kind, bytes(corrupted))


@FUZZ
@given(blocks, st.data())
def test_truncated_and_padded_blocks_raise_decode_error(block: Block, data: st.DataObject) -> None:
    raw = codec.encode_block(block)
    cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    with pytest.raises(DecodeError):
        codec.decode_block(raw[:cut])
    with pytest.raises(DecodeError):
        codec.decode_block(raw + b"\x00")


def test_oversized_message_is_refused_before_parsing() -> None:
    with pytest.raises(DecodeError, match="at most"):
        codec.decode_message(int(Kind.VOTE), bytes(MAX_MESSAGE_BYTES + 1))


def test_oversized_fields_and_counts_are_refused() -> None:
    # A vote whose block id claims 33 bytes.
    w = Writer().u64(1).u64(2).u64(3).raw(b"x" * 33).u32(0).raw(b"s")
    with pytest.raises(DecodeError, match=r"vote\.block_id"):
        codec.decode_message(int(Kind.VOTE), w.getvalue())
    # A QC whose signature field claims 4 GiB.
    w = Writer().u64(1).u64(2).u64(3).raw(b"b" * 32).raw(b"\x01").u32(2**32 - 1)
    with pytest.raises(DecodeError, match=r"qc\.signature"):
        codec.decode_message(int(Kind.QC), w.getvalue())
    # A block claiming more batches than allowed.
    w = Writer().u64(1).u64(1).u64(1).raw(b"p" * 32).u32(0).u64(0).u32(MAX_ITEMS + 1)
    with pytest.raises(DecodeError, match=r"block\.batches"):
        codec.decode_block(w.getvalue())
    # A TC claiming more signer groups than allowed.
    w = Writer().u64(1).u64(2).u32(MAX_TC_GROUPS + 1)
    with pytest.raises(DecodeError, match=r"tc\.groups"):
        codec.decode_message(int(Kind.TC), w.getvalue())


def test_unknown_kind_and_bad_evidence_kind_are_refused() -> None:
    with pytest.raises(DecodeError, match="unknown kind"):
        codec.decode_message(99, b"")
    with pytest.raises(DecodeError, match="unknown kind"):
        codec.decode_message(int(Kind.HELLO), b"")
    block = Block(
        epoch=1,
        round=1,
        height=1,
        parent_id=b"p" * 32,
        proposer=0,
        timestamp_ms=0,
        batches=(),
        justify=QuorumCert(0, 0, 0, b"q" * 32, b"", b""),
        tc=None,
        evidence=(Evidence("vote", 1, 1, 0, 1, b"a", b"1", 1, b"b", b"2"),),
        randao_reveal=b"",
    )
    raw = codec.encode_block(block)
    tampered = raw.replace(b"\x00\x00\x00\x04vote", b"\x00\x00\x00\x04vete")
    assert tampered != raw
    with pytest.raises(DecodeError, match="unknown kind 'vete'"):
        codec.decode_block(tampered)
    not_utf8 = raw.replace(b"\x00\x00\x00\x04vote", b"\x00\x00\x00\x04\xff\xfe\xfd\xfc")
    with pytest.raises(DecodeError, match="UTF-8"):
        codec.decode_block(not_utf8)
