"""The ops HTTP port: the real aiohttp server on 127.0.0.1 (port 0), hit with real HTTP clients
(http.client, and aiohttp's client in one test): metrics, probes, status, the fault API with
its auth, and fuzzed PUT bodies that must never produce a 500."""

from __future__ import annotations

import asyncio
import http.client
import json
import random
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aitbc_node.ledger import REJECT_REASONS
from aitbc_node.ops.faults import FaultController
from aitbc_node.ops.http import ADMIN_TOKEN_HEADER, MAX_BODY_BYTES, OpsServer, start_ops_server
from aitbc_node.ops.metrics import NodeMetrics
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Every metric DESIGN.md names (counters by their exposed _total sample names).
DESIGN_METRICS = (
    "aitbc_block_height",
    "aitbc_round",
    "aitbc_epoch",
    "aitbc_consensus_mode",
    "aitbc_blocks_committed_total",
    "aitbc_txs_submitted_total",
    "aitbc_txs_committed_total",
    "aitbc_txs_rejected_total",
    "aitbc_tx_finality_seconds_bucket",
    "aitbc_block_commit_latency_seconds_bucket",
    "aitbc_timeouts_total",
    "aitbc_slashing_events_total",
    "aitbc_mempool_txs",
    "aitbc_peers_connected",
    "aitbc_fault_active",
)


@dataclass
class NodeState:
    """What the server's callables read; tests flip it."""

    ready: tuple[bool, str] = (False, "syncing: height 3 of 10")
    alive: tuple[bool, str] = (True, "ok")
    status: dict[str, Any] = field(default_factory=lambda: {"height": 7, "mode": "balanced"})
    raise_in_readiness: bool = False

    def reset(self) -> None:
        fresh = NodeState()
        self.ready, self.alive, self.status = fresh.ready, fresh.alive, fresh.status
        self.raise_in_readiness = False

    def readiness(self) -> tuple[bool, str]:
        if self.raise_in_readiness:
            raise RuntimeError("boom")
        return self.ready

    def liveness(self) -> tuple[bool, str]:
        return self.alive


@dataclass
class Ops:
    """A running server in its own event-loop thread."""

    server: OpsServer
    faults: FaultController
    registry: CollectorRegistry
    state: NodeState
    loop: asyncio.AbstractEventLoop

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        try:
            payload = body.encode() if isinstance(body, str) else body
            connection.request(method, path, body=payload, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def json(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        raw = None if body is None else json.dumps(body)
        status, headers, data = self.request(method, path, raw, **kw)
        assert headers["Content-Type"].startswith("application/json"), (status, data)
        return status, json.loads(data)


ServerFactory = Callable[..., Ops]


@pytest.fixture(scope="module")
def start_server() -> Iterator[ServerFactory]:
    """Start real ops servers on a background event loop; all are closed at the end."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="ops-test-loop", daemon=True)
    thread.start()
    started: list[OpsServer] = []

    def start(
        admin_token: str | None = TOKEN, max_active: int = 64, with_extras: bool = True
    ) -> Ops:
        registry = CollectorRegistry()
        metrics = NodeMetrics(registry, validator_index=1)
        faults = FaultController(peer_ids={0, 2, 3}, metrics=metrics, max_active=max_active)
        state = NodeState()
        coroutine = start_ops_server(
            "127.0.0.1",
            0,
            registry=registry,
            faults=faults,
            admin_token=admin_token,
            readiness=state.readiness,
            liveness=state.liveness if with_extras else None,
            status=(lambda: state.status) if with_extras else None,
        )
        server = asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=10)
        started.append(server)
        return Ops(server, faults, registry, state, loop)

    yield start
    for server in started:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()


@pytest.fixture(scope="module")
def shared(start_server: ServerFactory) -> Ops:
    return start_server()


@pytest.fixture
def ops(shared: Ops) -> Iterator[Ops]:
    shared.faults.clear(None)
    shared.state.reset()
    yield shared
    shared.faults.clear(None)


# -- observation routes ---------------------------------------------------------------------
def test_port_zero_binds_a_real_port(ops: Ops) -> None:
    assert ops.server.port > 0
    assert ops.server.url == f"http://127.0.0.1:{ops.server.port}"


def test_metrics_expose_every_design_metric_with_preset_series(ops: Ops) -> None:
    status, headers, body = ops.request("GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    names = {name for name, _ in samples}
    for metric in DESIGN_METRICS:
        assert metric in names, metric
    for reason in (*REJECT_REASONS, "duplicate", "mempool_full", "decode_error", "too_large"):
        assert ("aitbc_txs_rejected_total", (("reason", reason),)) in samples, reason
    for kind in ("partition", "delay", "loss", "pause", "equivocate"):
        assert ("aitbc_fault_active", (("kind", kind),)) in samples, kind
    assert "process_resident_memory_bytes" in names
    assert "aitbc_validator_index" in names
    assert 'aitbc_tx_finality_seconds_bucket{le="60.0"}' in text


def test_metrics_are_classic_text_whatever_prometheus_asks_for(ops: Ops) -> None:
    """OpenMetrics costs the client library twice the CPU per scrape: the node serves the
    classic text format to everyone, Prometheus included, and no ``_created`` series."""
    accept = (
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
        "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    )
    status, headers, body = ops.request("GET", "/metrics", None, {"Accept": accept})
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b"# EOF" not in body
    assert b"aitbc_blocks_committed_total 0.0" in body
    assert b"_created" not in body
    status, _, _ = ops.request("GET", "/metrics", None, {"Accept": "text/plain;version=x.y"})
    assert status == 200


def test_healthz_reports_liveness(ops: Ops) -> None:
    assert ops.request("GET", "/healthz")[::2] == (200, b"ok\n")
    ops.state.alive = (False, "event loop stalled for 12 s")
    assert ops.request("GET", "/healthz")[::2] == (503, b"event loop stalled for 12 s\n")


def test_healthz_without_a_liveness_check_is_ok(start_server: ServerFactory) -> None:
    bare = start_server(with_extras=False)
    assert bare.request("GET", "/healthz")[::2] == (200, b"ok\n")
    status, body = bare.json("GET", "/status")
    assert status == 404
    assert "gRPC Status" in body["error"]


def test_readyz_gives_the_reason_until_ready(ops: Ops) -> None:
    status, _, body = ops.request("GET", "/readyz")
    assert (status, body) == (503, b"syncing: height 3 of 10\n")
    ops.state.ready = (True, "")
    assert ops.request("GET", "/readyz")[::2] == (200, b"ready\n")
    ops.state.raise_in_readiness = True
    status, _, body = ops.request("GET", "/readyz")
    assert (status, body) == (503, b"readiness check raised RuntimeError\n")


def test_status_is_json_from_the_callable(ops: Ops) -> None:
    assert ops.json("GET", "/status") == (200, {"height": 7, "mode": "balanced"})


def test_unknown_routes_and_methods(ops: Ops) -> None:
    assert ops.request("GET", "/nope")[0] == 404
    status, headers, body = ops.request("POST", "/admin/faults", "{}", AUTH)
    assert status == 405
    assert "PUT" in headers.get("Allow", "")
    assert json.loads(body)["error"]


# -- fault API: auth ------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_fault_api_requires_a_bearer_token(ops: Ops, method: str) -> None:
    path = "/admin/faults"
    status, headers, body = ops.request(method, path, '{"kind": "pause"}')
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in json.loads(body)["error"]
    assert ops.request(method, path, None, {"Authorization": f"Basic {TOKEN}"})[0] == 401
    assert ops.request(method, path, None, {"Authorization": "Bearer"})[0] == 401
    status, body = ops.json(method, path, headers={"Authorization": "Bearer wrong"})
    assert (status, body["error"]) == (403, "wrong admin token")
    assert ops.faults.active() == []


def test_scheme_is_case_insensitive(ops: Ops) -> None:
    assert ops.request("GET", "/admin/faults", None, {"Authorization": f"bearer {TOKEN}"})[0] == 200


def test_the_proxy_safe_admin_header_is_accepted(ops: Ops) -> None:
    """The Kubernetes API server's pod proxy strips Authorization: X-Aitbc-Admin-Token works."""
    proxied = {ADMIN_TOKEN_HEADER: TOKEN}
    status, body = ops.json("PUT", "/admin/faults", {"kind": "pause"}, headers=proxied)
    assert status == 201, body
    assert [fault.kind for fault in ops.faults.active()] == ["pause"]
    status, body = ops.json("GET", "/admin/faults", headers=proxied)
    assert status == 200 and len(body["faults"]) == 1
    assert ops.request("DELETE", "/admin/faults", None, proxied)[0] in (200, 204)
    assert ops.faults.active() == []
    status, body = ops.json(
        "PUT", "/admin/faults", {"kind": "pause"}, headers={ADMIN_TOKEN_HEADER: "wrong"}
    )
    assert (status, body["error"]) == (403, "wrong admin token")
    assert ops.request("GET", "/admin/faults", None, {ADMIN_TOKEN_HEADER: "  "})[0] == 401
    # both headers given: both must be right
    mixed = {ADMIN_TOKEN_HEADER: TOKEN, "Authorization": "Bearer wrong"}
    assert ops.request("GET", "/admin/faults", None, mixed)[0] == 403
    mixed = {ADMIN_TOKEN_HEADER: "wrong", **AUTH}
    assert ops.request("GET", "/admin/faults", None, mixed)[0] == 403
    assert ops.faults.active() == []


def test_fault_api_without_a_configured_token_is_disabled(start_server: ServerFactory) -> None:
    locked = start_server(admin_token=None)
    status, body = locked.json("PUT", "/admin/faults", {"kind": "pause"}, headers=AUTH)
    assert status == 403
    assert "AITBC_ADMIN_TOKEN" in body["error"]
    assert locked.faults.active() == []


# -- fault API: lifecycle -------------------------------------------------------------------
def test_put_get_delete_one_and_heal(ops: Ops) -> None:
    status, cut = ops.json(
        "PUT", "/admin/faults", {"kind": "partition", "peers": [2, 0]}, headers=AUTH
    )
    assert status == 201
    assert (cut["kind"], cut["params"]) == ("partition", {"peers": [0, 2]})
    assert ops.faults.drops(2, random.Random(0))
    status, slow = ops.json(
        "PUT",
        "/admin/faults",
        {"kind": "delay", "params": {"delay_ms": 80, "jitter_ms": 5}, "duration_s": 60},
        headers=AUTH,
    )
    assert status == 201
    assert slow["duration_s"] == 60.0

    status, listed = ops.json("GET", "/admin/faults", headers=AUTH)
    assert status == 200
    assert [f["id"] for f in listed["faults"]] == [cut["id"], slow["id"]]
    _, _, metrics = ops.request("GET", "/metrics")
    assert 'aitbc_fault_active{kind="partition"} 1.0' in metrics.decode()

    status, body = ops.json("DELETE", f"/admin/faults/{cut['id']}", headers=AUTH)
    assert status == 200
    assert body["cleared"] == [cut["id"]]
    assert [f["id"] for f in body["faults"]] == [slow["id"]]

    status, body = ops.json("DELETE", f"/admin/faults/{cut['id']}", headers=AUTH)
    assert (status, body["field"]) == (404, "id")
    assert cut["id"] in body["error"]

    ops.json("PUT", "/admin/faults", {"kind": "pause"}, headers=AUTH)
    assert ops.faults.paused
    status, body = ops.json("DELETE", "/admin/faults", headers=AUTH)
    assert status == 200
    assert len(body["cleared"]) == 2
    assert ops.faults.active() == []
    assert not ops.faults.paused
    _, _, metrics = ops.request("GET", "/metrics")
    assert 'aitbc_fault_active{kind="partition"} 0.0' in metrics.decode()


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ('{"kind": "meteor"}', "kind", "use one of partition, delay"),
        ('{"kind": "loss", "rate": 2}', "rate", "less than or equal to 1"),
        ('{"kind": "partition", "peers": [9]}', "peers.0", "9 is not a peer of this node"),
        ('{"kind": "partition", "peers": [1]}', "peers.0", "1 is not a peer"),  # itself
        ('{"kind": "pause", "colour": "red"}', "colour", "pause takes no such parameter"),
        ('{"kind": "delay", "delay_ms": 5, "duration_s": -1}', "duration_s", "0 < duration_s"),
        ("{not json", "<body>", "body is not JSON"),
        ('{"kind": "pause"} trailing', "<body>", "body is not JSON"),
        ("[1, 2]", "<body>", "must be a JSON object"),
        ("", "<body>", "body is empty"),
        ("1" * 5000, "<body>", "not usable JSON"),
        ("[" * 10_000, "<body>", "JSON"),
        (b"\xff\xfe{}", "<body>", "not UTF-8"),
    ],
)
def test_bad_specs_get_400_naming_the_field(
    ops: Ops, body: str | bytes, field: str, fragment: str
) -> None:
    status, headers, raw = ops.request("PUT", "/admin/faults", body, AUTH)
    assert status == 400, raw
    assert headers["Content-Type"].startswith("application/json")
    error = json.loads(raw)
    assert error["field"] == field
    assert fragment in error["error"]
    assert ops.faults.active() == []


def test_bodies_over_64_kib_are_rejected(ops: Ops) -> None:
    padding = " " * (MAX_BODY_BYTES + 1)
    status, _, raw = ops.request("PUT", "/admin/faults", '{"kind": "pause"}' + padding, AUTH)
    assert status == 413
    assert json.loads(raw)["error"]

    # without a Content-Length (chunked): aiohttp stops reading at the limit
    connection = http.client.HTTPConnection("127.0.0.1", ops.server.port, timeout=10)
    chunks = (b'{"kind": "pause"}', b" " * (MAX_BODY_BYTES + 10))
    connection.request("PUT", "/admin/faults", body=iter(chunks), headers=AUTH, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413
    connection.close()
    assert ops.faults.active() == []


def test_too_many_active_faults_get_409(start_server: ServerFactory) -> None:
    small = start_server(max_active=2)
    for _ in range(2):
        assert small.json("PUT", "/admin/faults", {"kind": "pause"}, headers=AUTH)[0] == 201
    status, body = small.json("PUT", "/admin/faults", {"kind": "pause"}, headers=AUTH)
    assert status == 409
    assert "DELETE" in body["error"]


def test_the_aiohttp_client_and_close_free_the_port() -> None:
    async def scenario() -> int:
        registry = CollectorRegistry()
        NodeMetrics(registry, validator_index=0, process_metrics=False)
        server = await start_ops_server(
            "127.0.0.1",
            0,
            registry=registry,
            faults=FaultController(),
            admin_token=TOKEN,
            readiness=lambda: (True, "synced"),
        )
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{server.url}/readyz") as response:
                    assert (response.status, await response.text()) == (200, "synced\n")
                async with session.put(
                    f"{server.url}/admin/faults", json={"kind": "equivocate"}, headers=AUTH
                ) as response:
                    assert response.status == 201
                    assert (await response.json())["kind"] == "equivocate"
        finally:
            await server.close()
        return server.port

    port = asyncio.run(scenario())
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))


def test_an_address_in_use_raises_oserror() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]

        async def attempt() -> None:
            await start_ops_server(
                "127.0.0.1",
                port,
                registry=CollectorRegistry(),
                faults=FaultController(),
                admin_token=None,
                readiness=lambda: (True, ""),
            )

        with pytest.raises(OSError):
            asyncio.run(attempt())


# -- fuzzing --------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
fault_like = st.fixed_dictionaries(
    {"kind": st.sampled_from(["partition", "delay", "loss", "pause", "equivocate", "x", ""])},
    optional={
        "peers": json_values | st.lists(st.integers(-2, 5), max_size=5),
        "rate": json_values | st.floats(-1, 2),
        "delay_ms": json_values | st.floats(-10, 70_000),
        "jitter_ms": json_values,
        "duration_s": json_values | st.floats(-1, 1e7),
        "params": json_values,
    },
)
bodies = (
    st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | fault_like.map(lambda v: json.dumps(v).encode())
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
def test_fuzzed_put_bodies_never_get_a_500(shared: Ops, body: bytes) -> None:
    status, _, raw = shared.request("PUT", "/admin/faults", body, AUTH)
    assert status in (201, 400, 409), (status, raw)
    document = json.loads(raw)
    if status == 201:
        assert document["kind"] in ("partition", "delay", "loss", "pause", "equivocate")
        shared.faults.clear(document["id"])
    else:
        assert isinstance(document["error"], str) and document["error"]


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(header=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60))
def test_fuzzed_authorization_headers_never_get_a_500(shared: Ops, header: str) -> None:
    status, _, _ = shared.request("GET", "/admin/faults", None, {"Authorization": header})
    expected = 200 if header.strip() in (f"Bearer {TOKEN}",) else None
    assert status in (200, 401, 403)
    if expected is not None:
        assert status == expected
