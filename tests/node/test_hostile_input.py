"""Hostile clients and peers against real validators (issue 3, "Hostile input"): every bad
transaction is rejected with its reason and counted in ``aitbc_txs_rejected_total{reason}``;
oversized batches, unknown peers and foreign chains get a clear gRPC status; a flood beyond
the mempool bound is answered with RESOURCE_EXHAUSTED while memory stays bounded; the nodes
keep running and committing."""

from __future__ import annotations

import os
from collections.abc import Iterator

import grpc
import pytest
from aitbc_node.batch import Batch
from aitbc_node.consensus.codec import Kind
from aitbc_node.ledger.tx import MAX_TX_BYTES, sign_transfer, tx_id
from aitbc_node.proto.aitbc.v1 import node_pb2
from testnet import RPC_TIMEOUT_S, Account, LocalNetwork, NetworkFactory

pytestmark = pytest.mark.slow

TARGET = 0
SMALL_MEMPOOL_NODE = 3
SMALL_MEMPOOL = 600
MAX_SUBMIT_BATCH = 5_000  # the node config default


@pytest.fixture(scope="module")
def network(make_module_network: NetworkFactory) -> Iterator[LocalNetwork]:
    net = make_module_network(accounts=64, mempool={SMALL_MEMPOOL_NODE: {"max_txs": SMALL_MEMPOOL}})
    net.start_all()
    net.wait_ready(timeout=60)
    yield net
    net.require_alive()  # every hostile input left every node running


def _submit(network: LocalNetwork, index: int, raws: list[bytes]) -> node_pb2.SubmitResponse:
    reply: node_pb2.SubmitResponse = network.stub(index).SubmitTransactions(
        node_pb2.SubmitRequest(transactions=raws), timeout=RPC_TIMEOUT_S
    )
    return reply


def _reasons(reply: node_pb2.SubmitResponse) -> list[str]:
    return [r.reason if r.status == node_pb2.TX_STATUS_REJECTED else "ok" for r in reply.results]


def _rejected(network: LocalNetwork, index: int) -> dict[str, float]:
    return {
        dict(labels)["reason"]: value
        for (name, labels), value in network.metric_samples(index).items()
        if name == "aitbc_txs_rejected_total"
    }


def _owned(network: LocalNetwork, index: int, count: int) -> list[Account]:
    return [a for a in network.accounts if network.owner(a) == index][:count]


def test_bad_transactions_are_rejected_with_a_reason_and_counted(network: LocalNetwork) -> None:
    sender, recipient = _owned(network, TARGET, 2)
    before = _rejected(network, TARGET)
    good = sign_transfer(sender.keys, network.chain_id, recipient.address, 5, 0).encode()
    bad_signature = good[:-1] + bytes([good[-1] ^ 0x01])
    wrong_chain = sign_transfer(sender.keys, "another-chain", recipient.address, 5, 0).encode()
    gap = sign_transfer(sender.keys, network.chain_id, recipient.address, 5, 5_000).encode()
    too_big = good + b"\x00" * MAX_TX_BYTES
    garbage = os.urandom(120)
    broke = sign_transfer(
        recipient.keys, network.chain_id, sender.address, 10**15, 0
    ).encode()  # more than the genesis balance
    reply = _submit(
        network, TARGET, [bad_signature, wrong_chain, gap, too_big, garbage, broke, good, good]
    )
    assert _reasons(reply) == [
        "bad_signature",
        "wrong_chain",
        "nonce_gap",
        "too_large",
        "decode_error",
        "insufficient_balance",
        "ok",
        "duplicate",  # the same transaction twice in one call
    ]
    assert reply.accepted == 1 and reply.rejected == 7
    assert [r.tx_id for r in reply.results][:2] == [tx_id(bad_signature), tx_id(wrong_chain)]
    after = _rejected(network, TARGET)
    for reason in (
        "bad_signature",
        "wrong_chain",
        "nonce_gap",
        "too_large",
        "decode_error",
        "insufficient_balance",
        "duplicate",
    ):
        assert after[reason] == before[reason] + 1, reason

    # Replays: the committed transaction again (duplicate), a new one with a used nonce (stale).
    network.wait_until(
        lambda: network.account(TARGET, sender.address).nonce == 1,
        timeout=30,
        what="the good transfer to commit",
    )
    stale = sign_transfer(sender.keys, network.chain_id, recipient.address, 6, 0).encode()
    replay_reply = _submit(network, TARGET, [good, stale])
    assert _reasons(replay_reply)[0] in ("duplicate", "stale_nonce")
    assert _reasons(replay_reply)[1] == "stale_nonce"
    final = _rejected(network, TARGET)
    assert final["stale_nonce"] + final["duplicate"] == (
        after["stale_nonce"] + after["duplicate"] + 2
    )
    # The replays did not execute twice.
    assert network.account(TARGET, sender.address).nonce == 1
    network.wait_until(
        lambda: all(network.account(i, sender.address).nonce == 1 for i in range(len(network))),
        timeout=30,
        what="every node to commit the good transfer",
    )
    expected = network.genesis.accounts[recipient.index].balance + 5
    for index in range(len(network)):
        assert network.account(index, recipient.address).balance == expected, index


def test_an_oversized_batch_is_invalid_argument(network: LocalNetwork) -> None:
    before = _rejected(network, TARGET)["too_large"]
    with pytest.raises(grpc.RpcError) as caught:
        _submit(network, TARGET, [b"x"] * (MAX_SUBMIT_BATCH + 1))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(MAX_SUBMIT_BATCH) in caught.value.details()
    assert _rejected(network, TARGET)["too_large"] == before + MAX_SUBMIT_BATCH + 1


def test_bad_ranges_and_addresses_are_invalid_argument(network: LocalNetwork) -> None:
    stub = network.stub(TARGET)
    for call in (stub.GetBlocks, stub.GetCommittedHashes):
        with pytest.raises(grpc.RpcError) as caught:
            call(node_pb2.BlockRangeRequest(from_height=10, to_height=3), timeout=RPC_TIMEOUT_S)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    far = stub.GetBlocks(
        node_pb2.BlockRangeRequest(from_height=10**12, to_height=10**12 + 5),
        timeout=RPC_TIMEOUT_S,
    )
    assert list(far.blocks) == []
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetAccount(node_pb2.AccountRequest(address=b"short"), timeout=RPC_TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_peers_and_foreign_chains_are_refused(network: LocalNetwork) -> None:
    peer = network.peer_stub(TARGET)
    unknown = len(network) + 7
    cases = [
        (
            lambda: peer.Sync(
                node_pb2.SyncRequest(chain_id=network.chain_id, requester=unknown, from_height=1),
                timeout=RPC_TIMEOUT_S,
            ),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (
            lambda: peer.Sync(
                node_pb2.SyncRequest(chain_id="another-chain", requester=1, from_height=1),
                timeout=RPC_TIMEOUT_S,
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
        ),
        (
            lambda: peer.FetchBatches(
                node_pb2.FetchBatchesRequest(
                    chain_id=network.chain_id, requester=TARGET, digests=[b"\x00" * 32]
                ),
                timeout=RPC_TIMEOUT_S,
            ),
            grpc.StatusCode.PERMISSION_DENIED,  # a node is not its own peer
        ),
        (
            lambda: peer.Gossip(
                iter(
                    [
                        node_pb2.PeerMessage(
                            chain_id=network.chain_id, sender=unknown, kind=Kind.HELLO
                        )
                    ]
                ),
                timeout=RPC_TIMEOUT_S,
            ),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (
            lambda: peer.Gossip(
                iter([node_pb2.PeerMessage(chain_id=network.chain_id, sender=1, kind=Kind.VOTE)]),
                timeout=RPC_TIMEOUT_S,
            ),
            grpc.StatusCode.INVALID_ARGUMENT,  # the first message must be a HELLO
        ),
    ]
    for call, code in cases:
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == code, caught.value.details()


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def test_a_flood_beyond_the_mempool_bound_is_resource_exhausted(network: LocalNetwork) -> None:
    index = SMALL_MEMPOOL_NODE
    accounts = _owned(network, index, 16)
    signed = network.sign_transfers(SMALL_MEMPOOL, accounts=accounts)
    # Interleaved by nonce (sticky_batches keeps every account in order).
    first = network.sticky_batches(signed, SMALL_MEMPOOL)[index][0]
    flood = network.sign_transfers(
        400, accounts=accounts, first_nonces=dict.fromkeys((a.index for a in accounts), 100_000)
    )
    flood_batch = [raw for txs in flood.values() for raw in txs]
    rss_before = _rss_kib(network.pid(index))
    before = _rejected(network, index)["mempool_full"]
    # Paused, it neither batches nor commits: the mempool cannot drain during the flood.
    network.put_fault(index, {"kind": "pause"})
    assert _submit(network, index, first).accepted == SMALL_MEMPOOL  # the mempool is full now
    exhausted = 0
    for _ in range(300):  # 120,000 transactions offered
        try:
            _submit(network, index, flood_batch)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
            assert "mempool" in error.details()
            exhausted += 1
    assert exhausted == 300
    assert _rejected(network, index)["mempool_full"] >= before + exhausted * len(flood_batch)
    assert network.metric(index, "aitbc_mempool_txs") <= SMALL_MEMPOOL
    assert network.status(index)["mempool_txs"] <= SMALL_MEMPOOL
    rss_after = _rss_kib(network.pid(index))
    assert rss_after - rss_before < 40 * 1024, (rss_before, rss_after)
    # Once the accepted ones commit, the node takes transactions again.
    network.clear_faults(index)
    network.wait_until(
        lambda: network.status(index)["mempool_txs"] == 0,
        timeout=40,
        what="the full mempool to drain",
    )
    nonces = network.next_nonces(index, accounts)
    assert sum(nonces.values()) == SMALL_MEMPOOL
    more = network.sign_transfers(len(accounts), accounts=accounts, first_nonces=nonces)
    reply = _submit(network, index, [raw for txs in more.values() for raw in txs])
    assert reply.accepted == len(accounts)


def test_a_peer_batch_claiming_synthetic_load_is_dropped(network: LocalNetwork) -> None:
    """Only the simulator models load (``Batch.synthetic_count``); a peer claiming two million
    synthetic transactions must not reach a block (it used to inflate every node's finality
    histogram by that much, and fifty million stalled the nodes)."""
    for index in range(len(network)):
        claimed = (index + 1) % len(network)
        batch = Batch(claimed, 10**9 + index, (), 2_000_000, 0)
        hello = node_pb2.PeerMessage(chain_id=network.chain_id, sender=claimed, kind=Kind.HELLO)
        frame = node_pb2.PeerMessage(
            chain_id=network.chain_id, sender=claimed, kind=Kind.BATCH, payload=batch.encode()
        )
        ack = network.peer_stub(index).Gossip(iter([hello, frame]), timeout=RPC_TIMEOUT_S)
        assert ack.received == 1
    network.wait_height(network.height(TARGET) + 4, timeout=30)
    for index in range(len(network)):
        samples = network.metric_samples(index)
        committed = samples[("aitbc_txs_committed_total", ())]
        assert samples[("aitbc_tx_finality_seconds_count", ())] == committed, index
        assert committed < 1_000_000, index
