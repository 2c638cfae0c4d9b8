"""The validator process: an asyncio + grpc.aio driver of the pure consensus core.

It owns the durable store, the replica (ledger + batches), the mempool and batcher, one stream per
peer, the public and peer gRPC services, the ops HTTP port and the fault controller. The core is
only ever called from the event loop thread; signature checks run in a thread pool first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from aitbc_node.chain import first_epoch, genesis_block
from aitbc_node.config import ResolvedNodeConfig
from aitbc_node.consensus import codec
from aitbc_node.consensus.actions import (
    Action,
    Broadcast,
    Committed,
    EpochStarted,
    EvidenceFound,
    FetchBatches,
    PersistSafety,
    Rejected,
    RequestSync,
    RoundTimedOut,
    ScheduleTick,
    Send,
)
from aitbc_node.consensus.core import ConsensusCore
from aitbc_node.consensus.types import Block, EpochState, Message, QuorumCert, SafetyState
from aitbc_node.crypto import BlsScheme
from aitbc_node.errors import DecodeError, StorageError
from aitbc_node.ledger.state import LedgerState
from aitbc_node.ledger.tx import Transaction, decode_transaction, verify_transaction_signature
from aitbc_node.ops.faults import FaultController
from aitbc_node.ops.http import OpsServer, start_ops_server
from aitbc_node.ops.metrics import NodeMetrics
from aitbc_node.proto.aitbc.v1 import node_pb2, node_pb2_grpc
from aitbc_node.replica import Batch, CommitRecord, Replica, decode_batch
from aitbc_node.runtime.mempool import Mempool
from aitbc_node.runtime.peers import CHANNEL_OPTIONS, PeerLink
from aitbc_node.storage import NodeStore

log = logging.getLogger(__name__)

#: Most blocks one sync answer carries.
SYNC_MAX_BLOCKS = 128
#: Peer batches queued for verification per peer before that peer's stream is held back.
BATCH_QUEUE = 64
#: Commits a subscriber may lag behind before its stream is closed.
SUBSCRIBER_QUEUE = 4096
SERVER_OPTIONS = [
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class CommitNotice:
    height: int
    block_hash: bytes
    epoch: int
    round: int
    tx_ids: tuple[bytes, ...]
    commit_time: float
    proposed_time: float


class ValidatorNode:
    def __init__(self, config: ResolvedNodeConfig) -> None:
        self.config = config
        self.index = config.index
        self.genesis = config.genesis
        self.chain_id = config.genesis.chain_id
        self.scheme = BlsScheme()
        self.registry = CollectorRegistry()
        self.metrics = NodeMetrics(self.registry, config.index)
        self.faults = FaultController(
            peer_ids=list(config.peers), metrics=self.metrics, on_change=self._faults_changed
        )
        self.rng = random.Random(config.index)
        self.mempool = Mempool(config.mempool.max_txs)
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"verify-{config.index}")
        #: Consensus messages (BLS) get their own thread: a vote never waits behind batches.
        self.consensus_pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"consensus-{config.index}"
        )
        self.store = NodeStore(config.data_dir / "node.db")
        self.peers: dict[int, PeerLink] = {}
        self.subscribers: set[asyncio.Queue[CommitNotice | None]] = set()
        self.server: grpc.aio.Server | None = None
        self.ops: OpsServer | None = None
        self.health = health.aio.HealthServicer() if hasattr(health, "aio") else None
        self._tick: asyncio.TimerHandle | None = None
        self._tick_at: int | None = None
        self._batch_seq = 0
        self._sync_target = 0
        self._sync_inflight: set[int] = set()
        self._fetch_inflight: set[bytes] = set()
        #: Peer batches waiting for (or in) signature verification, by digest, and the
        #: per-peer queues of their verification workers.
        self._verifying: set[bytes] = set()
        self._batch_queues: dict[int, asyncio.Queue[tuple[Batch, bytes]]] = {}
        self._tasks: set[asyncio.Task[object]] = set()
        self._stopping = asyncio.Event()
        #: Encodings and (created ms, tx count) of batches not yet committed.
        self._batch_encodings: dict[bytes, bytes] = {}
        self._batch_times: dict[bytes, tuple[int, int]] = {}
        self._snapshot_due = False
        self._started = False
        self.core, self.replica = self._recover()

    # ------------------------------------------------------------------ recovery

    def _recover(self) -> tuple[ConsensusCore, Replica]:
        """Rebuild the node from disk: the latest epoch, the ledger snapshot plus the blocks
        committed after it, and the persisted safety state (or genesis on first start)."""
        genesis = self.genesis
        stored_chain = self.store.get_meta("chain_id")
        if stored_chain is not None and stored_chain.decode() != self.chain_id:
            raise StorageError(
                f"{self.store.path} holds chain {stored_chain.decode()!r}, the genesis is "
                f"{self.chain_id!r}: use an empty data directory or a new era"
            )
        self.store.set_meta("chain_id", self.chain_id.encode())
        ledger = LedgerState.from_genesis(genesis, self.scheme)
        epochs = self.store.epoch_states(2)
        if epochs:
            epoch = codec.decode_epoch_state(epochs[0][1])
            previous = codec.decode_epoch_state(epochs[1][1]) if len(epochs) > 1 else None
        else:
            epoch = first_epoch(genesis, ledger.validator_records())
            previous = None
            self.store.save_epoch(
                epoch.epoch, epoch.start_height, codec.encode_epoch_state(epoch), b""
            )
        replica = Replica(ledger, epoch, genesis.consensus.mode)
        root, root_qc = genesis_block(genesis)
        height = self.store.committed_height()
        snapshot = self.store.latest_snapshot()
        replay_from = 1
        if snapshot is not None:
            replica.restore_snapshot(snapshot[1], genesis, self.scheme)
            replay_from = snapshot[0] + 1
        for h in range(replay_from, height + 1):
            stored = self.store.block(h)
            if stored is None:
                raise StorageError(f"{self.store.path}: committed block {h} is missing")
            block = codec.decode_block(stored.block)
            for raw in self.store.batches_at(h):
                replica.add_batch(decode_batch(raw))
            replica.commit(block, codec.decode_qc(stored.qc))
            replica.drain_commits()
        if height > 0:
            stored = self.store.block(height)
            assert stored is not None
            root = codec.decode_block(stored.block)
            root_qc = codec.decode_qc(stored.qc)
            replica.remember_committed(self.store.recent_batch_digests(65_536))
        safety = self.store.load_safety() or SafetyState(epoch=epoch.epoch)
        core = ConsensusCore(
            me=self.index,
            secret=self.config.keys.bls.secret,
            scheme=self.scheme,
            app=replica,
            epoch=epoch,
            root=root,
            root_qc=root_qc,
            safety=safety,
            previous_epoch=previous,
        )
        log.info(
            "validator %d recovered: height %d, epoch %d, safety %s",
            self.index,
            height,
            epoch.epoch,
            safety,
        )
        return core, replica

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = grpc.aio.server(options=SERVER_OPTIONS, maximum_concurrent_rpcs=512)
        node_pb2_grpc.add_NodeServicer_to_server(PublicService(self), self.server)
        node_pb2_grpc.add_PeerServicer_to_server(PeerService(self), self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        bound = self.server.add_insecure_port(self.config.grpc_listen)
        if bound == 0:
            raise StorageError(
                f"cannot listen on {self.config.grpc_listen} (gRPC): the port is taken or the "
                "address is not local"
            )
        await self.server.start()
        host, port = self.config.ops_host_port
        self.ops = await start_ops_server(
            host,
            port,
            registry=self.registry,
            faults=self.faults,
            admin_token=self.config.admin_token,
            readiness=self.readiness,
            status=self.status_dict,
        )
        for index, address in sorted(self.config.peers.items()):
            link = PeerLink(self.index, index, address, self.chain_id)
            link.start()
            self.peers[index] = link
        self._reload_uncommitted()
        self._apply(self.core.start(now_ms()))
        self._started = True
        self._update_gauges()
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self.health.set("aitbc.v1.Node", health_pb2.HealthCheckResponse.SERVING)
        self._spawn(self._batcher())
        self._spawn(self._housekeeping())
        log.info(
            "validator %d serving gRPC on %s, ops on %s",
            self.index,
            self.config.grpc_listen,
            self.config.ops_listen,
        )
        del loop

    def _reload_uncommitted(self) -> None:
        """Feed the blocks and highest QC stored with the safety state back into the core."""
        stored = self.store.load_uncommitted()
        if stored is None:
            return
        try:
            blocks = codec.decode_blocks(stored[0])
            high_qc = codec.decode_qc(stored[1]) if stored[1] else None
        except DecodeError as exc:
            log.warning("validator %d: stored uncommitted blocks unreadable: %s", self.index, exc)
            return
        for block in blocks:
            self._apply(self.core.on_sync(now_ms(), self.index, [block], None))
        if high_qc is not None:
            self._apply(self.core.on_sync(now_ms(), self.index, [], high_qc))

    async def run_until_stopped(self) -> None:
        await self._stopping.wait()

    def request_stop(self) -> None:
        self._stopping.set()

    async def stop(self) -> None:
        """Flush and close: stop accepting, close streams, close the store."""
        self._stopping.set()
        if self._tick is not None:
            self._tick.cancel()
        for task in list(self._tasks):
            task.cancel()
        for queue in list(self.subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        if self.server is not None:
            await self.server.stop(grace=1.0)
        for link in self.peers.values():
            await link.close()
        if self.ops is not None:
            await self.ops.close()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.consensus_pool.shutdown(wait=False, cancel_futures=True)
        self.store.close()
        log.info("validator %d stopped cleanly", self.index)

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ health and status

    def connected_peers(self) -> set[int]:
        """Peers with a live stream that no partition fault cuts off."""
        cut = self.faults.partitioned_peers
        return {i for i, link in self.peers.items() if link.connected and i not in cut}

    def peers_connected(self) -> int:
        return len(self.connected_peers())

    def can_reach_quorum(self) -> bool:
        """Connected (not partitioned) to enough validators to commit with this node."""
        es = self.core.epoch_state
        return es.validators.is_quorum(es.mode, self.connected_peers() | {self.index})

    def readiness(self) -> tuple[bool, str]:
        if not self._started:
            return False, "starting"
        es = self.core.epoch_state
        connected = self.connected_peers() | {self.index}
        if not es.validators.is_quorum(es.mode, connected):
            return False, f"connected to {len(connected) - 1} peers: not a quorum yet"
        if self._sync_target > self.core.committed_height + 2:
            return False, (
                f"syncing: height {self.core.committed_height}, peers at {self._sync_target}"
            )
        return True, "ready"

    def status_dict(self) -> dict[str, object]:
        core = self.core
        ready, reason = self.readiness()
        return {
            "chain_id": self.chain_id,
            "validator": self.index,
            "height": core.committed_height,
            "round": core.round,
            "epoch": core.epoch,
            "mode": core.mode.label,
            "committed_hash": core.committed_block.id.hex(),
            "peers_connected": self.peers_connected(),
            "validators": len(core.epoch_state.validators),
            "mempool_txs": self.mempool.pending_ids,
            "ready": ready,
            "ready_reason": reason,
            "faults": [f.to_json() for f in self.faults.active()],
        }

    def _update_gauges(self) -> None:
        m = self.metrics
        m.round.set(self.core.round)
        m.epoch.set(self.core.epoch)
        m.set_mode(self.core.mode.label)
        m.mempool_txs.set(self.mempool.pending_ids)
        m.peers_connected.set(self.peers_connected())

    def _faults_changed(self) -> None:
        self.core.equivocate = self.faults.equivocating

    # ------------------------------------------------------------------ driving the core

    def _apply(self, actions: Sequence[Action]) -> None:
        records = self.replica.drain_commits()
        last_commit = max(
            (i for i, a in enumerate(actions) if isinstance(a, Committed)), default=-1
        )
        for position, action in enumerate(actions):
            if isinstance(action, PersistSafety):
                # With the safety state, the uncommitted chain up to the highest QC: after a
                # whole-network restart a lock only crashed nodes held must not be lost.
                chain, high_qc = self.core.uncommitted_chain()
                self.store.save_safety(
                    action.state, codec.encode_blocks(chain), codec.encode_qc(high_qc)
                )
            elif isinstance(action, Broadcast):
                kind, payload = codec.encode_message(action.message)
                for peer in self.peers:
                    self._send(peer, kind, payload)
            elif isinstance(action, Send):
                kind, payload = codec.encode_message(action.message)
                self._send(action.to, kind, payload)
            elif isinstance(action, ScheduleTick):
                self._schedule_tick(action.at_ms)
            elif isinstance(action, Committed):
                record = records.pop(0)
                self._on_commit(record, last=position == last_commit)
            elif isinstance(action, FetchBatches):
                self._spawn(self._fetch(action.peer, list(action.digests)))
            elif isinstance(action, RequestSync):
                self._spawn(self._sync(action.peer, action.from_height))
            elif isinstance(action, EpochStarted):
                self._on_epoch(action.state, action.end_proof)
            elif isinstance(action, RoundTimedOut):
                self.metrics.timeouts_total.inc()
                log.info(
                    "validator %d: round %d of epoch %d timed out",
                    self.index,
                    action.round,
                    action.epoch,
                )
            elif isinstance(action, EvidenceFound):
                log.warning(
                    "validator %d: equivocation by validator %d in round %d (%s)",
                    self.index,
                    action.evidence.offender,
                    action.evidence.round,
                    action.evidence.kind,
                )
            elif isinstance(action, Rejected):
                log.debug(
                    "validator %d: dropped a message from %d: %s",
                    self.index,
                    action.sender,
                    action.reason,
                )
        if last_commit >= 0:
            self._update_gauges()

    def _send(self, peer: int, kind: int, payload: bytes) -> None:
        link = self.peers.get(peer)
        if link is None or self.faults.drops(peer, self.rng):
            return
        delay = self.faults.delay_s(peer, self.rng)
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, link.send, kind, payload)
        else:
            link.send(kind, payload)

    def _schedule_tick(self, at_ms: int) -> None:
        if self._tick_at == at_ms and self._tick is not None:
            return
        if self._tick is not None:
            self._tick.cancel()
        self._tick_at = at_ms
        delay = max(0.0, (at_ms - now_ms()) / 1000)
        self._tick = asyncio.get_running_loop().call_later(delay, self._on_tick)

    def _on_tick(self) -> None:
        self._tick = None
        self._tick_at = None
        if self.faults.paused:
            self._schedule_tick(now_ms() + 100)
            return
        self._apply(self.core.on_tick(now_ms()))
        self._update_gauges()

    def _on_epoch(self, state: EpochState, end_proof: tuple[Block, ...]) -> None:
        self.store.save_epoch(
            state.epoch,
            state.start_height,
            codec.encode_epoch_state(state),
            codec.encode_blocks(end_proof),
        )
        self.metrics.set_mode(state.mode.label)
        self.metrics.epoch.set(state.epoch)
        log.info(
            "validator %d entered epoch %d (%s, %d validators)",
            self.index,
            state.epoch,
            state.mode.label,
            len(state.validators),
        )

    def _on_commit(self, record: CommitRecord, *, last: bool) -> None:
        """Store one committed block (durably, with its batches), count it and stream it.

        The ledger snapshot is taken only on the last commit of a core call (the replica has
        executed every commit of the call by then), at checkpoints and epoch ends."""
        commit_ms = now_ms()
        commit_s = commit_ms / 1000
        block = record.block
        es = self.core.epoch_state
        if block.height % es.params.checkpoint_interval == 0 or block.height == (
            es.start_height - 1
        ):
            self._snapshot_due = True
        snapshot = None
        if last and self._snapshot_due:
            snapshot = self.replica.snapshot()
            self._snapshot_due = False
        stored_batches: list[tuple[bytes, bytes]] = []
        samples: list[float] = []
        for ref in block.batches:
            data = self._batch_encodings.pop(ref.digest, None)
            # The count of transactions we hold, never the block's claim (ref.tx_count comes
            # from the proposer): one finality sample per committed transaction.
            created, count = self._batch_times.pop(ref.digest, (block.timestamp_ms, 0))
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
            block=codec.encode_block(block),
            qc=codec.encode_qc(record.certifying_qc),
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
        if record.receipt.slashed:
            self.metrics.slashing_events_total.inc(len(record.receipt.slashed))
        if record.receipt.skipped:
            log.warning(
                "validator %d: block %d skipped %d transactions at execution",
                self.index,
                block.height,
                len(record.receipt.skipped),
            )
        self.mempool.committed(record.tx_ids)
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

    # ------------------------------------------------------------------ peer messages

    async def on_peer_message(self, sender: int, kind: int, payload: bytes) -> None:
        if self.faults.paused or self.faults.drops(sender, self.rng):
            return
        if kind == codec.Kind.BATCH:
            await self._queue_batch(sender, payload)
            return
        try:
            msg = codec.decode_message(kind, payload)
        except DecodeError as exc:
            log.debug("validator %d: undecodable message from %d: %s", self.index, sender, exc)
            return
        epoch_before = self.core.epoch
        loop = asyncio.get_running_loop()
        reason = await loop.run_in_executor(
            self.consensus_pool, self.core.verify_message, sender, msg
        )
        if reason is not None:
            log.debug("validator %d: invalid message from %d: %s", self.index, sender, reason)
            return
        verified = self.core.epoch == epoch_before == _epoch_of(msg)
        self._apply(self.core.on_message(now_ms(), sender, msg, verified=verified))

    async def _queue_batch(self, sender: int, payload: bytes) -> None:
        """Hand a peer's batch to that peer's verification worker, so that the proposals and
        votes behind it on the stream are not held up by its signature checks. The worker keeps
        the author's order (its transactions' nonces depend on it); a full queue holds the
        stream back."""
        try:
            batch = decode_batch(payload)
        except DecodeError as exc:
            log.debug("validator %d: bad batch from %d: %s", self.index, sender, exc)
            return
        if batch.author != sender:
            log.debug(
                "validator %d: batch from %d claims author %d", self.index, sender, batch.author
            )
            return
        digest = batch.digest
        if digest in self._verifying or not self.replica.missing_batches([batch.ref]):
            return  # already known, committed or on its way
        queue = self._batch_queues.get(sender)
        if queue is None:
            queue = asyncio.Queue(BATCH_QUEUE)
            self._batch_queues[sender] = queue
            self._spawn(self._batch_worker(sender, queue))
        self._verifying.add(digest)
        await queue.put((batch, payload))

    async def _batch_worker(self, sender: int, queue: asyncio.Queue[tuple[Batch, bytes]]) -> None:
        while True:
            batch, payload = await queue.get()
            try:
                valid = await self._verify_batch(batch)
            except Exception:  # a worker must survive anything one batch does
                log.exception("validator %d: batch from %d failed", self.index, sender)
                valid = False
            finally:
                self._verifying.discard(batch.digest)
            if not valid:
                log.warning(
                    "validator %d: batch from %d has an invalid transaction", self.index, sender
                )
                continue
            self._add_batch(batch, payload)
            self._apply(self.core.on_batches_available(now_ms()))

    async def _verify_batch(self, batch: Batch) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, verify_batch, batch)

    def _add_batch(self, batch: Batch, encoding: bytes | None = None) -> None:
        if self.replica.add_batch(batch):
            self._batch_encodings[batch.digest] = encoding or batch.encode()
            self._batch_times[batch.digest] = (
                batch.created_ms or now_ms(),
                len(batch.transactions),
            )

    # ------------------------------------------------------------------ fetch and sync

    async def _fetch(self, peer: int, digests: list[bytes]) -> None:
        wanted = [d for d in digests if d not in self._fetch_inflight and d not in self._verifying]
        link = self.peers.get(peer)
        if not wanted or link is None or peer in self.faults.partitioned_peers:
            return
        self._fetch_inflight.update(wanted)
        try:
            raws = await link.fetch_batches(self.index, wanted)
        except grpc.aio.AioRpcError as exc:
            log.debug("validator %d: fetch from %d failed: %s", self.index, peer, exc.code())
            return
        finally:
            self._fetch_inflight.difference_update(wanted)
        added = False
        for raw in raws:
            try:
                batch = decode_batch(raw)
            except DecodeError:
                continue
            if batch.digest in wanted and await self._verify_batch(batch):
                self._add_batch(batch)
                added = True
        if added:
            self._apply(self.core.on_batches_available(now_ms()))

    async def _sync(self, peer: int, from_height: int) -> None:
        link = self.peers.get(peer)
        if link is None or peer in self._sync_inflight or peer in self.faults.partitioned_peers:
            return
        self._sync_inflight.add(peer)
        try:
            reply = await link.sync(self.index, from_height, SYNC_MAX_BLOCKS)
        except grpc.aio.AioRpcError as exc:
            log.debug("validator %d: sync from %d failed: %s", self.index, peer, exc.code())
            return
        finally:
            self._sync_inflight.discard(peer)
        self._sync_target = max(self._sync_target, reply.peer_committed_height)
        try:
            blocks = [codec.decode_block(raw) for raw in reply.blocks]
            batches = [decode_batch(raw) for raw in reply.batches]
            high_qc = codec.decode_qc(reply.commit_proof) if reply.commit_proof else None
        except DecodeError as exc:
            log.warning("validator %d: bad sync answer from %d: %s", self.index, peer, exc)
            return
        referenced = {ref.digest for b in blocks for ref in b.batches}
        for batch in batches:
            if batch.digest in referenced:
                self._add_batch(batch)
        before = self.core.committed_height
        self._apply(self.core.on_sync(now_ms(), peer, blocks, high_qc))
        log.info(
            "validator %d synced from %d: height %d -> %d (peer at %d)",
            self.index,
            peer,
            before,
            self.core.committed_height,
            reply.peer_committed_height,
        )
        if reply.peer_committed_height > self.core.committed_height + 1 and (
            self.core.committed_height > before
        ):
            self._spawn(self._sync(peer, self.core.committed_height + 1))

    def sync_answer(self, from_height: int, max_blocks: int) -> node_pb2.SyncResponse:
        """Committed blocks from ``from_height`` (with epoch end proofs), then our uncommitted
        chain and highest QC when the answer reaches our tip, with every referenced batch."""
        height = self.core.committed_height
        count = max(1, min(max_blocks or SYNC_MAX_BLOCKS, SYNC_MAX_BLOCKS))
        last = min(height, from_height + count - 1)
        blocks: list[bytes] = []
        batches: list[bytes] = []
        for stored in self.store.blocks(max(1, from_height), last):
            blocks.append(stored.block)
            proof = self.store.end_proof_after(stored.height)
            if proof:
                for block in codec.decode_blocks(proof):
                    blocks.append(codec.encode_block(block))
        for _h, data in self.store.batches_between(max(1, from_height), last):
            batches.append(data)
        commit_proof = b""
        if last >= height:
            chain, high_qc = self.core.uncommitted_chain()
            for block in chain:
                blocks.append(codec.encode_block(block))
                for ref in block.batches:
                    kept = self._batch_encodings.get(ref.digest)
                    if kept is not None:
                        batches.append(kept)
            commit_proof = codec.encode_qc(high_qc)
        return node_pb2.SyncResponse(
            blocks=blocks,
            batches=batches,
            commit_proof=commit_proof,
            peer_committed_height=height,
        )

    # ------------------------------------------------------------------ batching

    async def _batcher(self) -> None:
        settings = self.config.mempool
        interval = settings.batch_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            if self.faults.paused:
                continue
            made = False
            while len(self.mempool):
                raws, earliest = self.mempool.take(settings.batch_max_txs)
                self._batch_seq += 1
                batch = Batch(self.index, self._batch_seq, tuple(raws), 0, earliest)
                payload = batch.encode()
                self._add_batch(batch, payload)
                for peer in self.peers:
                    self._send(peer, codec.Kind.BATCH, payload)
                made = True
            if made:
                self._apply(self.core.on_batches_available(now_ms()))
            self.metrics.mempool_txs.set(self.mempool.pending_ids)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.faults.expire(time.monotonic())
            self._update_gauges()
            if self._tick is None and not self.faults.paused:
                self._schedule_tick(now_ms())
            if self._sync_target > self.core.committed_height + 2 and self.peers:
                peer = self.rng.choice(list(self.peers))
                self._spawn(self._sync(peer, self.core.committed_height + 1))

    # ------------------------------------------------------------------ client submissions

    async def submit(self, raws: Sequence[bytes]) -> node_pb2.SubmitResponse:
        arrival = now_ms()
        screened = self.mempool.screen(raws, self.replica.ledger)
        candidates = [(a.tx_id, a.tx) for a in screened if a.tx is not None]
        loop = asyncio.get_running_loop()
        valid = await loop.run_in_executor(self.pool, _verify_all, [tx for _, tx in candidates])
        verdict = dict(zip((tid for tid, _ in candidates), valid, strict=True))
        results = []
        accepted = 0
        rejected: dict[str, int] = {}
        for a in screened:
            reason = a.reason
            if reason is None and not verdict.get(a.tx_id, False):
                reason = "bad_signature"
            if reason is None:
                self.mempool.add(a.tx_id, a.raw, arrival)
                accepted += 1
                results.append(node_pb2.TxResult(tx_id=a.tx_id, status=node_pb2.TX_STATUS_ACCEPTED))
            else:
                rejected[reason] = rejected.get(reason, 0) + 1
                results.append(
                    node_pb2.TxResult(
                        tx_id=a.tx_id, status=node_pb2.TX_STATUS_REJECTED, reason=reason
                    )
                )
        self.metrics.txs_submitted_total.inc(len(raws))
        for reason, n in rejected.items():
            self.metrics.reject(reason, n)
        return node_pb2.SubmitResponse(
            results=results, accepted=accepted, rejected=len(raws) - accepted
        )


def _verify_all(txs: Sequence[Transaction]) -> list[bool]:
    return [verify_transaction_signature(tx) for tx in txs]


def verify_batch(batch: Batch) -> bool:
    """Every transaction of a peer's batch decodes and carries a valid signature, and the batch
    claims no synthetic load (only the simulator models load; a real peer claiming millions of
    synthetic transactions would inflate every node's commit accounting)."""
    if batch.synthetic_count:
        return False
    try:
        return all(
            verify_transaction_signature(decode_transaction(raw)) for raw in batch.transactions
        )
    except DecodeError:
        return False


def _epoch_of(msg: Message) -> int:
    from aitbc_node.consensus.core import _message_epoch

    return _message_epoch(msg)


from aitbc_node.runtime.service import PeerService, PublicService  # noqa: E402

__all__ = ["CHANNEL_OPTIONS", "QuorumCert", "ValidatorNode"]
