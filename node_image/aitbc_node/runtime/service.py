"""The gRPC services of a validator: the public ``aitbc.v1.Node`` API and the ``aitbc.v1.Peer``
streams. Hostile input gets a precise status and never crashes the node."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc

from aitbc_node.batch import decode_batch
from aitbc_node.consensus import codec
from aitbc_node.consensus.codec import Kind
from aitbc_node.consensus.reasons import Reason
from aitbc_node.consensus.wire import MAX_MESSAGE_BYTES
from aitbc_node.ledger.tx import tx_id
from aitbc_node.proto.aitbc.v1 import node_pb2, node_pb2_grpc
from aitbc_node.storage.store import StoredBlock

if TYPE_CHECKING:
    from aitbc_node.runtime.node import ValidatorNode

log = logging.getLogger(__name__)

MAX_RANGE_BLOCKS = 256
MAX_RANGE_HASHES = 10_000
MAX_FETCH_DIGESTS = 1024


class PublicService(node_pb2_grpc.NodeServicer):
    def __init__(self, node: ValidatorNode) -> None:
        self.node = node

    async def SubmitTransactions(
        self, request: node_pb2.SubmitRequest, context: grpc.aio.ServicerContext
    ) -> node_pb2.SubmitResponse:
        node = self.node
        count = len(request.transactions)
        if not node.can_reach_quorum():
            # A node cut off from a quorum would sit on the transactions until the network
            # heals: refuse, so clients move the accounts to a validator that can commit them.
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"validator {node.index} cannot reach a quorum of validators right now: "
                "send to another validator",
            )
        limit = node.config.mempool.max_submit_batch
        if count > limit:
            node.metrics.reject("too_large", count)
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"batch of {count} transactions; at most {limit} per call: split it",
            )
        if node.mempool.is_full(count):
            node.metrics.reject("mempool_full", count)
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"mempool holds {node.mempool.pending_ids} of {node.mempool.max_txs} "
                "transactions: retry after a short back-off",
            )
        return await node.submit(list(request.transactions))

    async def StreamCommits(
        self, request: node_pb2.CommitStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[node_pb2.CommitEvent]:
        node = self.node
        queue = node.commits.subscribe()
        try:
            if request.from_height:
                # Subscribed above with no await since: every later commit is in the queue.
                top = node.core.committed_height
                first = request.from_height
                while first <= top:
                    last = min(top, first + MAX_RANGE_BLOCKS - 1)
                    for stored in node.store.blocks(first, last):
                        yield _stored_event(node, stored, request.include_tx_ids)
                    first = last + 1
            while True:
                notice = await queue.get()
                if notice is None:
                    return
                if request.from_height and notice.height < request.from_height:
                    continue
                yield node_pb2.CommitEvent(
                    height=notice.height,
                    block_hash=notice.block_hash,
                    epoch=notice.epoch,
                    round=notice.round,
                    tx_ids=list(notice.tx_ids) if request.include_tx_ids else [],
                    tx_count=len(notice.tx_ids),
                    commit_time=notice.commit_time,
                    proposed_time=notice.proposed_time,
                )
        finally:
            node.commits.unsubscribe(queue)

    async def GetStatus(
        self, request: node_pb2.StatusRequest, context: grpc.aio.ServicerContext
    ) -> node_pb2.Status:
        node = self.node
        core = node.core
        ready, _ = node.readiness()
        return node_pb2.Status(
            chain_id=node.chain_id,
            validator_index=node.index,
            height=core.committed_height,
            round=core.round,
            epoch=core.epoch,
            mode=core.mode.label,
            committed_hash=core.committed_block.id,
            peers_connected=node.peers_connected(),
            validators=len(core.epoch_state.validators),
            mempool_txs=node.mempool.pending_ids,
            ready=ready,
            state_root=node.replica.ledger.state_root(),
        )

    async def GetBlocks(
        self, request: node_pb2.BlockRangeRequest, context: grpc.aio.ServicerContext
    ) -> node_pb2.BlockRangeResponse:
        first, last = await _range(request, context, MAX_RANGE_BLOCKS)
        blocks = []
        for stored in self.node.store.blocks(first, last):
            txs = [
                raw
                for data in self.node.store.batches_at(stored.height)
                for raw in decode_batch(data).transactions
            ]
            blocks.append(
                node_pb2.CommittedBlock(
                    height=stored.height,
                    block_hash=stored.block_id,
                    block=stored.block,
                    commit_qc=stored.qc,
                    transactions=txs,
                )
            )
        return node_pb2.BlockRangeResponse(blocks=blocks)

    async def GetCommittedHashes(
        self, request: node_pb2.BlockRangeRequest, context: grpc.aio.ServicerContext
    ) -> node_pb2.CommittedHashesResponse:
        first, last = await _range(request, context, MAX_RANGE_HASHES)
        return node_pb2.CommittedHashesResponse(
            from_height=first, hashes=self.node.store.hashes(first, last)
        )

    async def GetAccount(
        self, request: node_pb2.AccountRequest, context: grpc.aio.ServicerContext
    ) -> node_pb2.AccountState:
        if len(request.address) != 32:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"address has {len(request.address)} bytes; an Ed25519 public key has 32",
            )
        account = self.node.replica.ledger.account(request.address)
        return node_pb2.AccountState(
            address=request.address,
            balance=account.balance,
            nonce=account.nonce,
            height=self.node.core.committed_height,
        )


def _stored_event(
    node: ValidatorNode, stored: StoredBlock, include_tx_ids: bool
) -> node_pb2.CommitEvent:
    """A commit event rebuilt from the store (a stream that starts in the past)."""
    block = codec.decode_block(stored.block)
    tx_ids = (
        [
            tx_id(raw)
            for data in node.store.batches_at(stored.height)
            for raw in decode_batch(data).transactions
        ]
        if include_tx_ids
        else []
    )
    return node_pb2.CommitEvent(
        height=stored.height,
        block_hash=stored.block_id,
        epoch=block.epoch,
        round=block.round,
        tx_ids=tx_ids,
        tx_count=stored.tx_count,
        commit_time=stored.committed_ms / 1000,
        proposed_time=block.timestamp_ms / 1000,
    )


async def _range(
    request: node_pb2.BlockRangeRequest, context: grpc.aio.ServicerContext, cap: int
) -> tuple[int, int]:
    first = max(1, request.from_height)
    last = request.to_height or first
    if last < first:
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"to_height {request.to_height} is below from_height {request.from_height}",
        )
    return first, min(last, first + cap - 1)


class PeerService(node_pb2_grpc.PeerServicer):
    def __init__(self, node: ValidatorNode) -> None:
        self.node = node

    async def _check_peer(
        self, chain_id: str, sender: int, context: grpc.aio.ServicerContext
    ) -> None:
        node = self.node
        if chain_id != node.chain_id:
            node.rejections.reject(sender, Reason.WRONG_CHAIN)
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"chain {chain_id!r}; this node runs {node.chain_id!r}",
            )
        if sender not in node.config.peers:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, f"validator {sender} is not a known peer"
            )

    async def _check_not_partitioned(self, sender: int, context: grpc.aio.ServicerContext) -> None:
        """An injected partition cuts fetch and sync calls too, not only gossip."""
        if sender in self.node.faults.partitioned_peers:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, f"partitioned from validator {sender} (fault API)"
            )

    async def Gossip(
        self,
        request_iterator: AsyncIterator[node_pb2.PeerMessage],
        context: grpc.aio.ServicerContext,
    ) -> node_pb2.GossipAck:
        node = self.node
        received = 0
        sender = -1
        async for msg in request_iterator:
            if sender < 0:
                if msg.kind != Kind.HELLO:
                    await context.abort(
                        grpc.StatusCode.INVALID_ARGUMENT, "the first message must be a HELLO"
                    )
                await self._check_peer(msg.chain_id, msg.sender, context)
                sender = msg.sender
                continue
            if msg.sender != sender:
                node.rejections.reject(sender, Reason.SENDER_MISMATCH)
                continue
            if len(msg.payload) > MAX_MESSAGE_BYTES:
                node.rejections.reject(sender, Reason.OVERSIZED_MESSAGE)
                continue
            received += 1
            try:
                await node.on_peer_message(sender, msg.kind, msg.payload)
            except Exception:  # one bad message must never end the stream
                log.exception(
                    "validator %d: message %d from %d failed", node.index, msg.kind, sender
                )
        return node_pb2.GossipAck(received=received)

    async def FetchBatches(
        self, request: node_pb2.FetchBatchesRequest, context: grpc.aio.ServicerContext
    ) -> node_pb2.FetchBatchesResponse:
        await self._check_peer(request.chain_id, request.requester, context)
        await self._check_not_partitioned(request.requester, context)
        return node_pb2.FetchBatchesResponse(
            batches=self.node.batch_encodings(list(request.digests)[:MAX_FETCH_DIGESTS])
        )

    async def Sync(
        self, request: node_pb2.SyncRequest, context: grpc.aio.ServicerContext
    ) -> node_pb2.SyncResponse:
        await self._check_peer(request.chain_id, request.requester, context)
        await self._check_not_partitioned(request.requester, context)
        return self.node.sync_answer(request.from_height, request.max_blocks)
