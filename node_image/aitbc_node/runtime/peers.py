"""Validator-to-validator transport: one persistent outbound gRPC stream per peer, reconnected
with exponential backoff, with a bounded outbox (a slow or dead peer never blocks us).

A message is serialized once (``encode_peer_message``) and the same bytes go to every peer's
outbox: a broadcast to N peers costs one protobuf encoding, not N. The outbox is bounded by
count and by bytes (much less while the peer is not connected) and drops its *oldest* message
when full: towards a peer that has been away, what is recent (the round's timeouts, the latest
proposal) is what still matters, and consensus retransmits the rest or a sync fills the gap.
Memory per link is thus at most ``OUTBOX_BYTES``, and ``OFFLINE_BYTES`` however long the peer
stays away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator

import grpc

from aitbc_node.consensus.codec import Kind
from aitbc_node.proto.aitbc.v1 import node_pb2, node_pb2_grpc

log = logging.getLogger(__name__)

#: Messages, and bytes, queued for one peer before the oldest ones are dropped.
OUTBOX_MESSAGES = 20_000
OUTBOX_BYTES = 16 << 20
#: The same bounds while the peer is not connected: what it needs when it comes back is the
#: latest round's messages; the rest it syncs (a restarted node flooded with every batch its
#: peers made while it was down would verify them before it could catch up).
OFFLINE_MESSAGES = 512
OFFLINE_BYTES = 1 << 20
BACKOFF_START_S = 0.05
BACKOFF_MAX_S = 2.0
#: Client keepalive: a peer that vanished without closing its sockets (a deleted pod, a cut
#: network) is noticed within KEEPALIVE_MS + 5 s; a crashed process on a live host closes them
#: and is noticed at once. Pings cost every link: at 10 s, 100 validators on one host handled
#: 1,000 pings a second (both directions) for nothing. The server allows pings every 5 s.
KEEPALIVE_MS = 30_000
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


def encode_peer_message(chain_id: str, sender: int, kind: int, payload: bytes = b"") -> bytes:
    """A ``PeerMessage`` serialized once, for any number of peers' outboxes."""
    return node_pb2.PeerMessage(
        chain_id=chain_id, sender=sender, kind=kind, payload=payload
    ).SerializeToString()


class PeerLink:
    """The outbound side towards one peer."""

    def __init__(self, me: int, peer: int, address: str, chain_id: str) -> None:
        self.me = me
        self.peer = peer
        self.address = address
        self.chain_id = chain_id
        self._outbox: deque[bytes] = deque()
        self._outbox_bytes = 0
        self._ready = asyncio.Event()
        self.connected = False
        self.dropped = 0
        self.channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self.stub = node_pb2_grpc.PeerStub(self.channel)
        # The gossip stream takes serialized PeerMessages (no per-peer encoding).
        self._gossip = self.channel.stream_unary(
            "/aitbc.v1.Peer/Gossip",
            request_serializer=None,
            response_deserializer=node_pb2.GossipAck.FromString,
        )
        self._hello = encode_peer_message(chain_id, me, Kind.HELLO)
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"peer-{self.peer}")

    @property
    def queued(self) -> int:
        return len(self._outbox)

    def send(self, message: bytes) -> None:
        """Queue a serialized ``PeerMessage`` (``encode_peer_message``); when the outbox is
        full, the oldest queued messages give way."""
        outbox = self._outbox
        outbox.append(message)
        self._outbox_bytes += len(message)
        most, most_bytes = (
            (OUTBOX_MESSAGES, OUTBOX_BYTES) if self.connected else (OFFLINE_MESSAGES, OFFLINE_BYTES)
        )
        while len(outbox) > most or (self._outbox_bytes > most_bytes and len(outbox) > 1):
            self._outbox_bytes -= len(outbox.popleft())
            self.dropped += 1
        self._ready.set()

    async def _requests(self) -> AsyncIterator[bytes]:
        yield self._hello
        self.connected = True
        outbox = self._outbox
        while not self._closing:
            if not outbox:
                self._ready.clear()
                await self._ready.wait()
                continue
            message = outbox.popleft()
            self._outbox_bytes -= len(message)
            yield message

    async def _run(self) -> None:
        backoff = BACKOFF_START_S
        while not self._closing:
            try:
                await self.channel.channel_ready()
                backoff = BACKOFF_START_S
                await self._gossip(self._requests())
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
        self._ready.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.channel.close(grace=None)
