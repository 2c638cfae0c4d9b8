"""Admission of client transactions and their batching (one batch every few ms).

Admission runs the cheap checks here (size, decoding, chain, duplicates, the ledger's stateful
check); signatures are verified by the caller in a worker thread. The pool is bounded: a full
pool refuses the whole call (RESOURCE_EXHAUSTED at the gRPC layer) instead of growing.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass

from aitbc_node.errors import DecodeError
from aitbc_node.ledger.state import LedgerState
from aitbc_node.ledger.tx import MAX_TX_BYTES, Transaction, decode_transaction, tx_id

#: How many committed transaction ids are remembered to answer resubmissions with "duplicate".
RECENT_COMMITTED = 1_000_000


@dataclass(frozen=True)
class Admission:
    """The outcome for one submitted transaction; ``tx`` is set when it passed the cheap checks
    (its signature still has to be verified)."""

    tx_id: bytes
    reason: str | None
    tx: Transaction | None = None
    raw: bytes = b""


class Mempool:
    def __init__(self, max_txs: int) -> None:
        self.max_txs = max_txs
        self._queue: deque[tuple[bytes, bytes, int]] = deque()  # (tx id, raw, arrival ms)
        self._pending: set[bytes] = set()
        self._recent_committed: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def pending_ids(self) -> int:
        """Transactions accepted and not yet committed (queued or in a batch)."""
        return len(self._pending)

    def is_full(self, incoming: int = 0) -> bool:
        return len(self._pending) + incoming > self.max_txs

    def screen(self, raws: Sequence[bytes], ledger: LedgerState) -> list[Admission]:
        out: list[Admission] = []
        seen: set[bytes] = set()
        for raw in raws:
            tid = tx_id(raw)
            if len(raw) > MAX_TX_BYTES:
                out.append(Admission(tid, "too_large"))
                continue
            if tid in seen or tid in self._pending or tid in self._recent_committed:
                out.append(Admission(tid, "duplicate"))
                continue
            try:
                tx = decode_transaction(raw)
            except DecodeError:
                out.append(Admission(tid, "decode_error"))
                continue
            reason = ledger.check_transaction(tx)
            if reason is not None:
                out.append(Admission(tid, reason))
                continue
            seen.add(tid)
            out.append(Admission(tid, None, tx, raw))
        return out

    def add(self, tid: bytes, raw: bytes, arrival_ms: int) -> None:
        self._pending.add(tid)
        self._queue.append((tid, raw, arrival_ms))

    def take(self, limit: int) -> tuple[list[bytes], int]:
        """Up to ``limit`` queued transactions for a batch, and the earliest arrival time."""
        raws: list[bytes] = []
        earliest = 0
        queue = self._queue
        while queue and len(raws) < limit:
            _tid, raw, arrival = queue.popleft()
            if not raws:
                earliest = arrival
            raws.append(raw)
        return raws, earliest

    def committed(self, tx_ids: Sequence[bytes]) -> None:
        recent = self._recent_committed
        for tid in tx_ids:
            self._pending.discard(tid)
            recent[tid] = None
        while len(recent) > RECENT_COMMITTED:
            recent.popitem(last=False)
