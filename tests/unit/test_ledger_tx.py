"""Canonical transaction encoding, decoding and signatures."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from aitbc_node.crypto import Domain, ModeledScheme, testnet_account_keypair
from aitbc_node.errors import DecodeError, TransactionError
from aitbc_node.ledger import (
    MAX_TX_BYTES,
    Transaction,
    TxKind,
    decode_transaction,
    sign_register,
    sign_stake,
    sign_transaction,
    sign_transfer,
    sign_unstake,
    tx_id,
    verify_transaction_signature,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

KEYS = testnet_account_keypair("tx-tests", 0)
OTHER = testnet_account_keypair("tx-tests", 1)
CHAIN = "aitbc-unit"

u64 = st.integers(min_value=0, max_value=2**64 - 1)
chain_ids = st.text(min_size=1, max_size=20).filter(lambda text: len(text.encode()) <= 64)
common = {
    "chain_id": chain_ids,
    "sender": st.binary(min_size=32, max_size=32),
    "nonce": u64,
    "fee": u64,
    "amount": u64,
    "memo": st.binary(max_size=512),
    "signature": st.binary(min_size=64, max_size=64),
}
transactions = st.one_of(
    st.builds(
        Transaction,
        kind=st.just(TxKind.TRANSFER),
        recipient=st.binary(min_size=32, max_size=32),
        **common,
    ),
    st.builds(
        Transaction,
        kind=st.sampled_from([TxKind.STAKE, TxKind.UNSTAKE]),
        validator=st.integers(min_value=0, max_value=2**32 - 1),
        **common,
    ),
    st.builds(
        Transaction,
        kind=st.just(TxKind.REGISTER_VALIDATOR),
        bls_public_key=st.binary(min_size=48, max_size=48),
        pop=st.binary(min_size=96, max_size=96),
        **common,
    ),
)


def _fresh(tx: Transaction) -> Transaction:
    """The same field values in a new object (no cached encoding)."""
    return dataclasses.replace(tx)


@settings(max_examples=300, deadline=None)
@given(transactions)
def test_encode_decode_round_trip(tx: Transaction) -> None:
    raw = tx.encode()
    assert len(raw) <= MAX_TX_BYTES
    decoded = decode_transaction(raw)
    assert decoded == tx
    assert _fresh(decoded).encode() == raw
    assert decoded.id == tx.id == tx_id(raw) == hashlib.sha256(raw).digest()
    assert raw[0] == 1  # version byte first


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=MAX_TX_BYTES + 100))
def test_garbage_decodes_or_raises_decode_error(raw: bytes) -> None:
    try:
        tx = decode_transaction(raw)
    except DecodeError:
        return
    assert _fresh(tx).encode() == raw  # anything accepted is canonical


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=MAX_TX_BYTES + 1, max_size=4 * MAX_TX_BYTES))
def test_oversized_input_raises_too_large(raw: bytes) -> None:
    with pytest.raises(DecodeError, match="too large"):
        decode_transaction(raw)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transactions, st.data())
def test_every_truncation_raises(tx: Transaction, data: st.DataObject) -> None:
    raw = tx.encode()
    cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    with pytest.raises(DecodeError, match=r"truncated|length"):
        decode_transaction(raw[:cut])


def _signed_transfer(memo: bytes = b"hello") -> Transaction:
    return sign_transfer(KEYS, CHAIN, OTHER.public, 10, 0, fee=1, memo=memo)


def test_all_prefixes_of_a_transfer_raise() -> None:
    raw = _signed_transfer().encode()
    for cut in range(len(raw)):
        with pytest.raises(DecodeError):
            decode_transaction(raw[:cut])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda raw: raw + b"\x00", "1 trailing bytes"),
        (lambda raw: raw + b"\x00" * (MAX_TX_BYTES - len(raw) + 1), "too large"),
        (lambda raw: b"\x02" + raw[1:], "unknown version 2"),
        (lambda raw: raw[:1] + b"\x09" + raw[2:], "unknown kind 9"),
        (lambda raw: raw[:1] + b"\x00" + raw[2:], "unknown kind 0"),
        (lambda raw: raw[:2] + b"\x00" + raw[3:], "bad chain_id length 0"),
        (lambda raw: raw[:2] + b"\x41" + raw[3:], "bad chain_id length 65"),
        (lambda raw: raw[:3] + b"\xff" + raw[4:], "chain_id is not valid UTF-8"),
    ],
)
def test_decode_errors_say_what_is_wrong(mutate: object, message: str) -> None:
    assert callable(mutate)
    with pytest.raises(DecodeError, match=message):
        decode_transaction(mutate(_signed_transfer().encode()))


def test_memo_length_above_limit_is_rejected() -> None:
    raw = bytearray(_signed_transfer(memo=b"").encode())
    memo_offset = len(raw) - 64 - 2
    raw[memo_offset : memo_offset + 2] = (513).to_bytes(2, "big")
    with pytest.raises(DecodeError, match="bad memo length 513"):
        decode_transaction(bytes(raw) + b"\x00" * 513)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_flipped_byte_breaks_decoding_or_signature(data: st.DataObject) -> None:
    raw = bytearray(_signed_transfer().encode())
    position = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[position] ^= data.draw(st.integers(min_value=1, max_value=255))
    try:
        tx = decode_transaction(bytes(raw))
    except DecodeError:
        return
    assert not verify_transaction_signature(tx)


def test_sign_helpers_produce_verifiable_transactions() -> None:
    modeled = ModeledScheme()
    validator_key = modeled.keypair(b"v" * 32)
    built = [
        _signed_transfer(),
        sign_stake(KEYS, CHAIN, validator=3, amount=5, nonce=1),
        sign_unstake(KEYS, CHAIN, validator=3, amount=5, nonce=2, fee=2),
        sign_register(
            KEYS,
            CHAIN,
            validator_key.public,
            modeled.pop_prove(validator_key.secret),
            stake=7,
            nonce=3,
        ),
    ]
    assert [tx.kind for tx in built] == list(TxKind)
    for tx in built:
        assert tx.sender == KEYS.public
        assert verify_transaction_signature(tx)
        assert verify_transaction_signature(decode_transaction(tx.encode()))
        assert tx.signing_bytes().startswith(Domain.TX + b"\x00")
        assert tx.signing_bytes()[len(Domain.TX) + 1 :] == tx.encode()[:-64]
    assert len({tx.id for tx in built}) == len(built)


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 11},
        {"nonce": 1},
        {"fee": 0},
        {"chain_id": "aitbc-other"},
        {"recipient": KEYS.public},
        {"memo": b"hellp"},
        {"sender": OTHER.public},
    ],
)
def test_changed_field_invalidates_signature(change: dict[str, object]) -> None:
    tampered = dataclasses.replace(_signed_transfer(), **change)  # type: ignore[arg-type]
    assert not verify_transaction_signature(tampered)


def test_unsigned_transaction_cannot_be_encoded_or_verified() -> None:
    unsigned = Transaction(
        kind=TxKind.TRANSFER, chain_id=CHAIN, sender=KEYS.public, nonce=0, recipient=OTHER.public
    )
    with pytest.raises(TransactionError, match="unsigned"):
        unsigned.encode()
    assert not verify_transaction_signature(unsigned)
    assert verify_transaction_signature(sign_transaction(KEYS, unsigned))
    with pytest.raises(TransactionError, match="not the signing key"):
        sign_transaction(OTHER, unsigned)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": 7}, "field kind=7"),
        ({"chain_id": ""}, "field chain_id"),
        ({"chain_id": "x" * 65}, "field chain_id"),
        ({"sender": b"\x01" * 31}, "field sender"),
        ({"nonce": -1}, "field nonce=-1"),
        ({"fee": 2**64}, "field fee"),
        ({"amount": -5}, "field amount=-5"),
        ({"memo": b"m" * 513}, "field memo"),
        ({"signature": b"s" * 63}, "field signature"),
        ({"recipient": b"r" * 31}, "field recipient"),
        ({"validator": 2}, "field validator=2"),
        ({"bls_public_key": b"k" * 48}, "field bls_public_key/pop"),
    ],
)
def test_invalid_transfer_fields_raise(fields: dict[str, object], message: str) -> None:
    values: dict[str, object] = {
        "kind": TxKind.TRANSFER,
        "chain_id": CHAIN,
        "sender": KEYS.public,
        "nonce": 0,
        "recipient": OTHER.public,
    }
    values.update(fields)
    with pytest.raises(TransactionError, match=message):
        Transaction(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        (TxKind.STAKE, {"recipient": b"r" * 32}, "recipient"),
        (TxKind.STAKE, {"validator": 2**32}, "validator"),
        (TxKind.UNSTAKE, {"pop": b"p" * 96}, "bls_public_key/pop"),
        (TxKind.REGISTER_VALIDATOR, {"bls_public_key": b"k" * 47, "pop": b"p" * 96}, "bls"),
        (TxKind.REGISTER_VALIDATOR, {"bls_public_key": b"k" * 48, "pop": b"p" * 95}, "pop"),
        (
            TxKind.REGISTER_VALIDATOR,
            {"bls_public_key": b"k" * 48, "pop": b"p" * 96, "validator": 1},
            "validator",
        ),
    ],
)
def test_fields_must_fit_the_kind(kind: TxKind, fields: dict[str, object], message: str) -> None:
    with pytest.raises(TransactionError, match=message):
        Transaction(kind=kind, chain_id=CHAIN, sender=KEYS.public, nonce=0, **fields)  # type: ignore[arg-type]


def test_int_kind_is_normalised() -> None:
    tx = Transaction(kind=2, chain_id=CHAIN, sender=KEYS.public, nonce=0)  # type: ignore[arg-type]
    assert tx.kind is TxKind.STAKE
