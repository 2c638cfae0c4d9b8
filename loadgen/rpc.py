"""The validator's gRPC API as the load generator uses it (``aitbc.v1.Node``): channels,
batch submission with per-transaction results, and the commit stream.

Blocking gRPC calls only; under Locust the same calls cooperate with gevent because the
locustfile runs ``grpc.experimental.gevent.init_gevent()`` before any channel exists. Every call
carries a ``timeout=``: a partitioned validator otherwise blocks its caller forever.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import cast

import grpc
from aitbc_node.proto.aitbc.v1 import node_pb2, node_pb2_grpc

DEFAULT_TIMEOUT_S = 5.0
#: RPC failures worth retrying with the same transactions (perhaps on another validator).
TRANSIENT_CODES: frozenset[str] = frozenset(
    {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "CANCELLED"}
)
_MAX_MESSAGE_BYTES = 32 * 1024 * 1024
_CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
)
_REASON_PATTERN = re.compile(r"^[a-z0-9_]{1,48}$")


def reason_label(reason: str) -> str:
    """A bounded metric label for a node's rejection reason ("other" for anything unexpected)."""
    reason = reason.strip().lower()
    if not reason:
        return "unspecified"
    return reason if _REASON_PATTERN.match(reason) else "other"


def rpc_failure_reason(code: str) -> str:
    """The rejection label of transactions whose whole call failed, e.g. ``rpc_unavailable``."""
    return f"rpc_{code.lower()}"


@dataclass(frozen=True)
class SubmitOutcome:
    """What one ``SubmitTransactions`` call did. On an RPC error ``error_code`` is the gRPC
    status name and nothing was accepted (as far as the caller knows)."""

    target: str
    sent: int
    accepted: int
    accepted_ids: tuple[bytes, ...]
    rejected: tuple[tuple[str, int], ...]
    latency_s: float
    error_code: str | None = None
    error_detail: str = ""

    @property
    def ok(self) -> bool:
        return self.error_code is None

    @property
    def retryable(self) -> bool:
        return self.error_code in TRANSIENT_CODES

    @property
    def rejected_count(self) -> int:
        return sum(count for _, count in self.rejected)

    def rejection_counts(self) -> dict[str, int]:
        """Transactions not accepted, by reason (an RPC error counts all of them as
        ``rpc_<code>``)."""
        if self.error_code is not None:
            return {rpc_failure_reason(self.error_code): self.sent}
        return dict(self.rejected)


def open_channel(target: str) -> grpc.Channel:
    """An insecure channel to one validator's ``host:port``."""
    return grpc.insecure_channel(target, options=_CHANNEL_OPTIONS)


def node_stub(channel: grpc.Channel) -> node_pb2_grpc.NodeStub:
    return node_pb2_grpc.NodeStub(channel)


def submit_batch(
    stub: node_pb2_grpc.NodeStub,
    transactions: Sequence[bytes],
    *,
    target: str,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> SubmitOutcome:
    """Submit ``transactions`` in one call and classify the per-transaction results. Never
    raises for an RPC error: the outcome carries its code."""
    started = time.perf_counter()
    try:
        response = stub.SubmitTransactions(
            node_pb2.SubmitRequest(transactions=list(transactions)), timeout=timeout_s
        )
    except grpc.RpcError as error:
        call = cast(grpc.Call, error)
        return SubmitOutcome(
            target=target,
            sent=len(transactions),
            accepted=0,
            accepted_ids=(),
            rejected=(),
            latency_s=time.perf_counter() - started,
            error_code=call.code().name if call.code() is not None else "UNKNOWN",
            error_detail=call.details() or "",
        )
    latency = time.perf_counter() - started
    accepted_ids: list[bytes] = []
    reasons: Counter[str] = Counter()
    for result in response.results:
        if result.status == node_pb2.TX_STATUS_ACCEPTED:
            accepted_ids.append(bytes(result.tx_id))
        elif result.status == node_pb2.TX_STATUS_REJECTED:
            reasons[reason_label(result.reason)] += 1
        else:
            reasons["unspecified"] += 1
    missing = len(transactions) - len(response.results)
    if missing > 0:
        reasons["no_result"] += missing
    return SubmitOutcome(
        target=target,
        sent=len(transactions),
        accepted=len(accepted_ids),
        accepted_ids=tuple(accepted_ids),
        rejected=tuple(sorted(reasons.items())),
        latency_s=latency,
    )


def get_status(
    stub: node_pb2_grpc.NodeStub, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> node_pb2.Status:
    """The validator's status (raises ``grpc.RpcError``)."""
    return stub.GetStatus(node_pb2.StatusRequest(), timeout=timeout_s)


def commit_stream(
    stub: node_pb2_grpc.NodeStub,
    *,
    from_height: int = 0,
    include_tx_ids: bool = True,
    timeout_s: float,
) -> Iterator[node_pb2.CommitEvent]:
    """The commit stream from ``from_height`` (0: only new commits). The returned object is
    also the call: ``.cancel()`` ends it. It ends with DEADLINE_EXCEEDED after ``timeout_s``."""
    request = node_pb2.CommitStreamRequest(from_height=from_height, include_tx_ids=include_tx_ids)
    return cast(Iterator[node_pb2.CommitEvent], stub.StreamCommits(request, timeout=timeout_s))


def account_nonce(
    stub: node_pb2_grpc.NodeStub, address: bytes, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> int:
    """The committed next nonce of ``address`` at this validator (``GetAccount``). Raises
    ``grpc.RpcError`` (``UNIMPLEMENTED`` from a node without the account API)."""
    reply = stub.GetAccount(node_pb2.AccountRequest(address=address), timeout=timeout_s)
    return int(reply.nonce)


def rpc_code(error: grpc.RpcError) -> str:
    """The status name of a failed call (``UNKNOWN`` when it has none)."""
    code = error.code() if isinstance(error, grpc.Call) else None
    return code.name if code is not None else "UNKNOWN"


def committed_nonces(
    stub: node_pb2_grpc.NodeStub, addresses: Sequence[bytes], *, timeout_s: float
) -> list[int]:
    """``account_nonce`` of every address, in order (raises ``grpc.RpcError`` on the first
    failure)."""
    return [account_nonce(stub, address, timeout_s=timeout_s) for address in addresses]
