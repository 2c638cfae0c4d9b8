"""Transaction batches: their encoding, and the one check that admits a batch from anywhere.

A batch reaches a node by gossip, a FetchBatches answer or a Sync answer (all peer replies,
all hostile until checked) or from its own mempool or store. Only a :class:`VerifiedBatch` can
enter the replica, and only :func:`verify_batch` (every transaction decodes and carries a valid
Ed25519 signature; synthetic load only where allowed) or :meth:`VerifiedBatch.local` (this
node's own transactions, verified when clients submitted them, or its own store) make one, so
the ledger never executes a transaction nobody verified.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

from aitbc_node.consensus.types import BatchRef
from aitbc_node.consensus.wire import Reader, Writer, read_whole
from aitbc_node.crypto import Domain
from aitbc_node.errors import DecodeError
from aitbc_node.ledger.tx import MAX_TX_BYTES, decode_transaction, verify_transaction_signature

#: Largest batch accepted from a peer (transactions).
MAX_BATCH_TXS = 4096


@dataclass(frozen=True)
class Batch:
    """Transactions disseminated by ``author`` ahead of the proposals that reference them.

    The simulator's batches carry no transactions, only ``synthetic_count`` (modelled load)."""

    author: int
    sequence: int
    transactions: tuple[bytes, ...]
    synthetic_count: int = 0
    created_ms: int = 0

    def encode(self) -> bytes:
        w = Writer().u32(self.author).u64(self.sequence).u32(self.synthetic_count)
        w.u64(self.created_ms)
        w.u32(len(self.transactions))
        for raw in self.transactions:
            w.raw(raw)
        return w.getvalue()

    @cached_property
    def digest(self) -> bytes:
        return hashlib.sha256(Domain.BATCH + b"\x00" + self.encode()).digest()

    @property
    def tx_count(self) -> int:
        return len(self.transactions) + self.synthetic_count

    @property
    def ref(self) -> BatchRef:
        return BatchRef(self.digest, self.tx_count, self.author)


def decode_batch(data: bytes) -> Batch:
    def parse(r: Reader) -> Batch:
        author = r.u32("batch.author")
        sequence = r.u64("batch.sequence")
        synthetic = r.u32("batch.synthetic_count")
        created = r.u64("batch.created_ms")
        n = r.u32("batch.transactions")
        if n > MAX_BATCH_TXS:
            raise DecodeError(f"Batch: {n} transactions, at most {MAX_BATCH_TXS}")
        txs = tuple(r.raw("batch.tx", limit=MAX_TX_BYTES) for _ in range(n))
        return Batch(author, sequence, txs, synthetic, created)

    return read_whole("Batch", data, parse)


@dataclass(frozen=True)
class VerifiedBatch:
    """A batch whose every transaction was verified (see the module docstring)."""

    batch: Batch

    @classmethod
    def local(cls, batch: Batch) -> VerifiedBatch:
        """A batch of this node's own: built from its mempool (each transaction verified on
        submission) or read back from its own store (verified before it was stored)."""
        return cls(batch)

    @property
    def digest(self) -> bytes:
        return self.batch.digest


def verify_batch(batch: Batch, *, allow_synthetic: bool = False) -> VerifiedBatch | None:
    """The batch, verified: every transaction decodes and is signed by its sender. A peer's
    batch claiming synthetic load is refused (only the simulator models load: a real peer
    claiming millions of synthetic transactions would inflate every node's commit accounting).
    None when anything fails."""
    if batch.synthetic_count and not allow_synthetic:
        return None
    try:
        valid = all(
            verify_transaction_signature(decode_transaction(raw)) for raw in batch.transactions
        )
    except DecodeError:
        return None
    return VerifiedBatch(batch) if valid else None
