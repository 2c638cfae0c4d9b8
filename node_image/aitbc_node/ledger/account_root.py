"""An incrementally maintained hash over all accounts, in address order.

Accounts are grouped by the first two bytes of their address into leaves (65,536 possible),
and leaves by the first byte into 256 pages:

    leaf digest = sha256(concat of address | balance (16 bytes) | nonce (8 bytes), by address)
    page digest = sha256(concat of second address byte | leaf digest, for non-empty leaves)
    accounts root = sha256(concat of the 256 page digests)

So the root is a canonical function of the sorted account list, and a block only recomputes
the leaves it touched and their pages: the cost follows the accounts a block changes (each
block pays up to 1,000 reward addresses), not the number of accounts.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping
from typing import Protocol


class _BalanceAndNonce(Protocol):
    balance: int
    nonce: int


class AccountRoot:
    def __init__(self, addresses: Iterable[bytes] = ()) -> None:
        self._leaf_members: dict[int, list[bytes]] = {}
        self._leaf_entries: dict[int, bytes] = {}  # second address byte + leaf digest
        self._page_leaves: list[list[int]] = [[] for _ in range(256)]
        self._page_digests: list[bytes] = [hashlib.sha256(b"").digest()] * 256
        self._dirty_leaves: set[int] = set()
        for address in addresses:
            self.add(address)

    def add(self, address: bytes) -> None:
        """Register a new account (it is also marked changed)."""
        leaf = (address[0] << 8) | address[1]
        members = self._leaf_members.get(leaf)
        if members is None:
            members = self._leaf_members[leaf] = []
            bisect.insort(self._page_leaves[address[0]], leaf)
        members.append(address)
        self._dirty_leaves.add(leaf)

    def touch(self, address: bytes) -> None:
        """Mark an existing account as changed."""
        self._dirty_leaves.add((address[0] << 8) | address[1])

    def root(self, accounts: Mapping[bytes, _BalanceAndNonce]) -> bytes:
        dirty_pages: set[int] = set()
        sha256 = hashlib.sha256
        for leaf in self._dirty_leaves:
            members = self._leaf_members[leaf]
            members.sort()
            self._leaf_entries[leaf] = (
                bytes((leaf & 0xFF,))
                + sha256(
                    b"".join(
                        address
                        + accounts[address].balance.to_bytes(16, "big")
                        + accounts[address].nonce.to_bytes(8, "big")
                        for address in members
                    )
                ).digest()
            )
            dirty_pages.add(leaf >> 8)
        self._dirty_leaves.clear()
        entry_of = self._leaf_entries.__getitem__
        for page in dirty_pages:
            self._page_digests[page] = sha256(
                b"".join(map(entry_of, self._page_leaves[page]))
            ).digest()
        return sha256(b"".join(self._page_digests)).digest()
