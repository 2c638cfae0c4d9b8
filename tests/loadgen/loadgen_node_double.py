"""A test double of the validator's ``aitbc.v1.Node`` service for the load generator's tests.

Not the node: one shared in-memory "chain" behind one or more gRPC servers on 127.0.0.1. It
decodes every submitted transaction and verifies its Ed25519 signature with
``aitbc_node.ledger.tx``, rejects wrong chains, bad signatures, duplicates and reused nonces,
and commits accepted transactions in a block every ``block_interval_s``, streaming a
CommitEvent (with tx ids) to every StreamCommits subscriber of every server. ``lose_every``
makes it accept some transactions that it never commits (acknowledged but lost).
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from aitbc_node.errors import DecodeError
from aitbc_node.ledger.tx import decode_transaction, verify_transaction_signature
from aitbc_node.proto.aitbc.v1 import node_pb2, node_pb2_grpc


@dataclass
class ChainDouble:
    chain_id: str
    block_interval_s: float = 0.1
    lock: threading.Lock = field(default_factory=threading.Lock)
    height: int = 0
    seen_ids: set[bytes] = field(default_factory=set)
    nonce_owner: dict[tuple[bytes, int], bytes] = field(default_factory=dict)
    pending: list[bytes] = field(default_factory=list)
    accepted_at: list[float] = field(default_factory=list)
    accepted_by_target: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    committed_ids: set[bytes] = field(default_factory=set)
    blocks: list[node_pb2.CommitEvent] = field(default_factory=list)
    subscribers: list[queue.Queue[node_pb2.CommitEvent | None]] = field(default_factory=list)
    #: Answer this many SubmitTransactions calls with RESOURCE_EXHAUSTED first.
    exhausted_calls: int = 0
    #: Accept every n-th transaction but never commit it (0: commit everything accepted).
    lose_every: int = 0
    lost_ids: set[bytes] = field(default_factory=set)

    def submit(self, raws: list[bytes], target: str) -> list[node_pb2.TxResult]:
        results = []
        now = time.monotonic()
        for raw in raws:
            identifier = hashlib.sha256(raw).digest()
            reason = ""
            try:
                tx = decode_transaction(raw)
            except DecodeError:
                reason = "malformed"
            else:
                if tx.chain_id != self.chain_id:
                    reason = "wrong_chain"
                elif not verify_transaction_signature(tx):
                    reason = "bad_signature"
            with self.lock:
                if not reason:
                    owner = self.nonce_owner.get((tx.sender, tx.nonce))
                    if identifier in self.seen_ids:
                        reason = "duplicate"
                    elif owner is not None:
                        reason = "stale_nonce"
                if reason:
                    self.rejected[reason] += 1
                    results.append(
                        node_pb2.TxResult(
                            tx_id=identifier, status=node_pb2.TX_STATUS_REJECTED, reason=reason
                        )
                    )
                    continue
                self.seen_ids.add(identifier)
                self.nonce_owner[(tx.sender, tx.nonce)] = identifier
                if self.lose_every and len(self.seen_ids) % self.lose_every == 0:
                    self.lost_ids.add(identifier)
                else:
                    self.pending.append(identifier)
                self.accepted_at.append(now)
                self.accepted_by_target[target] += 1
            results.append(node_pb2.TxResult(tx_id=identifier, status=node_pb2.TX_STATUS_ACCEPTED))
        return results

    def produce_block(self) -> None:
        with self.lock:
            tx_ids, self.pending = self.pending, []
            self.height += 1
            self.committed_ids.update(tx_ids)
            now = time.time()
            event = node_pb2.CommitEvent(
                height=self.height,
                block_hash=hashlib.sha256(self.height.to_bytes(8, "big")).digest(),
                tx_ids=tx_ids,
                tx_count=len(tx_ids),
                commit_time=now,
                proposed_time=now,
            )
            self.blocks.append(event)
            subscribers = list(self.subscribers)
        for subscriber in subscribers:
            subscriber.put(event)

    def subscribe(self, from_height: int) -> queue.Queue[node_pb2.CommitEvent | None]:
        """New blocks from now on, after the stored ones from ``from_height`` (0: none)."""
        inbox: queue.Queue[node_pb2.CommitEvent | None] = queue.Queue()
        with self.lock:
            if from_height:
                for event in self.blocks[from_height - 1 :]:
                    inbox.put(event)
            self.subscribers.append(inbox)
        return inbox

    def unsubscribe(self, inbox: queue.Queue[node_pb2.CommitEvent | None]) -> None:
        with self.lock:
            if inbox in self.subscribers:
                self.subscribers.remove(inbox)

    def close_streams(self) -> None:
        with self.lock:
            subscribers = list(self.subscribers)
        for subscriber in subscribers:
            subscriber.put(None)

    def accepted_total(self) -> int:
        with self.lock:
            return len(self.accepted_at)


class NodeDouble(node_pb2_grpc.NodeServicer):
    def __init__(self, chain: ChainDouble, target: str) -> None:
        self.chain = chain
        self.target = target
        self.calls = 0

    def SubmitTransactions(
        self, request: node_pb2.SubmitRequest, context: grpc.ServicerContext
    ) -> node_pb2.SubmitResponse:
        with self.chain.lock:
            self.calls += 1
            exhausted = self.chain.exhausted_calls > 0
            if exhausted:
                self.chain.exhausted_calls -= 1
        if exhausted:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "mempool full (test double)")
        results = self.chain.submit(list(request.transactions), self.target)
        accepted = sum(1 for r in results if r.status == node_pb2.TX_STATUS_ACCEPTED)
        return node_pb2.SubmitResponse(
            results=results, accepted=accepted, rejected=len(results) - accepted
        )

    def StreamCommits(
        self, request: node_pb2.CommitStreamRequest, context: grpc.ServicerContext
    ) -> Iterator[node_pb2.CommitEvent]:
        inbox = self.chain.subscribe(request.from_height)
        try:
            while context.is_active():
                try:
                    event = inbox.get(timeout=0.2)
                except queue.Empty:
                    continue
                if event is None:
                    return
                if request.from_height and event.height < request.from_height:
                    continue
                if not request.include_tx_ids:
                    event = node_pb2.CommitEvent(
                        height=event.height, block_hash=event.block_hash, tx_count=event.tx_count
                    )
                yield event
        finally:
            self.chain.unsubscribe(inbox)

    def GetStatus(
        self, request: node_pb2.StatusRequest, context: grpc.ServicerContext
    ) -> node_pb2.Status:
        with self.chain.lock:
            height = self.chain.height
            mempool = len(self.chain.pending)
        return node_pb2.Status(
            chain_id=self.chain.chain_id, height=height, mempool_txs=mempool, ready=True
        )


class NodeDoubleCluster:
    """``count`` servers on 127.0.0.1 (free ports) over one ChainDouble, and its block
    producer. ``stop()`` stops everything."""

    def __init__(self, chain: ChainDouble, count: int) -> None:
        self.chain = chain
        self.servers: list[grpc.Server] = []
        self.nodes: list[NodeDouble] = []
        self.targets: list[str] = []
        for _ in range(count):
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
            port = server.add_insecure_port("127.0.0.1:0")
            target = f"127.0.0.1:{port}"
            node = NodeDouble(chain, target)
            node_pb2_grpc.add_NodeServicer_to_server(node, server)
            server.start()
            self.servers.append(server)
            self.nodes.append(node)
            self.targets.append(target)
        self._stop = threading.Event()
        self._producer = threading.Thread(target=self._produce, name="block-producer", daemon=True)
        self._producer.start()

    def _produce(self) -> None:
        while not self._stop.wait(self.chain.block_interval_s):
            self.chain.produce_block()

    def stop(self) -> None:
        self._stop.set()
        self._producer.join(timeout=5)
        self.chain.close_streams()
        for server in self.servers:
            server.stop(grace=0.5).wait(5)
