"""Validator-to-validator transport: one persistent outbound gRPC stream per peer, reconnected
with exponential backoff, with a bounded send queue (a slow or dead peer never blocks us)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import grpc

from aitbc_node.consensus.codec import Kind
from aitbc_node.proto.aitbc.v1 import node_pb2, node_pb2_grpc

log = logging.getLogger(__name__)

#: Messages queued for one peer before new ones are dropped (consensus retransmits what matters).
SEND_QUEUE = 20_000
BACKOFF_START_S = 0.05
BACKOFF_MAX_S = 2.0
#: Client keepalive; the server allows pings this often (grpc.http2.min_ping_interval...).
KEEPALIVE_MS = 10_000
RPC_TIMEOUT_S = 5.0

CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", KEEPALIVE_MS),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]


class PeerLink:
    """The outbound side towards one peer."""

    def __init__(self, me: int, peer: int, address: str, chain_id: str) -> None:
        self.me = me
        self.peer = peer
        self.address = address
        self.chain_id = chain_id
        self.queue: asyncio.Queue[node_pb2.PeerMessage | None] = asyncio.Queue(SEND_QUEUE)
        self.connected = False
        self.dropped = 0
        self.channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self.stub = node_pb2_grpc.PeerStub(self.channel)
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"peer-{self.peer}")

    def send(self, kind: int, payload: bytes) -> None:
        msg = node_pb2.PeerMessage(
            chain_id=self.chain_id, sender=self.me, kind=kind, payload=payload
        )
        try:
            self.queue.put_nowait(msg)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _requests(self) -> AsyncIterator[node_pb2.PeerMessage]:
        yield node_pb2.PeerMessage(chain_id=self.chain_id, sender=self.me, kind=Kind.HELLO)
        self.connected = True
        while True:
            msg = await self.queue.get()
            if msg is None:
                return
            yield msg

    async def _run(self) -> None:
        backoff = BACKOFF_START_S
        while not self._closing:
            try:
                await self.channel.channel_ready()
                backoff = BACKOFF_START_S
                await self.stub.Gossip(self._requests())
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                log.debug(
                    "stream to validator %d (%s) ended: %s", self.peer, self.address, exc.code()
                )
            except Exception:  # pragma: no cover - logged, then reconnect
                log.exception("stream to validator %d failed", self.peer)
            self.connected = False
            if self._closing:
                break
            await asyncio.sleep(backoff)
            backoff = min(BACKOFF_MAX_S, backoff * 2)

    async def fetch_batches(self, requester: int, digests: list[bytes]) -> list[bytes]:
        reply = await self.stub.FetchBatches(
            node_pb2.FetchBatchesRequest(
                chain_id=self.chain_id, requester=requester, digests=digests
            ),
            timeout=RPC_TIMEOUT_S,
        )
        return list(reply.batches)

    async def sync(
        self, requester: int, from_height: int, max_blocks: int
    ) -> node_pb2.SyncResponse:
        response: node_pb2.SyncResponse = await self.stub.Sync(
            node_pb2.SyncRequest(
                chain_id=self.chain_id,
                requester=requester,
                from_height=from_height,
                max_blocks=max_blocks,
            ),
            timeout=RPC_TIMEOUT_S * 2,
        )
        return response

    async def close(self) -> None:
        self._closing = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.channel.close(grace=None)
