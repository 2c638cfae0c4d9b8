"""Partitions through the fault API of real validators (issue 3): one validator cut off and
healed catches up; a 2/2 split of 4 stops commits and healing resumes them; a healed node whose
commit waits for batches its peers committed long ago gets them (``FetchBatches`` serves
committed batches from the store, not only held ones)."""

from __future__ import annotations

import time

import grpc
import pytest
from aitbc_node.batch import decode_batch
from aitbc_node.consensus import codec
from aitbc_node.proto.aitbc.v1 import node_pb2
from testnet import RPC_TIMEOUT_S, BackgroundLoad, LocalNetwork, NetworkFactory

pytestmark = pytest.mark.slow

#: How long a partition is watched (block intervals of 200 ms).
WATCH_S = 2.5


def _same_chain(network: LocalNetwork) -> None:
    top = min(network.heights().values())
    reference = network.committed_hashes(0, 1, top)
    for index in range(1, len(network)):
        assert network.committed_hashes(index, 1, top) == reference, index


def _assert_rpcs_cut(network: LocalNetwork, index: int, from_peer: int) -> None:
    """A partition cuts the fetch and sync calls too, not only the gossip streams."""
    peer = network.peer_stub(index)
    calls = [
        lambda: peer.Sync(
            node_pb2.SyncRequest(chain_id=network.chain_id, requester=from_peer, from_height=1),
            timeout=RPC_TIMEOUT_S,
        ),
        lambda: peer.FetchBatches(
            node_pb2.FetchBatchesRequest(
                chain_id=network.chain_id, requester=from_peer, digests=[b"\x00" * 32]
            ),
            timeout=RPC_TIMEOUT_S,
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_one_partitioned_validator_catches_up_after_heal(make_network: NetworkFactory) -> None:
    network = make_network(accounts=16, block_interval_ms=200)
    network.start_all()
    network.wait_ready(timeout=60)
    cut, others = 3, [0, 1, 2]
    with BackgroundLoad(network, owners=others, batch_size=40, interval_s=0.2):
        fault = network.put_fault(cut, {"kind": "partition", "peers": others})
        assert fault["kind"] == "partition"
        assert network.metric(cut, "aitbc_fault_active", kind="partition") == 1
        time.sleep(1.0)  # what was in flight lands
        isolated_at = network.height(cut)
        others_at = max(network.heights(others).values())
        network.wait_height(others_at + 2, timeout=40, indices=others)
        # Cut off from every peer, it commits nothing (no messages, no sync).
        assert network.height(cut) == isolated_at
        status = network.status(cut)
        assert status["faults"][0]["kind"] == "partition"
        assert status["peers_connected"] == 0 and status["ready"] is False
        assert network.metric(cut, "aitbc_peers_connected") == 0
        _assert_rpcs_cut(network, cut, from_peer=others[0])
        missed_up_to = max(network.heights(others).values())
        assert missed_up_to >= isolated_at + 2
        network.clear_faults(cut)
        assert network.metric(cut, "aitbc_fault_active", kind="partition") == 0
        waited = network.wait_until(
            lambda: network.height(cut) >= missed_up_to,
            timeout=20,
            what=f"validator {cut} to commit the blocks it missed (up to {missed_up_to})",
        )
        network.wait_until(
            lambda: network.height(cut) >= max(network.heights(others).values()) - 2,
            timeout=20,
            what=f"validator {cut} within 2 blocks of the others",
        )
        assert network.status(cut)["ready"] is True
    assert waited < 20
    _same_chain(network)


def _committed_digests(network: LocalNetwork, index: int, last: int) -> list[bytes]:
    return [
        ref.digest
        for stored in network.blocks(index, 1, last)
        for ref in codec.decode_block(stored.block).batches
    ]


def test_fetch_batches_serves_committed_batches(make_network: NetworkFactory) -> None:
    """The pool forgets a batch once its block commits; a peer whose commit still waits for it
    (back from a partition with the blocks but not their batches: a 100-validator devnet left
    validators stuck for minutes) must get it from the store."""
    network = make_network(accounts=16, block_interval_ms=200)
    network.start_all()
    network.wait_ready(timeout=60)
    with BackgroundLoad(network, owners=[0, 1, 2, 3], batch_size=20, interval_s=0.2):
        network.wait_until(
            lambda: len(_committed_digests(network, 0, network.height(0))) >= 3,
            timeout=40,
            what="three committed batches",
        )
    top = network.height(0)
    digests = _committed_digests(network, 0, top)
    network.wait_height(top + 3, timeout=40)  # long committed everywhere
    reply = network.peer_stub(1).FetchBatches(
        node_pb2.FetchBatchesRequest(
            chain_id=network.chain_id, requester=2, digests=[*digests, b"\x00" * 32]
        ),
        timeout=RPC_TIMEOUT_S,
    )
    assert sorted(decode_batch(raw).digest for raw in reply.batches) == sorted(digests)
    progress = network.status(1)["progress"]
    assert progress["blocked_commit_height"] is None and progress["sync_in_flight"] == []
    assert set(progress["batches"]) == {"gossip_queued", "verifying_answers", "fetching", "invalid"}


def test_two_two_split_stops_commits_and_heal_resumes_them(make_network: NetworkFactory) -> None:
    network = make_network(accounts=16, block_interval_ms=200)
    network.start_all()
    network.wait_ready(timeout=60)
    network.wait_height(3, timeout=30)
    left, right = [0, 1], [2, 3]
    for index in left:
        network.put_fault(index, {"kind": "partition", "peers": right})
    for index in right:
        network.put_fault(index, {"kind": "partition", "peers": left})
    time.sleep(1.0)  # a commit already in flight may still land
    frozen = network.heights()
    time.sleep(WATCH_S)  # > 10 block intervals
    assert network.heights() == frozen, "a half of the network committed without a quorum"
    for index in range(len(network)):
        status = network.status(index)
        assert status["peers_connected"] == 1 and status["ready"] is False, index
    for index in range(len(network)):
        network.clear_faults(index)
    network.wait_height(max(frozen.values()) + 3, timeout=40)
    _same_chain(network)
