"""Catching up: asking a peer for blocks (``Sync``), and answering such a request.

An answer is hostile until checked: blocks go through the core's ``on_sync`` (every block must
be certified by a verified QC), batches through ``BatchIntake`` (verified, and only those the
answer's blocks reference), and the peer's claimed height counts only when the answer carries
blocks above ours (a peer claiming a height it does not deliver would keep this node "syncing"
and unready).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import grpc

from aitbc_node.consensus import codec
from aitbc_node.consensus.core import ConsensusCore
from aitbc_node.consensus.reasons import Reason
from aitbc_node.consensus.types import Block, QuorumCert
from aitbc_node.errors import DecodeError
from aitbc_node.ops.faults import FaultController
from aitbc_node.proto.aitbc.v1 import node_pb2
from aitbc_node.runtime.batches import BatchIntake, BatchPool
from aitbc_node.runtime.peers import PeerLink
from aitbc_node.runtime.rejections import Rejections
from aitbc_node.storage import NodeStore

log = logging.getLogger(__name__)

#: Most blocks one sync answer carries.
SYNC_MAX_BLOCKS = 128
#: A peer ahead by more than this many blocks makes this node "syncing" (not ready).
BEHIND_BY = 2
#: Sync calls in flight at once, whatever the peers. Every peer's message from above this node's
#: height asks for a sync; unbounded, a third of 100 validators healing from a partition asked
#: all 67 others at once (2,200 answers, each blocks and batches to encode, send, decode and
#: check) and the whole host stalled. Two, so one slow or hostile peer cannot hold syncing up.
MAX_PULLS = 2


class SyncClient:
    """Pulls blocks from peers; ``target`` is the highest committed height a peer proved."""

    def __init__(
        self,
        *,
        index: int,
        peers: Mapping[int, PeerLink],
        faults: FaultController,
        intake: BatchIntake,
        rejections: Rejections,
        committed_height: Callable[[], int],
        apply_sync: Callable[[int, list[Block], QuorumCert | None], None],
        spawn: Callable[[Coroutine[Any, Any, object]], None],
    ) -> None:
        self.index = index
        self.peers = peers
        self.faults = faults
        self.intake = intake
        self.rejections = rejections
        self.committed_height = committed_height
        self.apply_sync = apply_sync
        self.spawn = spawn
        self.target = 0
        self._inflight: set[int] = set()

    @property
    def in_flight(self) -> frozenset[int]:
        """Peers asked for blocks whose answers have not come yet."""
        return frozenset(self._inflight)

    def behind(self) -> bool:
        return self.target > self.committed_height() + BEHIND_BY

    async def pull(self, peer: int, from_height: int) -> None:
        link = self.peers.get(peer)
        if (
            link is None
            or peer in self._inflight
            or len(self._inflight) >= MAX_PULLS
            or peer in self.faults.partitioned_peers
        ):
            return
        self._inflight.add(peer)
        try:
            reply = await link.sync(self.index, from_height, SYNC_MAX_BLOCKS)
        except grpc.aio.AioRpcError as exc:
            # Visible: a node that stays behind after a partition heals shows why here (at
            # debug, 100-validator runs left no trace of the failed calls).
            log.info("validator %d: sync from %d failed: %s", self.index, peer, exc.code())
            return
        finally:
            self._inflight.discard(peer)
        try:
            blocks = [codec.decode_block(raw) for raw in reply.blocks]
            high_qc = codec.decode_qc(reply.commit_proof) if reply.commit_proof else None
        except DecodeError:
            self.rejections.reject(peer, Reason.BAD_SYNC_ANSWER)
            return
        before = self.committed_height()
        claimed = reply.peer_committed_height
        if claimed > before + BEHIND_BY and not any(b.height > before for b in blocks):
            self.rejections.reject(peer, Reason.BAD_SYNC_ANSWER)
        else:
            self.target = max(self.target, claimed)
        referenced = frozenset(ref.digest for b in blocks for ref in b.batches)
        await self.intake.admit_answer(peer, reply.batches, referenced)
        self.apply_sync(peer, blocks, high_qc)
        after = self.committed_height()
        log.info(
            "validator %d synced from %d: height %d -> %d (peer claims %d)",
            self.index,
            peer,
            before,
            after,
            claimed,
        )
        if self.target > after + 1 and after > before:
            self.spawn(self.pull(peer, after + 1))


def sync_answer(
    store: NodeStore,
    core: ConsensusCore,
    pool: BatchPool,
    from_height: int,
    max_blocks: int,
) -> node_pb2.SyncResponse:
    """Committed blocks from ``from_height`` (with epoch end proofs), then the uncommitted
    chain and highest QC when the answer reaches the tip, with every referenced batch (and, on
    a byzantine node, the batches it forged)."""
    height = core.committed_height
    count = max(1, min(max_blocks or SYNC_MAX_BLOCKS, SYNC_MAX_BLOCKS))
    last = min(height, from_height + count - 1)
    blocks: list[bytes] = []
    batches: list[bytes] = []
    for stored in store.blocks(max(1, from_height), last):
        blocks.append(stored.block)
        proof = store.end_proof_after(stored.height)
        if proof:
            blocks.extend(block.encode() for block in codec.decode_blocks(proof))
    batches.extend(data for _h, data in store.batches_between(max(1, from_height), last))
    commit_proof = b""
    if last >= height:
        chain, high_qc = core.uncommitted_chain()
        for block in chain:
            blocks.append(block.encode())
            for ref in block.batches:
                kept = pool.encoding(ref.digest)
                if kept is not None:
                    batches.append(kept)
        commit_proof = high_qc.encode()
    batches.extend(pool.forged())
    return node_pb2.SyncResponse(
        blocks=blocks,
        batches=batches,
        commit_proof=commit_proof,
        peer_committed_height=height,
    )
