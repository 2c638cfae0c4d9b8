"""The ledger's records: accounts, validators, unbonding stake, and what a block did."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Account:
    """An account's balance and its next expected nonce."""

    balance: int
    nonce: int


@dataclass(frozen=True)
class ValidatorRecord:
    """A registered validator. ``active``: member of the epoch's set that the record list
    describes; ``slashed``: punished for equivocation (permanent, out from the next epoch)."""

    index: int
    bls_public_key: bytes
    stake: int
    authority: bool
    reward_address: bytes
    active: bool
    slashed: bool


@dataclass(frozen=True)
class Unbonding:
    """Stake leaving ``validator``: paid to ``owner`` when epoch ``release_epoch`` starts,
    slashable until then."""

    validator: int
    owner: bytes
    amount: int
    release_epoch: int


@dataclass(frozen=True)
class BlockReceipt:
    """What ``apply_block`` did.

    ``rewards``: (validator index, amount credited to its reward address), by index, the
    proposer's entry including fees and rounding remainders; ``slashed``: one validator index
    per slashing event applied (in evidence order).
    """

    applied: tuple[bytes, ...]
    skipped: tuple[tuple[bytes, str], ...]
    rewards: tuple[tuple[int, int], ...]
    slashed: tuple[int, ...]
    fees: int
    minted: int
    burned: int
