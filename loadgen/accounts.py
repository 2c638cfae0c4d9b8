"""Test accounts of the load generator and how they are split so nonces never collide.

The genesis funds ``testnet_account_keypair(genesis.key_seed, i)`` for every ``i`` in
``range(len(genesis.accounts))``. The last one is the latency probe's own account; the load uses
``count`` accounts from ``first`` on (never the probe's). Workers split them by stride
(``split_accounts``), and inside a process an ``AccountPool`` hands each user a disjoint subset
that it gives back, with its next nonces, when it stops.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from aitbc_node.crypto import Ed25519KeyPair, testnet_account_keypair
from aitbc_node.genesis import Genesis

from loadgen.errors import AccountError


class LoadAccount:
    """A test account and the nonce its next transaction will carry (the one mutable record
    of the load generator: only its current owner advances it). ``synced``: ``next_nonce``
    was read from a validator (``GetAccount``) or continues from nonces this process sent."""

    __slots__ = ("index", "keys", "next_nonce", "synced")

    def __init__(
        self, index: int, keys: Ed25519KeyPair, next_nonce: int = 0, synced: bool = False
    ) -> None:
        self.index = index
        self.keys = keys
        self.next_nonce = next_nonce
        self.synced = synced

    def __repr__(self) -> str:
        return f"LoadAccount(index={self.index}, next_nonce={self.next_nonce})"


def probe_account_index(genesis: Genesis) -> int:
    """The latency probe's account: the last of the genesis accounts."""
    if not genesis.accounts:
        raise AccountError(
            f"AITBC_GENESIS: genesis {genesis.chain_id!r} has no accounts: generate it with "
            "test accounts (at least 2: load and probe)"
        )
    return len(genesis.accounts) - 1


def load_account_indices(genesis: Genesis, first: int, count: int | None) -> range:
    """Genesis account indices ``first .. first+count-1`` for the load (``count`` None: all up
    to the probe's account, which is never included)."""
    available = len(genesis.accounts) - 1  # the last one is the probe's
    if available < 1:
        raise AccountError(
            f"AITBC_GENESIS: genesis {genesis.chain_id!r} has {len(genesis.accounts)} accounts: "
            "the load needs at least 2 (load accounts plus the probe's, which is the last)"
        )
    if not 0 <= first < available:
        raise AccountError(
            f"AITBC_FIRST_ACCOUNT={first} is out of range: the genesis has load accounts "
            f"0..{available - 1} (account {available} is the probe's)"
        )
    if count is None:
        count = available - first
    if not 1 <= count <= available - first:
        raise AccountError(
            f"AITBC_ACCOUNTS={count} does not fit: the genesis has {available - first} load "
            f"accounts from AITBC_FIRST_ACCOUNT={first} on (its last account, {available}, is "
            "the probe's): lower it or generate a genesis with more accounts"
        )
    return range(first, first + count)


def split_accounts(indices: Sequence[int], part: int, parts: int) -> list[int]:
    """Part ``part`` of ``parts`` of ``indices``, by stride: disjoint parts that cover all
    ``indices`` and differ in size by at most one."""
    if parts < 1 or not 0 <= part < parts:
        raise AccountError(f"account split part {part} of {parts}: use 0 <= part < parts")
    return list(indices[part::parts])


def account_keys(genesis: Genesis, index: int) -> Ed25519KeyPair:
    """Genesis account ``index``'s key pair, derived from ``genesis.key_seed`` and checked
    against the address in the genesis."""
    if genesis.key_seed is None:
        raise AccountError(
            f"AITBC_GENESIS: genesis {genesis.chain_id!r} has no key_seed, so the test accounts' "
            "keys cannot be derived: use a testnet genesis (make_testnet_genesis)"
        )
    if not 0 <= index < len(genesis.accounts):
        raise AccountError(
            f"genesis {genesis.chain_id!r} has no account {index}: it has "
            f"{len(genesis.accounts)} accounts"
        )
    keys = testnet_account_keypair(genesis.key_seed, index)
    if keys.public != genesis.accounts[index].address_bytes:
        raise AccountError(
            f"AITBC_GENESIS: account {index} of genesis {genesis.chain_id!r} has address "
            f"{genesis.accounts[index].address[:16]}..., not the key derived from its key_seed "
            "(testnet_account_keypair(key_seed, index)): regenerate the genesis"
        )
    return keys


def load_accounts(genesis: Genesis, indices: Iterable[int]) -> list[LoadAccount]:
    """``LoadAccount``s (next nonce 0: fresh accounts) for genesis accounts ``indices``."""
    return [LoadAccount(index, account_keys(genesis, index)) for index in indices]


class AccountPool:
    """A process's load accounts, handed to users in disjoint subsets.

    ``claim(expected_users)`` gives the caller an equal share of what is free among the users
    still expected to claim; ``release`` takes a subset back (with its nonces) for a later user.
    """

    def __init__(self, accounts: Iterable[LoadAccount]) -> None:
        self._free: list[LoadAccount] = sorted(accounts, key=lambda account: account.index)
        self._holders = 0

    @property
    def free_count(self) -> int:
        return len(self._free)

    @property
    def holders(self) -> int:
        return self._holders

    def claim(self, expected_users: int) -> list[LoadAccount]:
        """A disjoint subset for one more user: ``ceil(free / users still to claim)`` accounts
        (empty when none are free)."""
        remaining_users = max(1, expected_users - self._holders)
        share = math.ceil(len(self._free) / remaining_users)
        taken, self._free = self._free[:share], self._free[share:]
        if taken:
            self._holders += 1
        return taken

    def release(self, accounts: Iterable[LoadAccount]) -> None:
        """Give a claimed subset back; its accounts keep their ``next_nonce``."""
        returned = list(accounts)
        if not returned:
            return
        self._holders = max(0, self._holders - 1)
        self._free = sorted([*self._free, *returned], key=lambda account: account.index)
