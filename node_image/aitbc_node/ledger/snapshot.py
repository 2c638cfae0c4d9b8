"""The ledger's byte encodings: the snapshot a node stores at checkpoints (with a sha256
trailer) and the record encodings the state root hashes."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aitbc_node.errors import DecodeError
from aitbc_node.ledger.records import Account, Unbonding, ValidatorRecord


@dataclass(frozen=True)
class LedgerContents:
    """Everything a ledger state holds, as a snapshot carries it."""

    chain_id: str
    accounts: dict[bytes, Account]
    validators: list[ValidatorRecord]
    registered: list[int]
    slash_events: list[tuple[int, int]]
    unbonding: list[Unbonding]
    epoch: int
    minted_total: int
    burned_total: int
    genesis_supply: int


SNAPSHOT_MAGIC = b"AITBCLS2"
_COUNT = struct.Struct(">I")
_SLASH_EVENT = struct.Struct(">IQ")
_UNBONDING = struct.Struct(">I32sQQ")  # validator, owner, amount, release epoch
_ACCOUNT_BYTES = 32 + 16 + 8
_VALIDATOR_BYTES = 48 + 16 + 1 + 32
_AUTHORITY, _ACTIVE, _SLASHED = 1, 2, 4


def encode_validator(record: ValidatorRecord) -> bytes:
    flags = (
        (_AUTHORITY if record.authority else 0)
        | (_ACTIVE if record.active else 0)
        | (_SLASHED if record.slashed else 0)
    )
    return (
        record.bls_public_key
        + record.stake.to_bytes(16, "big")
        + bytes([flags])
        + record.reward_address
    )


def encode_indices(indices: Sequence[int]) -> bytes:
    return _COUNT.pack(len(indices)) + b"".join(_COUNT.pack(index) for index in indices)


def encode_slash_events(events: Iterable[tuple[int, int]]) -> bytes:
    ordered = sorted(events)
    return _COUNT.pack(len(ordered)) + b"".join(_SLASH_EVENT.pack(*event) for event in ordered)


def encode_unbonding(entries: Sequence[Unbonding]) -> bytes:
    return _COUNT.pack(len(entries)) + b"".join(
        _UNBONDING.pack(e.validator, e.owner, e.amount, e.release_epoch) for e in entries
    )


def encode_snapshot(contents: LedgerContents) -> bytes:
    """The snapshot bytes of ``contents`` (``decode_snapshot`` reads them back)."""
    chain = contents.chain_id.encode()
    parts = [
        SNAPSHOT_MAGIC,
        bytes([len(chain)]),
        chain,
        contents.minted_total.to_bytes(16, "big"),
        contents.burned_total.to_bytes(16, "big"),
        contents.genesis_supply.to_bytes(16, "big"),
        _COUNT.pack(len(contents.accounts)),
    ]
    for address in sorted(contents.accounts):
        account = contents.accounts[address]
        parts.append(
            address + account.balance.to_bytes(16, "big") + account.nonce.to_bytes(8, "big")
        )
    parts.append(_COUNT.pack(len(contents.validators)))
    parts.extend(encode_validator(record) for record in contents.validators)
    parts.append(encode_indices(contents.registered))
    parts.append(encode_slash_events(contents.slash_events))
    parts.append(encode_unbonding(contents.unbonding))
    parts.append(contents.epoch.to_bytes(8, "big"))
    body = b"".join(parts)
    return body + hashlib.sha256(body).digest()


def decode_snapshot(raw: bytes, chain_id: str) -> LedgerContents:
    """The contents of snapshot ``raw``; raises ``DecodeError`` when the bytes are corrupt or
    belong to another chain than ``chain_id``."""
    return _SnapshotReader(raw, chain_id).read()


class _SnapshotReader:
    def __init__(self, raw: bytes, chain_id: str) -> None:
        self.raw = bytes(raw)
        self.chain_id = chain_id
        self.offset = 0

    def _fail(self, problem: str) -> DecodeError:
        return DecodeError(
            f"ledger snapshot ({len(self.raw)} bytes) {problem}: the stored state is corrupt; "
            "resync the node from peers"
        )

    def _take(self, size: int, what: str) -> bytes:
        end = self.offset + size
        if end > len(self.raw) - 32:
            raise self._fail(f"is truncated in {what} at offset {self.offset}")
        chunk = self.raw[self.offset : end]
        self.offset = end
        return chunk

    def _int(self, size: int, what: str) -> int:
        return int.from_bytes(self._take(size, what), "big")

    def _indices(self, what: str, limit: int) -> list[int]:
        count = self._int(4, what)
        indices = [self._int(4, what) for _ in range(count)]
        if any(index >= limit for index in indices):
            raise self._fail(f"has a {what} index beyond the {limit} validators")
        return indices

    def read(self) -> LedgerContents:
        raw = self.raw
        if len(raw) < len(SNAPSHOT_MAGIC) + 32 or not raw.startswith(SNAPSHOT_MAGIC):
            raise self._fail(f"does not start with {SNAPSHOT_MAGIC!r}")
        if hashlib.sha256(raw[:-32]).digest() != raw[-32:]:
            raise self._fail("fails its sha256 checksum")
        self.offset = len(SNAPSHOT_MAGIC)
        chain_length = self._int(1, "chain id length")
        chain_id = self._take(chain_length, "chain id").decode(errors="replace")
        if chain_id != self.chain_id:
            raise DecodeError(
                f"ledger snapshot belongs to chain {chain_id!r}, not {self.chain_id!r}: "
                "the data directory is from another testnet; wipe it or use its genesis"
            )
        minted = self._int(16, "minted total")
        burned = self._int(16, "burned total")
        genesis_supply = self._int(16, "genesis supply")
        accounts: dict[bytes, Account] = {}
        for _ in range(self._int(4, "account count")):
            entry = self._take(_ACCOUNT_BYTES, "accounts")
            accounts[entry[:32]] = Account(
                balance=int.from_bytes(entry[32:48], "big"),
                nonce=int.from_bytes(entry[48:56], "big"),
            )
        validators: list[ValidatorRecord] = []
        for index in range(self._int(4, "validator count")):
            entry = self._take(_VALIDATOR_BYTES, "validators")
            flags = entry[64]
            validators.append(
                ValidatorRecord(
                    index=index,
                    bls_public_key=entry[:48],
                    stake=int.from_bytes(entry[48:64], "big"),
                    authority=bool(flags & _AUTHORITY),
                    reward_address=entry[65:97],
                    active=bool(flags & _ACTIVE),
                    slashed=bool(flags & _SLASHED),
                )
            )
        registered = self._indices("registration", len(validators))
        slash_events = []
        for _ in range(self._int(4, "slashing event count")):
            slash_events.append(_SLASH_EVENT.unpack(self._take(_SLASH_EVENT.size, "slashing")))
        unbonding = [
            Unbonding(*_UNBONDING.unpack(self._take(_UNBONDING.size, "unbonding")))
            for _ in range(self._int(4, "unbonding count"))
        ]
        epoch = self._int(8, "epoch")
        if self.offset != len(raw) - 32:
            raise self._fail(f"has {len(raw) - 32 - self.offset} unexpected trailing bytes")
        return LedgerContents(
            chain_id=chain_id,
            accounts=accounts,
            validators=validators,
            registered=registered,
            slash_events=[(index, epoch_) for index, epoch_ in slash_events],
            unbonding=unbonding,
            epoch=epoch,
            minted_total=minted,
            burned_total=burned,
            genesis_supply=genesis_supply,
        )
