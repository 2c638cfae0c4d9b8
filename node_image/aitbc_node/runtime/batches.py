"""Batches in the runtime: what the node holds for them beyond the replica, and the three ways a
peer's batch comes in (gossip, FetchBatches answers, Sync answers), each verified before the
replica sees it (``aitbc_node.batch.verify_batch``, in the verifier thread pool)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable, Mapping
from concurrent.futures import Executor
from typing import Any

import grpc

from aitbc_node.batch import Batch, VerifiedBatch, decode_batch, verify_batch
from aitbc_node.consensus.reasons import Reason
from aitbc_node.errors import DecodeError
from aitbc_node.ops.faults import FaultController
from aitbc_node.replica import BatchAdmission, Replica
from aitbc_node.runtime.peers import PeerLink
from aitbc_node.runtime.rejections import Rejections

log = logging.getLogger(__name__)

#: Peer batches queued for verification per peer before that peer's stream is held back.
BATCH_QUEUE = 64
#: Digests of batches that failed verification, remembered (never verified twice).
INVALID_MEMORY = 4096
#: Forged batches a byzantine node keeps serving.
FORGED_MEMORY = 256


def now_ms() -> int:
    return int(time.time() * 1000)


class BatchPool:
    """The encodings and arrival facts of the uncommitted batches the replica holds (served to
    peers, stored on commit), and on a byzantine node the batches it forged (served, never
    executed)."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self._encodings: dict[bytes, bytes] = {}
        self._times: dict[bytes, tuple[int, int]] = {}
        self._forged: OrderedDict[bytes, bytes] = OrderedDict()

    def add(self, verified: VerifiedBatch, encoding: bytes | None = None) -> BatchAdmission:
        batch = verified.batch
        admission = self.replica.add_batch(verified)
        if admission is BatchAdmission.ADDED:
            self._encodings[batch.digest] = encoding or batch.encode()
            self._times[batch.digest] = (batch.created_ms or now_ms(), len(batch.transactions))
        return admission

    def forge(self, batch: Batch) -> bytes:
        """Keep a forged batch to serve; returns its encoding."""
        encoding = batch.encode()
        self._forged[batch.digest] = encoding
        while len(self._forged) > FORGED_MEMORY:
            self._forged.popitem(last=False)
        return encoding

    def encoding(self, digest: bytes) -> bytes | None:
        """What this node serves for ``digest`` (a held batch, or one it forged)."""
        return self._encodings.get(digest) or self._forged.get(digest)

    def forged(self) -> list[bytes]:
        return list(self._forged.values())

    def take_committed(self, digest: bytes, default_ms: int) -> tuple[bytes | None, int, int]:
        """(encoding, created ms, transactions this node holds) of a committed batch, forgotten
        here (the store keeps it from now on)."""
        created, count = self._times.pop(digest, (default_ms, 0))
        return self._encodings.pop(digest, None), created, count


class BatchIntake:
    """Verifies peers' batches off the event loop and adds them to the pool; calls
    ``on_added`` after new batches arrived (the core retries what waited for them)."""

    def __init__(
        self,
        *,
        index: int,
        pool: BatchPool,
        executor: Executor,
        peers: Mapping[int, PeerLink],
        faults: FaultController,
        rejections: Rejections,
        on_added: Callable[[], None],
        spawn: Callable[[Coroutine[Any, Any, object]], None],
    ) -> None:
        self.index = index
        self.pool = pool
        self.executor = executor
        self.peers = peers
        self.faults = faults
        self.rejections = rejections
        self.on_added = on_added
        self.spawn = spawn
        #: Digests on a gossip worker's queue (verified in stream order, behind the others).
        self._gossiped: set[bytes] = set()
        #: Digests being verified from a FetchBatches or Sync answer.
        self._verifying: set[bytes] = set()
        self._fetching: set[bytes] = set()
        self._invalid: OrderedDict[bytes, None] = OrderedDict()
        self._queues: dict[int, asyncio.Queue[tuple[Batch, bytes]]] = {}

    def counts(self) -> dict[str, int]:
        """Batches on their way in, by path, and those refused for good (``/status``)."""
        return {
            "gossip_queued": len(self._gossiped),
            "verifying_answers": len(self._verifying),
            "fetching": len(self._fetching),
            "invalid": len(self._invalid),
        }

    def busy_with(self, digest: bytes) -> bool:
        """A fetch or an answer already brings ``digest``. A digest only queued on a gossip
        worker does not count: the core asks for a batch when a vote or a commit waits for it,
        and behind a backlog of gossip (a node back from a crash gets every peer's queued
        batches at once) it could wait for many seconds; the copy that loses the race is
        refused as known."""
        return digest in self._verifying or digest in self._fetching

    async def verify(self, sender: int, batch: Batch) -> VerifiedBatch | None:
        """The batch verified, or None (counted as ``invalid_batch``, never checked again)."""
        digest = batch.digest
        if digest in self._invalid:
            return None
        loop = asyncio.get_running_loop()
        verified = await loop.run_in_executor(self.executor, verify_batch, batch)
        if verified is None:
            self._invalid[digest] = None
            while len(self._invalid) > INVALID_MEMORY:
                self._invalid.popitem(last=False)
            self.rejections.reject(sender, Reason.INVALID_BATCH)
        return verified

    def _admit(self, sender: int, verified: VerifiedBatch, encoding: bytes | None) -> bool:
        admission = self.pool.add(verified, encoding)
        if admission is BatchAdmission.AUTHOR_FULL:
            self.rejections.reject(sender, Reason.BATCH_FLOOD)
        return admission is BatchAdmission.ADDED

    # ------------------------------------------------------------------ gossip

    async def gossip(self, sender: int, payload: bytes) -> None:
        """Hand a peer's batch to that peer's verification worker, so that the proposals and
        votes behind it on the stream are not held up by its signature checks. The worker keeps
        the author's order (its transactions' nonces depend on it); a full queue holds the
        stream back."""
        try:
            batch = decode_batch(payload)
        except DecodeError:
            self.rejections.reject(sender, Reason.INVALID_BATCH)
            return
        if batch.author != sender:
            self.rejections.reject(sender, Reason.BATCH_WRONG_AUTHOR)
            return
        digest = batch.digest
        if self.busy_with(digest) or digest in self._gossiped:
            return  # on its way
        if not self.pool.replica.missing_batches([batch.ref]):
            return  # already known or committed
        queue = self._queues.get(sender)
        if queue is None:
            queue = asyncio.Queue(BATCH_QUEUE)
            self._queues[sender] = queue
            self.spawn(self._worker(sender, queue))
        self._gossiped.add(digest)
        await queue.put((batch, payload))

    async def _worker(self, sender: int, queue: asyncio.Queue[tuple[Batch, bytes]]) -> None:
        while True:
            batch, payload = await queue.get()
            try:
                verified = await self.verify(sender, batch)
            except Exception:  # a worker must survive anything one batch does
                log.exception("validator %d: batch from %d failed", self.index, sender)
                verified = None
            finally:
                self._gossiped.discard(batch.digest)
            if verified is not None and self._admit(sender, verified, payload):
                self.on_added()

    # ------------------------------------------------------------------ answers

    async def admit_answer(
        self, peer: int, raws: Iterable[bytes], wanted: set[bytes] | frozenset[bytes]
    ) -> bool:
        """Verify (in parallel, on the verifier threads) and add the batches of a peer's answer
        whose digests are ``wanted`` and not already held or being verified by another path.
        True when any was added."""
        todo: list[tuple[Batch, bytes]] = []
        for raw in raws:
            try:
                batch = decode_batch(raw)
            except DecodeError:
                self.rejections.reject(peer, Reason.INVALID_BATCH)
                continue
            digest = batch.digest
            if digest not in wanted or digest in self._verifying:
                continue
            if not self.pool.replica.missing_batches([batch.ref]):
                continue
            self._verifying.add(digest)
            todo.append((batch, raw))
        try:
            verdicts = await asyncio.gather(*(self.verify(peer, batch) for batch, _ in todo))
        finally:
            self._verifying.difference_update(batch.digest for batch, _ in todo)
        added = False
        for (_batch, raw), verified in zip(todo, verdicts, strict=True):
            if verified is not None and self._admit(peer, verified, raw):
                added = True
        return added

    async def fetch(self, peer: int, digests: list[bytes]) -> None:
        wanted = [d for d in digests if not self.busy_with(d) and d not in self._invalid]
        link = self.peers.get(peer)
        if not wanted or link is None or peer in self.faults.partitioned_peers:
            return
        self._fetching.update(wanted)
        try:
            raws = await link.fetch_batches(self.index, wanted)
        except grpc.aio.AioRpcError as exc:
            log.debug("validator %d: fetch from %d failed: %s", self.index, peer, exc.code())
            return
        finally:
            self._fetching.difference_update(wanted)
        if await self.admit_answer(peer, raws, frozenset(wanted)):
            self.on_added()
