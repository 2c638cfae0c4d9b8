"""Signed transfer batches: the one piece of signing code shared by the Locust users and the
plain client (``loadgen.client``).

Every transfer moves ``amount`` (1) from a load account to a fixed sink address, with a memo
that pads it to the requested wire size. Ed25519 signatures are deterministic, so re-signing
the same (account, nonce) gives the same bytes and the same id: a batch can be resent or
re-signed after a rewind without ever creating two different transactions with one nonce.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aitbc_node.ledger.tx import (
    ADDRESS_BYTES,
    MAX_MEMO_BYTES,
    SIGNATURE_BYTES,
    Transaction,
    sign_transfer,
)

from loadgen.accounts import LoadAccount
from loadgen.errors import LoadgenConfigError, LoadgenError

#: Where load transfers go (nobody holds its key; it only accumulates the amounts).
SINK_ADDRESS = hashlib.sha256(b"AITBC/loadgen/sink").digest()
TRANSFER_AMOUNT = 1
#: version, kind, chain id length | sender, nonce, fee, amount | recipient | memo length
_FIXED_TRANSFER_BYTES = 3 + (ADDRESS_BYTES + 24) + ADDRESS_BYTES + 2 + SIGNATURE_BYTES
_MEMO_FILL = b"."


def transfer_size(chain_id: str, memo_bytes: int = 0) -> int:
    """Wire size of a signed transfer on ``chain_id`` with a memo of ``memo_bytes``."""
    return _FIXED_TRANSFER_BYTES + len(chain_id.encode()) + memo_bytes


def padding_memo(chain_id: str, tx_size: int, tag: bytes = b"") -> bytes:
    """A memo that makes a transfer on ``chain_id`` exactly ``tx_size`` bytes (0: no padding,
    the smallest transfer). It starts with ``tag`` (cut to fit) and is filled with dots.
    Raises ``LoadgenConfigError`` naming AITBC_TX_SIZE when the size cannot be reached."""
    if tx_size == 0:
        return b""
    smallest = transfer_size(chain_id)
    largest = transfer_size(chain_id, MAX_MEMO_BYTES)
    if not smallest <= tx_size <= largest:
        raise LoadgenConfigError(
            f"AITBC_TX_SIZE={tx_size} cannot be reached: a transfer on chain {chain_id!r} is "
            f"{smallest}..{largest} bytes (memo 0..{MAX_MEMO_BYTES}); use a size in that range, "
            "or 0 for the smallest"
        )
    length = tx_size - smallest
    return tag[:length].ljust(length, _MEMO_FILL)


@dataclass(frozen=True)
class SignedBatch:
    """Encoded signed transactions ready for ``SubmitTransactions``, with their ids and the
    (account index, nonce) each one uses."""

    transactions: tuple[bytes, ...]
    tx_ids: tuple[bytes, ...]
    nonces: tuple[tuple[int, int], ...]

    def __len__(self) -> int:
        return len(self.transactions)

    @property
    def wire_bytes(self) -> int:
        return sum(len(raw) for raw in self.transactions)


@dataclass(frozen=True)
class TransferSigner:
    """Signs load transfers on one chain with one memo."""

    chain_id: str
    memo: bytes = b""
    recipient: bytes = SINK_ADDRESS
    amount: int = TRANSFER_AMOUNT
    fee: int = 0

    def sign_next(self, account: LoadAccount) -> Transaction:
        """The transfer carrying ``account``'s next nonce (which then advances)."""
        tx = sign_transfer(
            account.keys,
            self.chain_id,
            self.recipient,
            self.amount,
            account.next_nonce,
            fee=self.fee,
            memo=self.memo,
        )
        account.next_nonce += 1
        return tx


class BatchSource:
    """Signs batches of ``batch_size`` transfers, round robin over its ``accounts``, each
    account's nonces in order."""

    def __init__(
        self, signer: TransferSigner, accounts: Sequence[LoadAccount], batch_size: int
    ) -> None:
        if not accounts:
            raise LoadgenError("batch source has no accounts: claim at least one account first")
        if batch_size < 1:
            raise LoadgenError(f"batch source batch_size={batch_size}: use 1 or more")
        self.signer = signer
        self.accounts = list(accounts)
        self.batch_size = batch_size
        self._by_index = {account.index: account for account in self.accounts}
        self._cursor = 0

    def next_batch(self, size: int | None = None) -> SignedBatch:
        """The next ``size`` (default ``batch_size``) transfers, signed."""
        count = self.batch_size if size is None else size
        transactions: list[bytes] = []
        ids: list[bytes] = []
        nonces: list[tuple[int, int]] = []
        for _ in range(count):
            account = self.accounts[self._cursor]
            self._cursor = (self._cursor + 1) % len(self.accounts)
            nonce = account.next_nonce
            tx = self.signer.sign_next(account)
            transactions.append(tx.encode())
            ids.append(tx.id)
            nonces.append((account.index, nonce))
        return SignedBatch(tuple(transactions), tuple(ids), tuple(nonces))

    def rewind(self, unsent: Iterable[SignedBatch]) -> None:
        """Move each account's next nonce back to the lowest nonce in ``unsent`` (batches
        signed but not known to be delivered), so the accounts leave no nonce gap behind."""
        lowest: dict[int, int] = {}
        for batch in unsent:
            for index, nonce in batch.nonces:
                if index in self._by_index and nonce < lowest.get(index, nonce + 1):
                    lowest[index] = nonce
        for index, nonce in lowest.items():
            account = self._by_index[index]
            account.next_nonce = min(account.next_nonce, nonce)
