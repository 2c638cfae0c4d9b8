"""The one module that talks to validators: their gRPC API (``aitbc.v1.Node``) and their
operations HTTP port (``/readyz``, ``/metrics``, ``/admin/faults``).

One ``NodeClient`` per validator. Every call carries a timeout (a partitioned or paused
validator otherwise blocks its caller forever) and every failure to reach the validator raises
``NodeUnreachable`` naming the validator, the address and what to do next::

    client = NodeClient(Endpoint(0, "127.0.0.1:7000", "127.0.0.1:9100"), admin_token)
    client.status().height
    reply = client.ops_request("PUT", "/admin/faults", {"kind": "partition", "peers": [1, 2]})
    client.close()

What a fault spec means and how faults are verified is ``orchestrator.faults.node_faults``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, cast

import grpc
from aitbc_node.consensus import codec
from aitbc_node.errors import AitbcError
from aitbc_node.ledger.tx import tx_id
from aitbc_node.proto.aitbc.v1 import node_pb2, node_pb2_grpc

from orchestrator.errors import PlatformError
from orchestrator.external.http_reply import HttpReply

__all__ = [
    "BLOCK_PAGE",
    "HASH_PAGE",
    "CommittedBlockInfo",
    "Endpoint",
    "NodeClient",
    "NodeStatus",
    "NodeUnreachable",
    "ops_request",
]

HASH_PAGE = 10_000
"""Hashes per ``GetCommittedHashes`` call (the node's cap)."""
BLOCK_PAGE = 256
"""Blocks per ``GetBlocks`` call (the node's cap)."""
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
)


@dataclass(frozen=True)
class Endpoint:
    """How to reach validator ``index``: its gRPC address and its operations HTTP address
    (``/metrics``, ``/healthz``, ``/readyz``, ``/admin/faults``), both ``host:port``."""

    index: int
    grpc: str
    ops: str


class NodeUnreachable(PlatformError):
    """A validator did not answer (refused, timed out, or answered with an RPC/HTTP error that
    says it cannot serve the call). The CLI exits 3."""


@dataclass(frozen=True)
class NodeStatus:
    """A validator's ``GetStatus`` answer. ``height`` is the committed height."""

    index: int
    height: int
    round: int
    epoch: int
    mode: str
    committed_hash: bytes
    peers_connected: int
    ready: bool
    mempool_txs: int


@dataclass(frozen=True)
class CommittedBlockInfo:
    """One committed block as ``GetBlocks`` returns it, decoded: its header fields and the ids
    of the transactions it carries (sha256 of each encoded transaction, in block order).
    ``proposed_time`` is the unix time in the block header (the node does not return its local
    commit time here; the commit stream carries that)."""

    height: int
    block_hash: bytes
    epoch: int
    round: int
    proposer: int
    proposed_time: float
    tx_ids: tuple[bytes, ...]

    @property
    def tx_count(self) -> int:
        return len(self.tx_ids)


class NodeClient:
    """Client of validator ``endpoint.index``: a gRPC channel to ``endpoint.grpc`` and HTTP
    calls to ``endpoint.ops``. ``admin_token`` is the fault API's bearer token (None: fault
    calls raise). Not thread-safe for ``close``; calls may run from several threads."""

    def __init__(self, endpoint: Endpoint, admin_token: str | None, timeout_s: float = 5.0) -> None:
        if timeout_s <= 0:
            raise ValueError(f"NodeClient timeout_s={timeout_s}: use a positive number of seconds")
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._token = admin_token.strip() if admin_token else None
        self._channel: grpc.Channel = grpc.insecure_channel(endpoint.grpc, options=_CHANNEL_OPTIONS)
        self._stub = node_pb2_grpc.NodeStub(self._channel)

    @property
    def index(self) -> int:
        return self.endpoint.index

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the gRPC channel (idempotent)."""
        self._channel.close()

    # -- gRPC --------------------------------------------------------------------------------
    def status(self) -> NodeStatus:
        """``GetStatus``."""
        reply = self._call("GetStatus", node_pb2.StatusRequest())
        return NodeStatus(
            index=int(reply.validator_index),
            height=int(reply.height),
            round=int(reply.round),
            epoch=int(reply.epoch),
            mode=str(reply.mode),
            committed_hash=bytes(reply.committed_hash),
            peers_connected=int(reply.peers_connected),
            ready=bool(reply.ready),
            mempool_txs=int(reply.mempool_txs),
        )

    def committed_hashes(self, first: int, last: int) -> list[bytes]:
        """Committed block hashes of heights ``first..last`` (inclusive, from 1), fetched in
        pages of ``HASH_PAGE``. Stops early at the validator's committed height: the list has
        one hash per height from ``first`` on, as far as the validator has committed."""
        _check_range(first, last)
        hashes: list[bytes] = []
        start = max(1, first)
        while start <= last:
            end = min(last, start + HASH_PAGE - 1)
            reply = self._call(
                "GetCommittedHashes", node_pb2.BlockRangeRequest(from_height=start, to_height=end)
            )
            page = [bytes(value) for value in reply.hashes]
            hashes.extend(page)
            if len(page) < end - start + 1:
                break
            start = end + 1
        return hashes

    def blocks(self, first: int, last: int) -> list[CommittedBlockInfo]:
        """Committed blocks of heights ``first..last`` (inclusive), decoded, with the ids of
        their transactions; fetched in pages of ``BLOCK_PAGE``. Stops at the validator's
        committed height."""
        _check_range(first, last)
        blocks: list[CommittedBlockInfo] = []
        start = max(1, first)
        while start <= last:
            end = min(last, start + BLOCK_PAGE - 1)
            reply = self._call(
                "GetBlocks", node_pb2.BlockRangeRequest(from_height=start, to_height=end)
            )
            page = [self._block_info(block) for block in reply.blocks]
            blocks.extend(page)
            if len(page) < end - start + 1:
                break
            start = end + 1
        return blocks

    def account(self, address: bytes) -> tuple[int, int]:
        """``GetAccount``: the committed (balance, next nonce) of ``address`` (32 bytes)."""
        if len(address) != 32:
            raise ValueError(
                f"account address has {len(address)} bytes: give a 32-byte Ed25519 public key"
            )
        reply = self._call("GetAccount", node_pb2.AccountRequest(address=address))
        return int(reply.balance), int(reply.nonce)

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self._stub, method)(request, timeout=self.timeout_s)
        except grpc.RpcError as error:
            call = cast(grpc.Call, error)
            code = call.code()
            name = code.name if code is not None else "UNKNOWN"
            raise NodeUnreachable(
                f"validator {self.index} at {self.endpoint.grpc}: {method} failed with {name} "
                f"({call.details() or 'no details'}) within {self.timeout_s:g}s: check that the "
                "validator runs (aitbc-testnet status) and see its log"
            ) from None

    def _block_info(self, block: node_pb2.CommittedBlock) -> CommittedBlockInfo:
        try:
            header = codec.decode_block(bytes(block.block))
            ids = tuple(tx_id(bytes(raw)) for raw in block.transactions)
        except AitbcError as error:
            raise NodeUnreachable(
                f"validator {self.index} at {self.endpoint.grpc}: block {block.height} does not "
                f"decode ({error}): the validator runs a different node version than this "
                "orchestrator"
            ) from None
        return CommittedBlockInfo(
            height=int(block.height),
            block_hash=bytes(block.block_hash),
            epoch=header.epoch,
            round=header.round,
            proposer=header.proposer,
            proposed_time=header.timestamp_ms / 1000.0,
            tx_ids=ids,
        )

    # -- ops HTTP ----------------------------------------------------------------------------
    def ready(self) -> tuple[bool, str]:
        """``GET /readyz``: (True, reason) on 200, (False, reason) on 503. Raises
        NodeUnreachable when the ops port does not answer."""
        reply = self.ops_request("GET", "/readyz", admin=False)
        return reply.status == 200, reply.body.decode("utf-8", "replace").strip()

    def metrics_text(self) -> str:
        """``GET /metrics`` in the Prometheus text format."""
        reply = self.ops_request("GET", "/metrics", admin=False)
        if reply.status != 200:
            raise NodeUnreachable(
                f"validator {self.index} at {self.endpoint.ops}: GET /metrics answered "
                f"{reply.status}: see the validator's log"
            )
        return reply.body.decode("utf-8", "replace")

    def ops_request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, admin: bool = True
    ) -> HttpReply:
        """One request to the ops port (``/admin/...`` with the admin token when ``admin``);
        returns whatever the validator answered. Raises NodeUnreachable when it does not
        answer, PlatformError when ``admin`` and this client has no token."""
        if admin and self._token is None:
            raise PlatformError(
                f"validator {self.index}: {method} {path} needs the admin token and this "
                "client has none: pass the run's admin token (net/admin-token)"
            )
        return ops_request(
            self.endpoint.ops,
            method,
            path,
            body,
            token=self._token if admin else None,
            timeout_s=self.timeout_s,
            who=f"validator {self.index}",
        )


def ops_request(
    ops: str,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    token: str | None,
    timeout_s: float,
    who: str,
) -> HttpReply:
    """One HTTP request to the ops port at ``ops`` (``host:port``), with the admin token as
    bearer token when given; returns any HTTP status. Raises NodeUnreachable naming ``who``
    when nothing answers within ``timeout_s``."""
    headers = {"Accept": "text/plain, application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(
        f"http://{ops}{path}", data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return HttpReply(int(response.status), response.read())
    except urllib.error.HTTPError as error:
        with error:
            return HttpReply(int(error.code), error.read())
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        reason = getattr(error, "reason", error)
        raise NodeUnreachable(
            f"{who} at {ops}: {method} {path} failed ({reason}) within {timeout_s:g}s: check "
            "that the validator runs (aitbc-testnet status) and see its log"
        ) from None


def _check_range(first: int, last: int) -> None:
    if first < 1 or last < first:
        raise ValueError(f"height range {first}..{last}: use 1 <= first <= last")
