"""Canonical transactions: the exact bytes on the wire, their ids and Ed25519 signatures.

Wire format, version 1 (integers big endian)::

    u8 version (=1) | u8 kind | u8 len + chain_id (UTF-8, 1..64 bytes)
    | sender (32) | u64 nonce | u64 fee | u64 amount
    | TRANSFER: recipient (32) | STAKE, UNSTAKE: u32 validator
    | REGISTER_VALIDATOR: bls_public_key (48) + pop (96)
    | u16 len + memo (0..512) | signature (64)

Fields that do not belong to a kind are not encoded and must be empty (or 0). Every field has
one encoding, so ``encode(decode(raw)) == raw`` and ``tx_id`` is a function of the transaction.
The signature covers ``Domain.TX + b"\\x00" + encoding without the signature``.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from enum import IntEnum
from functools import partial

from aitbc_node.crypto.ed25519 import Ed25519KeyPair, ed25519_sign, ed25519_verify
from aitbc_node.crypto.hashing import Domain
from aitbc_node.errors import DecodeError, TransactionError

TX_VERSION = 1
MAX_TX_BYTES = 1024
MAX_MEMO_BYTES = 512
MAX_CHAIN_ID_BYTES = 64
ADDRESS_BYTES = 32
SIGNATURE_BYTES = 64
BLS_PUBLIC_KEY_BYTES = 48
POP_BYTES = 96
MAX_U64 = 2**64 - 1
MAX_U32 = 2**32 - 1

_TX_SIGNING_PREFIX = Domain.TX + b"\x00"
_HEAD = struct.Struct(">BBB")  # version, kind, chain id length
_ACCOUNT = struct.Struct(">32sQQQ")  # sender, nonce, fee, amount
_TRANSFER = struct.Struct(">32s")
_VALIDATOR = struct.Struct(">I")
_REGISTER = struct.Struct(">48s96s")
_MEMO_LENGTH = struct.Struct(">H")
_MIN_TX_BYTES = _HEAD.size + 1 + _ACCOUNT.size + _MEMO_LENGTH.size + SIGNATURE_BYTES


class TxKind(IntEnum):
    TRANSFER = 1
    STAKE = 2
    UNSTAKE = 3
    REGISTER_VALIDATOR = 4


_KNOWN_KINDS = frozenset(int(kind) for kind in TxKind)


def _fail(field: str, value: object, rule: str) -> TransactionError:
    return TransactionError(f"transaction field {field}={value!r} is invalid: {rule}")


@dataclass(frozen=True)
class Transaction:
    """A ledger transaction. ``sender`` is the account address (its Ed25519 public key).

    ``signature`` is empty on an unsigned transaction (``encode`` then refuses); use the
    ``sign_*`` functions to build signed ones.
    """

    kind: TxKind
    chain_id: str
    sender: bytes
    nonce: int
    fee: int = 0
    recipient: bytes = b""
    amount: int = 0
    validator: int = 0
    bls_public_key: bytes = b""
    pop: bytes = b""
    memo: bytes = b""
    signature: bytes = b""

    def __post_init__(self) -> None:
        if self.kind not in _KNOWN_KINDS:
            raise _fail("kind", self.kind, f"use one of {[k.name for k in TxKind]}")
        if not isinstance(self.kind, TxKind):
            object.__setattr__(self, "kind", TxKind(self.kind))
        if not 0 < len(self.chain_id.encode()) <= MAX_CHAIN_ID_BYTES:
            raise _fail("chain_id", self.chain_id, f"1..{MAX_CHAIN_ID_BYTES} UTF-8 bytes")
        if len(self.sender) != ADDRESS_BYTES:
            raise _fail("sender", self.sender.hex(), f"{ADDRESS_BYTES} bytes")
        for name in ("nonce", "fee", "amount"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_U64:
                raise _fail(name, value, "an integer in 0..2**64-1")
        if len(self.memo) > MAX_MEMO_BYTES:
            raise _fail("memo", f"<{len(self.memo)} bytes>", f"at most {MAX_MEMO_BYTES} bytes")
        if len(self.signature) not in (0, SIGNATURE_BYTES):
            raise _fail("signature", self.signature.hex(), f"{SIGNATURE_BYTES} bytes or empty")
        kind = self.kind
        if kind is TxKind.TRANSFER:
            if len(self.recipient) != ADDRESS_BYTES:
                raise _fail("recipient", self.recipient.hex(), f"{ADDRESS_BYTES} bytes")
        elif self.recipient:
            raise _fail("recipient", self.recipient.hex(), f"empty for {kind.name}")
        if kind is TxKind.STAKE or kind is TxKind.UNSTAKE:
            if not 0 <= self.validator <= MAX_U32:
                raise _fail("validator", self.validator, "a validator index in 0..2**32-1")
        elif self.validator != 0:
            raise _fail("validator", self.validator, f"0 for {kind.name}")
        if kind is TxKind.REGISTER_VALIDATOR:
            if len(self.bls_public_key) != BLS_PUBLIC_KEY_BYTES:
                raise _fail(
                    "bls_public_key", self.bls_public_key.hex(), f"{BLS_PUBLIC_KEY_BYTES} bytes"
                )
            if len(self.pop) != POP_BYTES:
                raise _fail("pop", self.pop.hex(), f"{POP_BYTES} bytes")
        elif self.bls_public_key or self.pop:
            raise _fail("bls_public_key/pop", "<set>", f"empty for {kind.name}")

    @property
    def _body(self) -> bytes:
        body: bytes | None = self.__dict__.get("_body_cache")
        if body is None:
            body = self._encode_body()
            self.__dict__["_body_cache"] = body
        return body

    def _encode_body(self) -> bytes:
        chain = self.chain_id.encode()
        kind = self.kind
        if kind is TxKind.TRANSFER:
            specific = self.recipient
        elif kind is TxKind.REGISTER_VALIDATOR:
            specific = self.bls_public_key + self.pop
        else:
            specific = _VALIDATOR.pack(self.validator)
        return b"".join(
            (
                _HEAD.pack(TX_VERSION, kind, len(chain)),
                chain,
                _ACCOUNT.pack(self.sender, self.nonce, self.fee, self.amount),
                specific,
                _MEMO_LENGTH.pack(len(self.memo)),
                self.memo,
            )
        )

    @property
    def _wire(self) -> bytes:
        wire: bytes | None = self.__dict__.get("_wire_cache")
        if wire is not None:
            return wire
        if not self.signature:
            raise TransactionError(
                f"transaction from {self.sender.hex()[:16]}... nonce {self.nonce} is unsigned: "
                "sign it (sign_transfer, sign_transaction, ...) before encoding"
            )
        wire = self._body + self.signature
        self.__dict__["_wire_cache"] = wire
        return wire

    def signing_bytes(self) -> bytes:
        """What the sender signs: ``Domain.TX + b"\\x00" + encoding without the signature``."""
        return _TX_SIGNING_PREFIX + self._body

    def encode(self) -> bytes:
        """The canonical wire bytes (signed transactions only)."""
        return self._wire

    @property
    def id(self) -> bytes:
        """sha256 of the encoding (computed once)."""
        tx_hash: bytes | None = self.__dict__.get("_id_cache")
        if tx_hash is None:
            tx_hash = hashlib.sha256(self._wire).digest()
            self.__dict__["_id_cache"] = tx_hash
        return tx_hash

    @property
    def size(self) -> int:
        return len(self._body) + SIGNATURE_BYTES


def tx_id(raw: bytes) -> bytes:
    """The id of an encoded transaction: sha256 of its bytes."""
    return hashlib.sha256(raw).digest()


def _truncated(field: str, offset: int, need: int, total: int) -> DecodeError:
    return DecodeError(
        f"transaction is truncated: field {field} needs {need} bytes at offset {offset}, "
        f"only {max(total - offset, 0)} left of {total}"
    )


def decode_transaction(raw: bytes) -> Transaction:
    """Decode wire bytes; raises ``DecodeError`` naming what is wrong (too large, truncated,
    unknown version or kind, bad length, bad UTF-8, trailing bytes)."""
    total = len(raw)
    if total > MAX_TX_BYTES:
        raise DecodeError(f"transaction is too large: {total} bytes > MAX_TX_BYTES {MAX_TX_BYTES}")
    if total < _HEAD.size:
        raise _truncated("header", 0, _HEAD.size, total)
    version, kind, chain_length = _HEAD.unpack_from(raw, 0)
    if version != TX_VERSION:
        raise DecodeError(f"transaction has unknown version {version}: expected {TX_VERSION}")
    if kind not in _KNOWN_KINDS:
        raise DecodeError(f"transaction has unknown kind {kind}: expected 1..{len(TxKind)}")
    if not 0 < chain_length <= MAX_CHAIN_ID_BYTES:
        raise DecodeError(
            f"transaction has bad chain_id length {chain_length}: expected 1..{MAX_CHAIN_ID_BYTES}"
        )
    offset = _HEAD.size
    if total < offset + chain_length + _ACCOUNT.size:
        raise _truncated("chain_id/sender/nonce/fee/amount", offset, chain_length + 48, total)
    try:
        chain_id = bytes(raw[offset : offset + chain_length]).decode()
    except UnicodeDecodeError:
        raise DecodeError("transaction chain_id is not valid UTF-8") from None
    offset += chain_length
    sender, nonce, fee, amount = _ACCOUNT.unpack_from(raw, offset)
    offset += _ACCOUNT.size
    tx_kind = TxKind(kind)
    recipient = bls_public_key = pop = b""
    validator = 0
    if tx_kind is TxKind.TRANSFER:
        if total < offset + _TRANSFER.size:
            raise _truncated("recipient", offset, _TRANSFER.size, total)
        recipient = bytes(raw[offset : offset + ADDRESS_BYTES])
        offset += ADDRESS_BYTES
    elif tx_kind is TxKind.REGISTER_VALIDATOR:
        if total < offset + _REGISTER.size:
            raise _truncated("bls_public_key/pop", offset, _REGISTER.size, total)
        bls_public_key, pop = _REGISTER.unpack_from(raw, offset)
        offset += _REGISTER.size
    else:
        if total < offset + _VALIDATOR.size:
            raise _truncated("validator", offset, _VALIDATOR.size, total)
        (validator,) = _VALIDATOR.unpack_from(raw, offset)
        offset += _VALIDATOR.size
    if total < offset + _MEMO_LENGTH.size:
        raise _truncated("memo length", offset, _MEMO_LENGTH.size, total)
    (memo_length,) = _MEMO_LENGTH.unpack_from(raw, offset)
    offset += _MEMO_LENGTH.size
    if memo_length > MAX_MEMO_BYTES:
        raise DecodeError(
            f"transaction has bad memo length {memo_length}: at most {MAX_MEMO_BYTES}"
        )
    if total < offset + memo_length + SIGNATURE_BYTES:
        raise _truncated("memo/signature", offset, memo_length + SIGNATURE_BYTES, total)
    memo = bytes(raw[offset : offset + memo_length])
    offset += memo_length
    signature = bytes(raw[offset : offset + SIGNATURE_BYTES])
    offset += SIGNATURE_BYTES
    if offset != total:
        raise DecodeError(
            f"transaction has {total - offset} trailing bytes after the signature "
            f"(decoded {offset} of {total})"
        )
    tx = Transaction(
        kind=tx_kind,
        chain_id=chain_id,
        sender=sender,
        nonce=nonce,
        fee=fee,
        recipient=recipient,
        amount=amount,
        validator=validator,
        bls_public_key=bls_public_key,
        pop=pop,
        memo=memo,
        signature=signature,
    )
    wire = bytes(raw)
    tx.__dict__["_wire_cache"] = wire  # canonical: re-encoding gives the same bytes
    tx.__dict__["_body_cache"] = wire[:-SIGNATURE_BYTES]
    return tx


def verify_transaction_signature(tx: Transaction) -> bool:
    """True when ``tx.signature`` is ``tx.sender``'s Ed25519 signature of ``tx.signing_bytes()``.
    False for unsigned or malformed transactions (never raises)."""
    return ed25519_verify(tx.sender, tx.signing_bytes(), tx.signature)


def sign_transaction(keys: Ed25519KeyPair, unsigned: Transaction) -> Transaction:
    """``unsigned`` signed by ``keys`` (whose public key must be its sender)."""
    if unsigned.sender != keys.public:
        raise TransactionError(
            f"transaction sender {unsigned.sender.hex()[:16]}... is not the signing key "
            f"{keys.public.hex()[:16]}...: build it with sender=keys.public"
        )
    signature = ed25519_sign(keys.secret, unsigned.signing_bytes())
    signed = Transaction(
        kind=unsigned.kind,
        chain_id=unsigned.chain_id,
        sender=unsigned.sender,
        nonce=unsigned.nonce,
        fee=unsigned.fee,
        recipient=unsigned.recipient,
        amount=unsigned.amount,
        validator=unsigned.validator,
        bls_public_key=unsigned.bls_public_key,
        pop=unsigned.pop,
        memo=unsigned.memo,
        signature=signature,
    )
    signed.__dict__["_body_cache"] = unsigned._body
    return signed


def sign_transfer(
    keys: Ed25519KeyPair,
    chain_id: str,
    recipient: bytes,
    amount: int,
    nonce: int,
    fee: int = 0,
    memo: bytes = b"",
) -> Transaction:
    """A signed TRANSFER of ``amount`` from ``keys.public`` to ``recipient``."""
    unsigned = Transaction(
        kind=TxKind.TRANSFER,
        chain_id=chain_id,
        sender=keys.public,
        nonce=nonce,
        fee=fee,
        recipient=recipient,
        amount=amount,
        memo=memo,
    )
    return sign_transaction(keys, unsigned)


def sign_stake_change(
    kind: TxKind,
    keys: Ed25519KeyPair,
    chain_id: str,
    validator: int,
    amount: int,
    nonce: int,
    fee: int = 0,
    memo: bytes = b"",
) -> Transaction:
    """A signed STAKE (``amount`` from the sender's balance to ``validator``'s stake) or UNSTAKE
    (``amount`` of its stake into unbonding, paid back to the sender when the unbonding period
    ends). The sender must be the validator's reward address."""
    if kind not in (TxKind.STAKE, TxKind.UNSTAKE):
        raise TransactionError(f"sign_stake_change signs STAKE or UNSTAKE, not {kind.name}")
    unsigned = Transaction(
        kind=kind,
        chain_id=chain_id,
        sender=keys.public,
        nonce=nonce,
        fee=fee,
        amount=amount,
        validator=validator,
        memo=memo,
    )
    return sign_transaction(keys, unsigned)


#: ``sign_stake(keys, chain_id, validator, amount, nonce, fee=0, memo=b"")``: a signed STAKE.
sign_stake = partial(sign_stake_change, TxKind.STAKE)
#: ``sign_unstake(keys, chain_id, validator, amount, nonce, fee=0, memo=b"")``: a signed UNSTAKE.
sign_unstake = partial(sign_stake_change, TxKind.UNSTAKE)


def sign_register(
    keys: Ed25519KeyPair,
    chain_id: str,
    bls_public_key: bytes,
    pop: bytes,
    stake: int,
    nonce: int,
    fee: int = 0,
    memo: bytes = b"",
) -> Transaction:
    """A signed REGISTER_VALIDATOR: a new (non-authority) validator with ``bls_public_key``,
    its proof of possession, an initial ``stake`` taken from the sender's balance, and the sender
    as reward address. It joins the validator set at the next epoch."""
    unsigned = Transaction(
        kind=TxKind.REGISTER_VALIDATOR,
        chain_id=chain_id,
        sender=keys.public,
        nonce=nonce,
        fee=fee,
        amount=stake,
        bls_public_key=bls_public_key,
        pop=pop,
        memo=memo,
    )
    return sign_transaction(keys, unsigned)
