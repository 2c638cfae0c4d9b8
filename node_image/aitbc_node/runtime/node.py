"""The validator process: an asyncio + grpc.aio driver of the pure consensus core.

``ValidatorNode`` wires the parts (store and recovery, replica, mempool and batcher, peer links,
batch intake, sync, commit sink, public and peer gRPC services, ops HTTP port, fault controller,
and the byzantine ``Attacker`` a fault can switch on) and drives the core: every peer message is
screened (cheap, on the loop), verified (a thread: blspy releases the GIL) and handed to the
core; every action list the core returns goes through the attacker (honest: unchanged) and is
executed in order. The core is only ever called from the event loop thread.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from aitbc_node.batch import Batch, VerifiedBatch
from aitbc_node.byzantine import Attacker, DriverAction, ForgedBatch, RawMessage
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
from aitbc_node.consensus.reasons import Reason
from aitbc_node.consensus.types import Block, EpochState, QuorumCert
from aitbc_node.crypto import BlsScheme
from aitbc_node.errors import DecodeError, StorageError
from aitbc_node.ledger.tx import Transaction, verify_transaction_signature
from aitbc_node.ops.faults import FaultController
from aitbc_node.ops.http import OpsServer, start_ops_server
from aitbc_node.ops.metrics import NodeMetrics
from aitbc_node.proto.aitbc.v1 import node_pb2, node_pb2_grpc
from aitbc_node.runtime.batches import BatchIntake, BatchPool
from aitbc_node.runtime.commits import CommitSink
from aitbc_node.runtime.mempool import Mempool
from aitbc_node.runtime.peers import PeerLink, encode_peer_message
from aitbc_node.runtime.recovery import recover, reload_uncommitted
from aitbc_node.runtime.rejections import Rejections
from aitbc_node.runtime.service import PeerService, PublicService
from aitbc_node.runtime.sync import SyncClient, sync_answer
from aitbc_node.storage import NodeStore

log = logging.getLogger(__name__)

#: The server pings an idle client rarely: each pair of validators has a stream each way, and the
#: client side of each pings (``peers.KEEPALIVE_MS``); this only frees a dead client's stream.
SERVER_OPTIONS = [
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
]


#: How often (ms) a node that reaches no quorum looks again before running its consensus clock.
QUORUM_WAIT_MS = 250


def now_ms() -> int:
    return int(time.time() * 1000)


class ValidatorNode:
    def __init__(self, config: ResolvedNodeConfig) -> None:
        self.config = config
        self.index = config.index
        self.genesis = config.genesis
        self.chain_id = config.genesis.chain_id
        self.scheme = BlsScheme()
        self.registry = CollectorRegistry()
        self.metrics = NodeMetrics(self.registry, config.index)
        self.rejections = Rejections(config.index, self.metrics)
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
        self.server: grpc.aio.Server | None = None
        self.ops: OpsServer | None = None
        self.health = health.aio.HealthServicer()
        self._tick: asyncio.TimerHandle | None = None
        self._tick_at: int | None = None
        self._batch_seq = 0
        self._batch_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._stopping = asyncio.Event()
        self._started = False
        self.core, self.replica = recover(
            self.store, self.genesis, self.scheme, self.index, config.keys.bls.secret
        )
        self.batches = BatchPool(self.replica)
        self.intake = BatchIntake(
            index=self.index,
            pool=self.batches,
            executor=self.pool,
            peers=self.peers,
            faults=self.faults,
            rejections=self.rejections,
            on_added=self._batches_arrived,
            spawn=self._spawn,
        )
        self.sync = SyncClient(
            index=self.index,
            peers=self.peers,
            faults=self.faults,
            intake=self.intake,
            rejections=self.rejections,
            committed_height=lambda: self.core.committed_height,
            apply_sync=self._apply_sync,
            spawn=self._spawn,
        )
        self.commits = CommitSink(
            index=self.index,
            store=self.store,
            replica=self.replica,
            pool=self.batches,
            metrics=self.metrics,
            rejections=self.rejections,
        )
        self.attacker = Attacker(
            account=config.keys.account,
            nonce_of=lambda address: self.replica.ledger.account(address).nonce,
            seed=config.index,
        )

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.server = grpc.aio.server(options=SERVER_OPTIONS, maximum_concurrent_rpcs=512)
        node_pb2_grpc.add_NodeServicer_to_server(PublicService(self), self.server)
        node_pb2_grpc.add_PeerServicer_to_server(PeerService(self), self.server)
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
        if self.config.byzantine is not None:
            # A start-up attack: a fault like any other (listed, healable), with no end.
            self.faults.apply({"kind": "byzantine", **self.config.byzantine})
        self._apply(reload_uncommitted(self.store, self.core, now_ms()))
        self._apply(self.core.start(now_ms()))
        self._started = True
        self._update_gauges()
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self.health.set("aitbc.v1.Node", health_pb2.HealthCheckResponse.SERVING)
        self._spawn(self._housekeeping())
        log.info(
            "validator %d serving gRPC on %s, ops on %s",
            self.index,
            self.config.grpc_listen,
            self.config.ops_listen,
        )

    async def run_until_stopped(self) -> None:
        await self._stopping.wait()

    def request_stop(self) -> None:
        self._stopping.set()

    async def stop(self) -> None:
        """Flush and close: stop accepting, close streams, close the store."""
        self._stopping.set()
        if self._tick is not None:
            self._tick.cancel()
        if self._batch_timer is not None:
            self._batch_timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        self.commits.close()
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
        if self.sync.behind():
            return False, (
                f"syncing: height {self.core.committed_height}, peers at {self.sync.target}"
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
            "byzantine": list(self.attacker.behaviours),
            "progress": self.progress_dict(),
        }

    def progress_dict(self) -> dict[str, object]:
        """What this node's commits wait for (a node left behind shows why here): the highest
        QC it knows, a commit blocked on batches, proposals waiting for batches, sync calls in
        flight and the height peers proved, batches being verified or fetched."""
        core = self.core
        blocked = core.blocked_commit
        return {
            "high_qc": {"round": core.high_qc.round, "height": core.high_qc.height},
            "tree_blocks": len(core.tree.blocks),
            "blocked_commit_height": None if blocked is None else blocked[0].height,
            "blocked_on_batches": [] if blocked is None else self._missing_for(blocked[0]),
            "proposals_waiting_for_batches": len(core.pending),
            "sync_target": self.sync.target,
            "sync_in_flight": sorted(self.sync.in_flight),
            "batches": self.intake.counts(),
        }

    def _missing_for(self, certified: Block) -> list[str]:
        """Digest prefixes of the batches the commit below ``certified`` lacks (at most 20)."""
        chain = self.core.tree.path_down(self.core.tree.get(certified.parent_id))
        missing = [d for b in chain for d in self.replica.missing_batches(b.batches)]
        return [d.hex()[:16] for d in missing[:20]]

    def _update_gauges(self) -> None:
        m = self.metrics
        m.round.set(self.core.round)
        m.epoch.set(self.core.epoch)
        m.set_mode(self.core.mode.label)
        m.mempool_txs.set(self.mempool.pending_ids)
        m.peers_connected.set(self.peers_connected())

    def _faults_changed(self) -> None:
        self.attacker.set_behaviours(self.faults.behaviours)

    # ------------------------------------------------------------------ driving the core

    def _apply(self, actions: Sequence[Action]) -> None:
        """Execute the core's actions, in order, through the attacker (honest: unchanged)."""
        executed: Sequence[DriverAction] = actions
        if self.attacker.behaviours:
            executed, performed = self.attacker.transform(self.core, actions, now_ms())
            self.metrics.byzantine_acted(performed)
        records = self.replica.drain_commits()
        last_commit = max(
            (i for i, a in enumerate(executed) if isinstance(a, Committed)), default=-1
        )
        for position, action in enumerate(executed):
            if isinstance(action, PersistSafety):
                # With the safety state, the uncommitted chain up to the highest QC: after a
                # whole-network restart a lock only crashed nodes held must not be lost.
                chain, high_qc = self.core.uncommitted_chain()
                self.store.save_safety(action.state, codec.encode_blocks(chain), high_qc.encode())
            elif isinstance(action, Broadcast):
                self._broadcast_raw(*codec.encode_message(action.message))
            elif isinstance(action, Send):
                self._send(action.to, *codec.encode_message(action.message))
            elif isinstance(action, ScheduleTick):
                self._schedule_tick(action.at_ms)
            elif isinstance(action, Committed):
                record = records.pop(0)
                self.commits.committed(record, self.core.epoch_state, last=position == last_commit)
                self.mempool.committed(record.tx_ids)
            elif isinstance(action, FetchBatches):
                self._spawn(self.intake.fetch(action.peer, list(action.digests)))
            elif isinstance(action, RequestSync):
                self._spawn(self.sync.pull(action.peer, action.from_height))
            else:
                self._note(action)
        if last_commit >= 0:
            self._update_gauges()

    def _note(self, action: DriverAction) -> None:
        """The actions that only inform (or, on a byzantine node, attack)."""
        if isinstance(action, EpochStarted):
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
            self.rejections.reject(action.sender, action.reason)
        elif isinstance(action, ForgedBatch):
            self._broadcast_raw(codec.Kind.BATCH, self.batches.forge(action.batch))
        elif isinstance(action, RawMessage):
            if action.to is None:
                self._broadcast_raw(action.kind, action.payload)
            else:
                self._send(action.to, action.kind, action.payload)

    def _broadcast_raw(self, kind: int, payload: bytes) -> None:
        """One encoding of the message for every peer (fault rules apply per peer)."""
        message = encode_peer_message(self.chain_id, self.index, kind, payload)
        for peer in self.peers:
            self._deliver(peer, message)

    def _send(self, peer: int, kind: int, payload: bytes) -> None:
        self._deliver(peer, encode_peer_message(self.chain_id, self.index, kind, payload))

    def _deliver(self, peer: int, message: bytes) -> None:
        link = self.peers.get(peer)
        if link is None or self.faults.drops(peer, self.rng):
            return
        delay = self.faults.delay_s(peer, self.rng)
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, link.send, message)
        else:
            link.send(message)

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
        if not self.can_reach_quorum():
            # Timing out (or proposing) cannot help a node that reaches no quorum: its
            # timeouts would only make its few connected peers join them, all retransmitting
            # every period. The clock waits (checked again shortly) until a quorum is
            # connected: at start-up, until enough validators are up; in a partition, until
            # it heals. Safety never depends on it; a round already overdue times out at once.
            self._schedule_tick(now_ms() + QUORUM_WAIT_MS)
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

    def _batches_arrived(self) -> None:
        self._apply(self.core.on_batches_available(now_ms()))

    def _apply_sync(self, peer: int, blocks: list[Block], high_qc: QuorumCert | None) -> None:
        self._apply(self.core.on_sync(now_ms(), peer, blocks, high_qc))

    # ------------------------------------------------------------------ peer messages

    async def on_peer_message(self, sender: int, kind: int, payload: bytes) -> None:
        if self.faults.paused or self.faults.drops(sender, self.rng):
            return
        if kind == codec.Kind.BATCH:
            await self.intake.gossip(sender, payload)
            return
        try:
            msg = codec.decode_message(kind, payload)
        except DecodeError:
            self.rejections.reject(sender, Reason.UNDECODABLE_MESSAGE)
            return
        reason = self.core.screen(sender, msg)
        if reason is not None:
            self.rejections.reject(sender, reason)
            return
        epoch_before = self.core.epoch
        if self.core.verifier.needs_pairing(msg):
            loop = asyncio.get_running_loop()
            reason = await loop.run_in_executor(self.consensus_pool, self.core.verify_message, msg)
        else:  # nothing a thread would save (a vote, or a timeout carrying a known QC)
            reason = self.core.verify_message(msg)
        if reason is not None:
            self.rejections.reject(sender, reason)
            return
        verified = self.core.epoch == epoch_before == codec.message_epoch(msg)
        self._apply(self.core.on_message(now_ms(), sender, msg, verified=verified))

    def batch_encodings(self, digests: Sequence[bytes]) -> list[bytes]:
        """The batches this node serves for ``digests`` (a ``FetchBatches`` answer): held ones,
        and committed ones from the store. A peer whose commit waits for a batch everyone else
        has already committed gets it here (the pool forgets a batch once it commits)."""
        found = []
        for digest in digests:
            data = self.batches.encoding(digest) or self.store.batch(digest)
            if data is not None:
                found.append(data)
        return found

    def sync_answer(self, from_height: int, max_blocks: int) -> node_pb2.SyncResponse:
        return sync_answer(self.store, self.core, self.batches, from_height, max_blocks)

    # ------------------------------------------------------------------ batching

    def _schedule_batch(self) -> None:
        """Cut a batch ``batch_interval_ms`` after the first transaction waiting for one: a
        timer only while transactions wait (an idle node wakes for nothing)."""
        if self._batch_timer is None and len(self.mempool):
            delay = self.config.mempool.batch_interval_ms / 1000
            self._batch_timer = asyncio.get_running_loop().call_later(delay, self._cut_batches)

    def _cut_batches(self) -> None:
        self._batch_timer = None
        if self.faults.paused:
            self._schedule_batch()
            return
        limit = self.config.mempool.batch_max_txs
        made = False
        while len(self.mempool):
            raws, earliest = self.mempool.take(limit)
            self._batch_seq += 1
            batch = Batch(self.index, self._batch_seq, tuple(raws), 0, earliest)
            payload = batch.encode()
            self.batches.add(VerifiedBatch.local(batch), payload)
            self._broadcast_raw(codec.Kind.BATCH, payload)
            made = True
        if made:
            self._batches_arrived()
        self.metrics.mempool_txs.set(self.mempool.pending_ids)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.faults.expire(time.monotonic())
            self._update_gauges()
            if self._tick is None and not self.faults.paused:
                self._schedule_tick(now_ms())
            if self.sync.behind() and self.peers:
                peer = self.rng.choice(list(self.peers))
                self._spawn(self.sync.pull(peer, self.core.committed_height + 1))

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
        self._schedule_batch()
        self.metrics.txs_submitted_total.inc(len(raws))
        for reason, n in rejected.items():
            self.metrics.reject(reason, n)
        return node_pb2.SubmitResponse(
            results=results, accepted=accepted, rejected=len(raws) - accepted
        )


def _verify_all(txs: Sequence[Transaction]) -> list[bool]:
    return [verify_transaction_signature(tx) for tx in txs]


__all__ = ["ValidatorNode"]
