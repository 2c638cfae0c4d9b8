"""Routing by account: every transaction of an account reaches one validator only, failed
batches go back to the same validator, and a validator that stays down hands its accounts to
another one from the nonces that one has committed (``GetAccount``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from aitbc_node.genesis import Genesis
from aitbc_node.ledger.tx import decode_transaction
from aitbc_node.proto.aitbc.v1 import node_pb2, node_pb2_grpc
from loadgen_node_double import ChainDouble, NodeDouble

from loadgen.accounts import LoadAccount, load_accounts
from loadgen.batches import TransferSigner
from loadgen.client import submit_burst
from loadgen.routing import Lane, pick_destination, route_accounts, split_lanes

REPO = Path(__file__).resolve().parents[2]


class RoutingChain(ChainDouble):
    """The chain double, also recording which targets each sender's transactions reached."""

    def __init__(self, chain_id: str) -> None:
        super().__init__(chain_id=chain_id)
        self.targets_of: dict[bytes, set[str]] = defaultdict(set)

    def submit(self, raws: list[bytes], target: str) -> list[node_pb2.TxResult]:
        for raw in raws:
            sender = decode_transaction(raw).sender
            with self.lock:
                self.targets_of[sender].add(target)
        return super().submit(raws, target)

    def next_nonce(self, address: bytes) -> int:
        with self.lock:
            used = {nonce for sender, nonce in self.nonce_owner if sender == address}
        nonce = 0
        while nonce in used:
            nonce += 1
        return nonce


class AccountNode(NodeDouble):
    """The node double with ``GetAccount`` (next nonce = first nonce not yet accepted)."""

    def GetAccount(
        self, request: node_pb2.AccountRequest, context: grpc.ServicerContext
    ) -> node_pb2.AccountState:
        chain = self.chain
        assert isinstance(chain, RoutingChain)
        return node_pb2.AccountState(
            address=request.address, nonce=chain.next_nonce(bytes(request.address))
        )


class Cluster:
    def __init__(self, chain: RoutingChain, count: int) -> None:
        self.chain = chain
        self.servers: list[grpc.Server] = []
        self.targets: list[str] = []
        for _ in range(count):
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
            port = server.add_insecure_port("127.0.0.1:0")
            target = f"127.0.0.1:{port}"
            node_pb2_grpc.add_NodeServicer_to_server(AccountNode(chain, target), server)
            server.start()
            self.servers.append(server)
            self.targets.append(target)

    def stop(self) -> None:
        self.chain.close_streams()
        for server in self.servers:
            server.stop(grace=0.2).wait(5)


@pytest.fixture
def cluster(genesis: Genesis) -> Iterator[Cluster]:
    running = Cluster(RoutingChain(genesis.chain_id), count=3)
    try:
        yield running
    finally:
        running.stop()


def dead_target() -> str:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{closed.getsockname()[1]}"


def one_target_each(chain: RoutingChain) -> dict[bytes, str]:
    with chain.lock:
        seen = {sender: set(targets) for sender, targets in chain.targets_of.items()}
    assert seen, "no transaction reached the validators"
    spread = {sender: targets for sender, targets in seen.items() if len(targets) != 1}
    assert not spread, f"accounts sent to several validators: {spread}"
    return {sender: next(iter(targets)) for sender, targets in seen.items()}


# ----------------------------------------------------------------------------- pure routing


def accounts(genesis: Genesis, count: int) -> list[LoadAccount]:
    return load_accounts(genesis, range(count))


def test_accounts_route_to_one_target_by_index(genesis: Genesis) -> None:
    routed = route_accounts(accounts(genesis, 7), ["a", "b", "c"])
    assert {t: [a.index for a in group] for t, group in routed.items()} == {
        "a": [0, 3, 6],
        "b": [1, 4],
        "c": [2, 5],
    }
    moved = route_accounts(accounts(genesis, 4), ["a", "b"], overrides={1: "a", 3: "c"})
    assert {t: [a.index for a in group] for t, group in moved.items()} == {
        "a": [0, 1, 2],
        "c": [3],
    }


def test_split_lanes_never_gives_an_empty_lane(genesis: Genesis) -> None:
    group = accounts(genesis, 3)
    assert [[a.index for a in part] for part in split_lanes(group, 2)] == [[0, 2], [1]]
    assert len(split_lanes(group, 10)) == 3


def test_lane_resends_a_failed_batch_first_and_detects_a_down_target(genesis: Genesis) -> None:
    lane = Lane("a", accounts(genesis, 2), TransferSigner(genesis.chain_id), batch_size=4)
    first, resend = lane.take()
    assert not resend and first.nonces == ((0, 0), (1, 0), (0, 1), (1, 1))
    lane.failed(first, "UNAVAILABLE", now=10.0)
    assert not lane.down(now=12.0, down_after_s=5.0)
    again, resend = lane.take()
    assert resend and again is first
    lane.failed(again, "DEADLINE_EXCEEDED", now=14.0)
    assert lane.down(now=15.0, down_after_s=5.0)  # failing since 10.0
    lane.take()
    lane.succeeded()
    assert not lane.down(now=100.0, down_after_s=5.0)
    lane.failed(first, "RESOURCE_EXHAUSTED", now=100.0)  # back-pressure, not down
    assert not lane.down(now=200.0, down_after_s=5.0)


def test_destination_is_the_next_healthy_target() -> None:
    targets = ["a", "b", "c"]
    assert pick_destination("b", targets, lambda t: True) == "c"
    assert pick_destination("c", targets, lambda t: t != "a") == "b"
    assert pick_destination("a", targets, lambda t: False) is None


# ----------------------------------------------------------------------------- burst client


def test_burst_sends_each_account_to_one_validator(cluster: Cluster, genesis: Genesis) -> None:
    result = submit_burst(cluster.targets, genesis, count=600, batch_size=25, in_flight=6)
    assert result.all_accepted, result.rejected
    routes = one_target_each(cluster.chain)
    assert set(routes.values()) == set(cluster.targets)  # and the load reaches every one
    for index in range(len(genesis.accounts) - 1):
        address = genesis.accounts[index].address_bytes
        assert routes[address] == cluster.targets[index % len(cluster.targets)]


def test_burst_starts_from_the_committed_nonces(cluster: Cluster, genesis: Genesis) -> None:
    first = submit_burst(cluster.targets, genesis, count=64, batch_size=16, accounts=[0, 1, 2])
    second = submit_burst(cluster.targets, genesis, count=64, batch_size=16, accounts=[0, 1, 2])
    assert first.all_accepted and second.all_accepted, second.rejected  # no stale nonce
    assert sum(second.next_nonces.values()) == 128


def test_a_down_validator_hands_its_accounts_over(cluster: Cluster, genesis: Genesis) -> None:
    dead = dead_target()
    targets = [dead, *cluster.targets[:2]]
    result = submit_burst(targets, genesis, count=300, batch_size=20, timeout_s=0.5, max_attempts=2)
    assert result.all_accepted, result.rejected
    assert result.per_target[dead] > 0  # it was tried, and the batches went elsewhere
    routes = one_target_each(cluster.chain)
    moved = [genesis.accounts[i].address_bytes for i in range(0, 16, 3)]  # routed to `dead`
    assert {routes[address] for address in moved} == {targets[1]}
    assert cluster.chain.rejected == {}  # every nonce in order, none reused


# ----------------------------------------------------------------------------- Locust


def test_locust_sends_each_account_to_one_validator(
    cluster: Cluster, genesis_path: Path, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "AITBC_TARGETS": ",".join(cluster.targets),
        "AITBC_GENESIS": str(genesis_path),
        "AITBC_TPS": "300",
        "AITBC_BATCH_SIZE": "10",
        "AITBC_PROBE_INTERVAL_S": "0",
        "AITBC_LOADGEN_METRICS_PORT": "0",
    }
    command = [
        sys.executable, "-m", "locust", "-f", str(REPO / "loadgen" / "locustfile.py"),
        "--headless", "-u", "3", "-r", "3", "--run-time", "3s", "--only-summary",
        "--stop-timeout", "2",
    ]  # fmt: skip
    log_path = tmp_path / "locust.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        assert process.wait(timeout=60) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    routes = one_target_each(cluster.chain)
    assert len(routes) == 16 and set(routes.values()) == set(cluster.targets)
    assert cluster.chain.rejected == {}
