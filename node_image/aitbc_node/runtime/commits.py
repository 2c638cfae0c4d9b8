"""What happens to a committed block in the runtime: stored durably with its batches (and a
ledger snapshot at checkpoints and epoch ends), counted in the metrics, streamed to
``StreamCommits`` subscribers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from aitbc_node.consensus.reasons import Reason
from aitbc_node.consensus.types import EpochState
from aitbc_node.ops.metrics import NodeMetrics
from aitbc_node.replica import CommitRecord, Replica
from aitbc_node.runtime.batches import BatchPool
from aitbc_node.runtime.rejections import Rejections
from aitbc_node.storage import NodeStore

log = logging.getLogger(__name__)

#: Commits a subscriber may lag behind before its stream is closed.
SUBSCRIBER_QUEUE = 4096


@dataclass(frozen=True)
class CommitNotice:
    height: int
    block_hash: bytes
    epoch: int
    round: int
    tx_ids: tuple[bytes, ...]
    commit_time: float
    proposed_time: float


class CommitSink:
    def __init__(
        self,
        *,
        index: int,
        store: NodeStore,
        replica: Replica,
        pool: BatchPool,
        metrics: NodeMetrics,
        rejections: Rejections,
    ) -> None:
        self.index = index
        self.store = store
        self.replica = replica
        self.pool = pool
        self.metrics = metrics
        self.rejections = rejections
        self.subscribers: set[asyncio.Queue[CommitNotice | None]] = set()
        self._snapshot_due = False

    def subscribe(self) -> asyncio.Queue[CommitNotice | None]:
        queue: asyncio.Queue[CommitNotice | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[CommitNotice | None]) -> None:
        self.subscribers.discard(queue)

    def close(self) -> None:
        """End every subscriber's stream."""
        for queue in list(self.subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    def committed(self, record: CommitRecord, epoch: EpochState, *, last: bool) -> None:
        """Store one committed block (durably, with its batches), count it and stream it.

        The ledger snapshot is taken only on the last commit of a core call (the replica has
        executed every commit of the call by then), at checkpoints and epoch ends."""
        commit_ms = int(time.time() * 1000)
        commit_s = commit_ms / 1000
        block = record.block
        if block.height % epoch.params.checkpoint_interval == 0 or block.height == (
            epoch.start_height - 1
        ):
            self._snapshot_due = True
        snapshot = None
        if last and self._snapshot_due:
            snapshot = self.replica.snapshot()
            self._snapshot_due = False
        stored_batches: list[tuple[bytes, bytes]] = []
        samples: list[float] = []
        for ref in block.batches:
            # The count of transactions we hold, never the block's claim (ref.tx_count comes
            # from the proposer): one finality sample per committed transaction.
            data, created, count = self.pool.take_committed(ref.digest, block.timestamp_ms)
            if data is None:
                log.error(
                    "validator %d: batch %s of block %d was not kept",
                    self.index,
                    ref.digest.hex()[:16],
                    block.height,
                )
            else:
                stored_batches.append((ref.digest, data))
            samples.extend([max(0.0, commit_s - created / 1000)] * count)
        self.store.save_commit(
            height=block.height,
            block_id=block.id,
            block=block.encode(),
            qc=record.certifying_qc.encode(),
            state_root=record.state_root,
            committed_ms=commit_ms,
            tx_count=len(record.transactions),
            batches=stored_batches,
            snapshot=snapshot,
        )
        self.metrics.observe_commit(
            block.height,
            block.round,
            block.epoch,
            len(record.transactions),
            samples,
            commit_s - block.timestamp_ms / 1000,
        )
        self._count_receipt(record)
        notice = CommitNotice(
            block.height,
            block.id,
            block.epoch,
            block.round,
            record.tx_ids,
            commit_s,
            block.timestamp_ms / 1000,
        )
        for queue in list(self.subscribers):
            try:
                queue.put_nowait(notice)
            except asyncio.QueueFull:
                self.subscribers.discard(queue)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)

    def _count_receipt(self, record: CommitRecord) -> None:
        receipt = record.receipt
        if receipt.slashed:
            self.metrics.slashing_events_total.inc(len(receipt.slashed))
        if not receipt.skipped:
            return
        for author, refused in record.refused_registrations().items():
            self.rejections.reject(author, Reason.REGISTRATION_REFUSED, refused)
        log.warning(
            "validator %d: block %d skipped %d transactions at execution",
            self.index,
            record.block.height,
            len(receipt.skipped),
        )
