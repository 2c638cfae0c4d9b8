"""A hostile peer answering ``Sync`` and ``FetchBatches`` over real gRPC (issue 10): the runtime's
intake verifies every batch a peer serves, whatever path it takes, so a block that even a forged
quorum certified never gets an unverified transaction into the replica; a claimed height the
answer does not deliver is refused and does not make the node "syncing".

The node side is the runtime's own ``SyncClient``, ``BatchIntake``, ``BatchPool`` and ``Replica``
over a real ``PeerLink``; the peer is a gRPC server in this process that serves what a byzantine
validator would.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import grpc
from aitbc_node.batch import Batch
from aitbc_node.chain import first_epoch, genesis_block
from aitbc_node.consensus.reasons import Reason
from aitbc_node.consensus.signing import Signer
from aitbc_node.consensus.types import Block, QuorumCert, bitmap_from
from aitbc_node.crypto import BlsScheme, testnet_account_keypair, testnet_bls_keypair
from aitbc_node.genesis import make_testnet_genesis
from aitbc_node.ledger import LedgerState, sign_transfer
from aitbc_node.ops.faults import FaultController
from aitbc_node.ops.metrics import NodeMetrics
from aitbc_node.proto.aitbc.v1 import node_pb2, node_pb2_grpc
from aitbc_node.replica import Replica
from aitbc_node.runtime.batches import BatchIntake, BatchPool
from aitbc_node.runtime.peers import PeerLink
from aitbc_node.runtime.rejections import Rejections
from aitbc_node.runtime.sync import SyncClient
from prometheus_client import CollectorRegistry

SEED = "hostile-sync"
ME, PEER = 0, 1


class HostilePeer(node_pb2_grpc.PeerServicer):
    def __init__(self, sync: node_pb2.SyncResponse, batches: list[bytes]) -> None:
        self.sync = sync
        self.batches = batches

    async def Sync(
        self, request: node_pb2.SyncRequest, context: grpc.aio.ServicerContext
    ) -> node_pb2.SyncResponse:
        return self.sync

    async def FetchBatches(
        self, request: node_pb2.FetchBatchesRequest, context: grpc.aio.ServicerContext
    ) -> node_pb2.FetchBatchesResponse:
        return node_pb2.FetchBatchesResponse(batches=self.batches)


@dataclass
class Node:
    """The runtime parts of validator ``ME`` that take a peer's answers."""

    registry: CollectorRegistry
    replica: Replica
    intake: BatchIntake
    sync: SyncClient
    applied: list[tuple[int, list[Block], QuorumCert | None]] = field(default_factory=list)

    def refused(self, reason: str) -> float:
        value = self.registry.get_sample_value("aitbc_byzantine_rejected_total", {"reason": reason})
        return value or 0.0


def _forged_block(genesis_chain: str, scheme: BlsScheme, batch: Batch) -> tuple[Block, QuorumCert]:
    """Block 1 carrying ``batch``, and a QC for it signed by every validator: what a quorum of
    byzantine validators (more than this model tolerates) could serve."""
    genesis = make_testnet_genesis(validators=4, authorities=4, seed=SEED, scheme=scheme)
    ledger = LedgerState.from_genesis(genesis, scheme)
    es = first_epoch(genesis, ledger.validator_records())
    root, _ = genesis_block(genesis)
    keys = [testnet_bls_keypair(scheme, SEED, i) for i in range(4)]
    signers = [Signer(i, keys[i].secret, scheme, genesis_chain) for i in range(4)]
    proposer = signers[0]
    block = Block(
        epoch=1,
        round=1,
        height=1,
        parent_id=root.id,
        proposer=0,
        timestamp_ms=1,
        batches=(batch.ref,),
        justify=es.anchor_qc,
        tc=None,
        evidence=(),
        randao_reveal=proposer.randao_reveal(1),
    )
    votes = [s.vote(1, 1, 1, block.id) for s in signers]
    qc = QuorumCert(
        1,
        1,
        1,
        block.id,
        bitmap_from(set(range(4)), 4),
        scheme.aggregate([v.signature for v in votes]),
    )
    return block, qc


async def _scenario() -> None:
    scheme = BlsScheme()
    genesis = make_testnet_genesis(validators=4, authorities=4, seed=SEED, scheme=scheme)
    account = testnet_account_keypair(SEED, 0)
    tx = sign_transfer(account, genesis.chain_id, account.public, 1, 0)
    bad = replace(tx, signature=bytes([tx.signature[0] ^ 1]) + tx.signature[1:])
    batch = Batch(PEER, 7, (bad.encode(),))
    block, qc = _forged_block(genesis.chain_id, scheme, batch)
    answer = node_pb2.SyncResponse(
        blocks=[block.encode()],
        batches=[batch.encode()],
        commit_proof=qc.encode(),
        peer_committed_height=1,
    )
    server = grpc.aio.server()
    node_pb2_grpc.add_PeerServicer_to_server(HostilePeer(answer, [batch.encode()]), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    link = PeerLink(ME, PEER, f"127.0.0.1:{port}", genesis.chain_id)
    executor = ThreadPoolExecutor(max_workers=2)
    try:
        registry = CollectorRegistry()
        metrics = NodeMetrics(registry, ME, process_metrics=False)
        ledger = LedgerState.from_genesis(genesis, scheme)
        replica = Replica(ledger, first_epoch(genesis, ledger.validator_records()), "balanced")
        pool = BatchPool(replica)
        rejections = Rejections(ME, metrics)
        peers = {PEER: link}
        faults = FaultController()
        tasks: list[asyncio.Task[object]] = []
        intake = BatchIntake(
            index=ME,
            pool=pool,
            executor=executor,
            peers=peers,
            faults=faults,
            rejections=rejections,
            on_added=lambda: None,
            spawn=lambda coro: tasks.append(asyncio.get_running_loop().create_task(coro)),
        )
        node = Node(registry, replica, intake, None)  # type: ignore[arg-type]
        node.sync = SyncClient(
            index=ME,
            peers=peers,
            faults=faults,
            intake=intake,
            rejections=rejections,
            committed_height=lambda: 0,
            apply_sync=lambda peer, blocks, high_qc: node.applied.append((peer, blocks, high_qc)),
            spawn=lambda coro: tasks.append(asyncio.get_running_loop().create_task(coro)),
        )
        # Sync: the certified block comes through, its batch does not.
        await node.sync.pull(PEER, 1)
        assert [blocks for _, blocks, _ in node.applied] == [[block]]
        assert node.refused(Reason.INVALID_BATCH) == 1
        assert replica.missing_batches([batch.ref]) == [batch.digest]
        # FetchBatches: the same batch again is never verified (nor counted) twice.
        await intake.fetch(PEER, [batch.digest])
        assert replica.missing_batches([batch.ref]) == [batch.digest]
        assert node.refused(Reason.INVALID_BATCH) == 1
        # Gossip: the same path check.
        await intake.gossip(PEER, batch.encode())
        for _ in range(10_000):  # the peer's verification worker takes it off the loop
            if not intake.busy_with(batch.digest):
                break
            await asyncio.sleep(0.01)
        assert not intake.busy_with(batch.digest)
        assert replica.missing_batches([batch.ref]) == [batch.digest]
        # A claimed height the answer does not deliver.
        answer.peer_committed_height = 500
        del answer.blocks[:]
        await node.sync.pull(PEER, 1)
        assert node.refused(Reason.BAD_SYNC_ANSWER) == 1
        assert node.sync.target == 1 and not node.sync.behind()
    finally:
        for task in tasks:
            task.cancel()
        await link.close()
        await server.stop(grace=None)
        executor.shutdown(wait=True)


def test_a_hostile_peer_cannot_get_an_unverified_transaction_in_through_sync_or_fetch() -> None:
    asyncio.run(_scenario())
