"""Fuzzing real validators (hypothesis, bounded examples) through their public and peer gRPC
endpoints with garbage bytes and mutated valid messages (issue 3): every call gets an answer or
a clear client-error status (never UNKNOWN/INTERNAL), and afterwards every node is alive, keeps
committing and agrees with the others."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator

import grpc
import pytest
from aitbc_node.batch import Batch
from aitbc_node.consensus import codec
from aitbc_node.consensus.codec import Kind
from aitbc_node.consensus.signing import Signer
from aitbc_node.consensus.types import Message, QcMsg, TimeoutCertMsg
from aitbc_node.crypto import BlsScheme
from aitbc_node.crypto.keys import testnet_bls_keypair
from aitbc_node.ledger.tx import sign_transfer
from aitbc_node.proto.aitbc.v1 import node_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testnet import RPC_TIMEOUT_S, LocalNetwork, NetworkFactory

pytestmark = pytest.mark.slow

TARGET = 0
#: The peer our fuzzing streams claim to be (peers are not authenticated on an insecure port).
AS_PEER = 1
#: Statuses a hostile request may get: the node refused it on purpose.
CLIENT_ERRORS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.UNAVAILABLE,  # partitioned (fault API); not used here
}
FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
U64 = st.integers(min_value=0, max_value=2**64 - 1)
U32 = st.integers(min_value=0, max_value=2**32 - 1)


@pytest.fixture(scope="module")
def network(make_module_network: NetworkFactory) -> Iterator[LocalNetwork]:
    net = make_module_network(accounts=16)
    net.start_all()
    net.wait_ready(timeout=60)
    signed = net.sign_transfers(64)  # a few committed blocks with transactions to mutate
    net.submit_batches(net.sticky_batches(signed, 64))
    net.wait_until(
        lambda: all(net.metric(i, "aitbc_txs_committed_total") >= 64 for i in range(len(net))),
        timeout=30,
        what="the seed transfers to commit",
    )
    yield net
    # The node under fuzz (and every other) is alive, commits on, and agrees with the others.
    net.require_alive()
    net.wait_height(net.height(TARGET) + 3, timeout=40)
    top = min(net.heights().values())
    reference = net.committed_hashes(0, 1, top)
    for index in range(1, len(net)):
        assert net.committed_hashes(index, 1, top) == reference
    assert net.metric(TARGET, "aitbc_slashing_events_total") == 0
    assert "Traceback" not in net.log_text(TARGET)


@pytest.fixture(scope="module")
def valid_messages(network: LocalNetwork) -> list[tuple[int, bytes]]:
    """(kind, payload) of well-formed, correctly signed consensus messages and batches built
    from the committed chain: the seeds the mutations start from. None of them is new to the
    nodes (a re-sent proposal, vote, timeout or certificate of a committed round), so none
    is equivocation evidence."""
    top = network.height(TARGET)
    committed = [b for b in network.blocks(TARGET, 1, top) if b.transactions]
    assert committed, "no committed block carries transactions"
    scheme = BlsScheme()
    messages: list[tuple[int, bytes]] = []
    for stored in committed[:3]:
        block = codec.decode_block(stored.block)
        qc = codec.decode_qc(stored.commit_qc)
        proposer = testnet_bls_keypair(scheme, network.seed, block.proposer)
        voter = testnet_bls_keypair(scheme, network.seed, AS_PEER)
        as_proposer = Signer(block.proposer, proposer.secret, scheme, network.chain_id)
        as_peer = Signer(AS_PEER, voter.secret, scheme, network.chain_id)
        candidates: list[Message] = [
            as_proposer.proposal(block),
            as_peer.vote(block.epoch, block.round, block.height, block.id),
            as_peer.timeout(block.epoch, block.round + 1, qc),
            QcMsg(qc),
        ]
        if block.tc is not None:
            candidates.append(TimeoutCertMsg(block.tc))
        for message in candidates:
            kind, payload = codec.encode_message(message)
            messages.append((int(kind), payload))
        batch = Batch(AS_PEER, 10**9 + block.height, tuple(stored.transactions[:8]), 0, 0)
        messages.append((int(Kind.BATCH), batch.encode()))
    return messages


def _mutations() -> st.SearchStrategy[Callable[[bytes], bytes]]:
    """Byte-level mutations: flip, truncate, insert, overwrite a slice, duplicate a slice."""

    @st.composite
    def build(draw: st.DrawFn) -> Callable[[bytes], bytes]:
        how = draw(st.sampled_from(["flip", "truncate", "insert", "overwrite", "repeat"]))
        where = draw(st.floats(min_value=0.0, max_value=1.0))
        junk = draw(st.binary(min_size=1, max_size=64))
        count = draw(st.integers(min_value=1, max_value=8))

        def mutate(data: bytes) -> bytes:
            at = int(where * len(data)) if data else 0
            if how == "flip" and data:
                at = min(at, len(data) - 1)
                return data[:at] + bytes([data[at] ^ (1 << (count - 1))]) + data[at + 1 :]
            if how == "truncate":
                return data[:at]
            if how == "insert":
                return data[:at] + junk + data[at:]
            if how == "overwrite":
                return data[:at] + junk + data[at + len(junk) :]
            return data[:at] + data[at : at + 16] * count + data[at:]

        return mutate

    return build()


def _expect_answer_or_client_error(call: Callable[[], object]) -> object | None:
    try:
        return call()
    except grpc.RpcError as error:
        code = error.code()
        assert code in CLIENT_ERRORS, f"{code}: {error.details()}"
        return None


# ---------------------------------------------------------------- public endpoint


@FUZZ
@given(raws=st.lists(st.binary(max_size=1500), max_size=40))
def test_garbage_transactions_are_rejected_one_by_one(
    network: LocalNetwork, raws: list[bytes]
) -> None:
    reply = _expect_answer_or_client_error(
        lambda: network.stub(TARGET).SubmitTransactions(
            node_pb2.SubmitRequest(transactions=raws), timeout=RPC_TIMEOUT_S
        )
    )
    assert isinstance(reply, node_pb2.SubmitResponse)
    assert len(reply.results) == len(raws)
    assert reply.accepted == 0  # random bytes are never a signed transaction
    assert all(r.reason for r in reply.results)


@FUZZ
@given(data=st.data())
def test_mutated_transactions_never_break_submission(
    network: LocalNetwork, data: st.DataObject
) -> None:
    sender = network.accounts[data.draw(st.integers(0, len(network.accounts) - 1))]
    recipient = network.accounts[0].address
    raw = sign_transfer(sender.keys, network.chain_id, recipient, 1, 10**6).encode()
    mutated = [data.draw(_mutations())(raw) for _ in range(data.draw(st.integers(1, 8)))]
    reply = _expect_answer_or_client_error(
        lambda: network.stub(TARGET).SubmitTransactions(
            node_pb2.SubmitRequest(transactions=mutated), timeout=RPC_TIMEOUT_S
        )
    )
    assert isinstance(reply, node_pb2.SubmitResponse)
    assert len(reply.results) == len(mutated)
    # A far-future nonce: even an intact signature is refused (nonce_gap), so nothing enters.
    assert reply.accepted == 0


@FUZZ
@given(count=st.integers(min_value=5_001, max_value=6_000), size=st.integers(0, 8))
def test_oversized_batches_are_invalid_argument(
    network: LocalNetwork, count: int, size: int
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        network.stub(TARGET).SubmitTransactions(
            node_pb2.SubmitRequest(transactions=[b"\x01" * size] * count), timeout=RPC_TIMEOUT_S
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@FUZZ
@given(first=U64, last=U64, address=st.binary(max_size=40))
def test_garbage_queries_get_an_answer_or_a_client_error(
    network: LocalNetwork, first: int, last: int, address: bytes
) -> None:
    stub = network.stub(TARGET)
    request = node_pb2.BlockRangeRequest(from_height=first, to_height=last)
    blocks = _expect_answer_or_client_error(lambda: stub.GetBlocks(request, timeout=RPC_TIMEOUT_S))
    if blocks is not None:
        assert isinstance(blocks, node_pb2.BlockRangeResponse)
        assert len(blocks.blocks) <= 256
    hashes = _expect_answer_or_client_error(
        lambda: stub.GetCommittedHashes(request, timeout=RPC_TIMEOUT_S)
    )
    if hashes is not None:
        assert isinstance(hashes, node_pb2.CommittedHashesResponse)
    account = _expect_answer_or_client_error(
        lambda: stub.GetAccount(node_pb2.AccountRequest(address=address), timeout=RPC_TIMEOUT_S)
    )
    assert (account is not None) == (len(address) == 32)


@settings(FUZZ, max_examples=15)
@given(first=U64)
def test_commit_streams_from_any_height_answer(network: LocalNetwork, first: int) -> None:
    stream = network.stub(TARGET).StreamCommits(
        node_pb2.CommitStreamRequest(from_height=first, include_tx_ids=True), timeout=0.5
    )
    try:
        event = next(iter(stream))
        assert event.height >= min(first, 1)
    except grpc.RpcError as error:
        assert error.code() in CLIENT_ERRORS | {grpc.StatusCode.DEADLINE_EXCEEDED}, error
    finally:
        stream.cancel()


# ---------------------------------------------------------------- peer endpoints


def _gossip(network: LocalNetwork, messages: list[node_pb2.PeerMessage]) -> node_pb2.GossipAck:
    hello = node_pb2.PeerMessage(chain_id=network.chain_id, sender=AS_PEER, kind=Kind.HELLO)
    ack: node_pb2.GossipAck = network.peer_stub(TARGET).Gossip(
        iter([hello, *messages]), timeout=RPC_TIMEOUT_S
    )
    return ack


@FUZZ
@given(
    frames=st.lists(
        st.tuples(st.integers(0, 12) | U32, st.binary(max_size=2048)), min_size=1, max_size=12
    )
)
def test_gossip_with_garbage_after_a_valid_hello(
    network: LocalNetwork, frames: list[tuple[int, bytes]]
) -> None:
    messages = [
        node_pb2.PeerMessage(chain_id=network.chain_id, sender=AS_PEER, kind=k, payload=p)
        for k, p in frames
    ]
    ack = _gossip(network, messages)
    assert ack.received == len(messages)
    network.require_alive([TARGET])


@FUZZ
@given(data=st.data())
def test_gossip_with_mutated_valid_messages(
    network: LocalNetwork, valid_messages: list[tuple[int, bytes]], data: st.DataObject
) -> None:
    chosen = data.draw(st.lists(st.sampled_from(valid_messages), min_size=1, max_size=8))
    messages = []
    for kind, payload in chosen:
        mutate = data.draw(_mutations())
        messages.append(
            node_pb2.PeerMessage(
                chain_id=network.chain_id, sender=AS_PEER, kind=kind, payload=mutate(payload)
            )
        )
    ack = _gossip(network, messages)
    assert ack.received == len(messages)
    network.require_alive([TARGET])


def test_gossip_with_the_valid_messages_themselves(
    network: LocalNetwork, valid_messages: list[tuple[int, bytes]]
) -> None:
    """The unmutated seeds: old but valid messages are absorbed without evidence."""
    messages = [
        node_pb2.PeerMessage(chain_id=network.chain_id, sender=AS_PEER, kind=k, payload=p)
        for k, p in valid_messages
    ]
    assert _gossip(network, messages).received == len(messages)
    assert network.metric(TARGET, "aitbc_slashing_events_total") == 0


@FUZZ
@given(
    chain_id=st.text(max_size=70),
    requester=U32,
    from_height=U64,
    max_blocks=U32,
    digests=st.lists(st.binary(max_size=48), max_size=20),
    known=st.booleans(),
)
def test_fetch_and_sync_with_garbage(
    network: LocalNetwork,
    chain_id: str,
    requester: int,
    from_height: int,
    max_blocks: int,
    digests: list[bytes],
    known: bool,
) -> None:
    if known:  # get past the admission checks so the handlers see the garbage
        chain_id, requester = network.chain_id, AS_PEER
    peer = network.peer_stub(TARGET)
    fetched = _expect_answer_or_client_error(
        lambda: peer.FetchBatches(
            node_pb2.FetchBatchesRequest(chain_id=chain_id, requester=requester, digests=digests),
            timeout=RPC_TIMEOUT_S,
        )
    )
    synced = _expect_answer_or_client_error(
        lambda: peer.Sync(
            node_pb2.SyncRequest(
                chain_id=chain_id,
                requester=requester,
                from_height=from_height,
                max_blocks=max_blocks,
            ),
            timeout=RPC_TIMEOUT_S,
        )
    )
    if known:
        assert isinstance(fetched, node_pb2.FetchBatchesResponse)
        assert isinstance(synced, node_pb2.SyncResponse)
    elif chain_id != network.chain_id or requester not in (1, 2, 3):
        assert fetched is None and synced is None


def test_random_bytes_on_the_wire_do_not_stop_the_server(network: LocalNetwork) -> None:
    """Not even gRPC: raw garbage on the gRPC port, then a normal call still works."""
    host, port = network.nodes[TARGET].grpc.rsplit(":", 1)
    for size in (1, 24, 4096):
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            raw.sendall(os.urandom(size))
            raw.settimeout(2)
            with contextlib.suppress(TimeoutError, ConnectionError):
                raw.recv(1024)
    assert network.grpc_status(TARGET).chain_id == network.chain_id
