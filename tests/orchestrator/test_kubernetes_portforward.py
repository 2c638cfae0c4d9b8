"""Port-forward through the emulated API server (a WebSocket served by the emulator, relayed to
a local TCP backend): the tunnel itself, the bundled Prometheus URL, and the fault API falling
back to port-forward when the API server strips the Authorization header of proxied requests
(as a real one does)."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp.web
import kmock
import pytest
from aitbc_node.ops.faults import FaultController
from aitbc_node.ops.http import start_ops_server
from prometheus_client import CollectorRegistry
from test_kubernetes_emulator import (  # noqa: F401  (the cluster fixture)
    ClusterEmulator,
    cluster,
    write_kubeconfig,
)
from test_kubernetes_platform import (  # noqa: F401  (fixtures)
    NAMESPACE,
    STS,
    make_platform,
    plan,
)

from orchestrator.external.kubernetes import KubeAccess, KubeApi
from orchestrator.faults.driver import apply_fault, clear_fault
from orchestrator.platforms.kubernetes import KubernetesPlatform
from orchestrator.scenario.plan import Plan


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.status, reply.read().decode()


async def _backend(routes: dict[str, Any]) -> tuple[aiohttp.web.AppRunner, int]:
    app = aiohttp.web.Application()
    for path, answer in routes.items():

        async def handler(request: aiohttp.web.Request, answer: Any = answer) -> Any:
            return (
                aiohttp.web.json_response(answer)
                if isinstance(answer, dict)
                else (aiohttp.web.Response(text=str(answer)))
            )

        app.router.add_get(path, handler)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


@pytest.mark.asyncio
async def test_tunnel_relays_each_connection_to_the_pod_port(
    cluster: ClusterEmulator,  # noqa: F811
    tmp_path: Path,
) -> None:
    runner, port = await _backend({"/-/ready": "Prometheus Server is Ready.\n"})
    cluster.portforward_backends[("ns", "prom-0", 9090)] = ("127.0.0.1", port)
    kubeconfig = write_kubeconfig(tmp_path / "kc", str(cluster.url).rstrip("/"))
    api = KubeApi.connect(KubeAccess(kubeconfig=kubeconfig))
    tunnel = api.port_forward("ns", "prom-0", 9090)
    try:
        for _ in range(2):  # one stream per connection
            status, text = await asyncio.to_thread(_get, f"{tunnel.url}/-/ready")
            assert (status, text) == (200, "Prometheus Server is Ready.\n")
        assert cluster.portforward_log == [("ns", "prom-0", 9090)] * 2
    finally:
        tunnel.close()
        api.close()
        await runner.cleanup()


@pytest.mark.asyncio
async def test_bundled_prometheus_is_reached_by_port_forward(
    cluster: ClusterEmulator,  # noqa: F811
    make_platform: Callable[..., KubernetesPlatform],  # noqa: F811
    plan: Plan,  # noqa: F811
) -> None:
    platform = make_platform(prometheus_url=None)
    await asyncio.to_thread(platform.deploy, plan)
    cluster.objects[kmock.resource("v1/pods"), NAMESPACE, f"{STS}-prometheus-5c9"] = {
        "metadata": {
            "name": f"{STS}-prometheus-5c9",
            "namespace": NAMESPACE,
            "labels": {
                "app.kubernetes.io/instance": "kube-test",
                "app.kubernetes.io/component": "prometheus",
            },
        },
    }
    runner, port = await _backend({"/api/v1/status/buildinfo": {"status": "success"}})
    cluster.portforward_backends[(NAMESPACE, f"{STS}-prometheus-5c9", 9090)] = ("127.0.0.1", port)
    try:
        url = await asyncio.to_thread(platform.prometheus_url)
        assert url is not None and url.startswith("http://127.0.0.1:")
        status, text = await asyncio.to_thread(_get, f"{url}/api/v1/status/buildinfo")
        assert status == 200 and json.loads(text) == {"status": "success"}
        assert await asyncio.to_thread(platform.prometheus_url) == url  # one tunnel, reused
    finally:
        await asyncio.to_thread(platform.close)
        await runner.cleanup()


@pytest.mark.asyncio
async def test_fault_api_falls_back_to_port_forward_when_the_proxy_strips_the_token(
    cluster: ClusterEmulator,  # noqa: F811
    make_platform: Callable[..., KubernetesPlatform],  # noqa: F811
    plan: Plan,  # noqa: F811
) -> None:
    cluster.strip_proxy_authorization = True
    platform = make_platform()
    await asyncio.to_thread(platform.deploy, plan)
    controllers = {index: FaultController(peer_ids=range(4)) for index in range(4)}
    servers = []
    for index, controller in controllers.items():
        server = await start_ops_server(
            "127.0.0.1",
            0,
            registry=CollectorRegistry(),
            faults=controller,
            admin_token=platform.admin_token(),
            readiness=lambda: (True, "ready"),
        )
        servers.append(server)
        pod = f"{STS}-{index}"
        cluster.proxy_backends[(NAMESPACE, pod, 9100)] = server.url
        cluster.portforward_backends[(NAMESPACE, pod, 9100)] = ("127.0.0.1", server.port)
    try:
        delay = plan.faults[2]  # validator 2
        await asyncio.to_thread(apply_fault, platform, delay)
        assert [fault.kind for fault in controllers[2].active()] == ["delay"]
        assert cluster.proxy_log[0]["headers"]["Authorization"].startswith("Bearer ")
        assert (NAMESPACE, f"{STS}-2", 9100) in cluster.portforward_log
        assert platform.state.fault_transport == "port-forward"
        assert any("strips the Authorization header" in note for note in platform.notes)
        await asyncio.to_thread(clear_fault, platform, delay)
        assert not controllers[2].active()
    finally:
        await asyncio.to_thread(platform.close)
        for server in servers:
            await server.close()


@pytest.mark.asyncio
async def test_endpoints_outside_the_cluster_are_port_forwards_to_each_validator(
    cluster: ClusterEmulator,  # noqa: F811
    make_platform: Callable[..., KubernetesPlatform],  # noqa: F811
    plan: Plan,  # noqa: F811
) -> None:
    platform = make_platform(in_cluster_endpoints=False)
    await asyncio.to_thread(platform.deploy, plan)
    servers = []
    for index in range(4):
        server = await start_ops_server(
            "127.0.0.1",
            0,
            registry=CollectorRegistry(),
            faults=FaultController(),
            admin_token="t",
            readiness=lambda index=index: (True, f"validator {index} ready"),  # type: ignore[misc]
        )
        servers.append(server)
        cluster.portforward_backends[(NAMESPACE, f"{STS}-{index}", 9100)] = (
            "127.0.0.1",
            server.port,
        )
    try:
        endpoints = await asyncio.to_thread(platform.endpoints)
        assert [e.index for e in endpoints] == [0, 1, 2, 3]
        assert all(e.grpc.startswith("127.0.0.1:") for e in endpoints)
        status, text = await asyncio.to_thread(_get, f"http://{endpoints[3].ops}/readyz")
        assert status == 200 and "validator 3 ready" in text
        assert (NAMESPACE, f"{STS}-3", 9100) in cluster.portforward_log
        genesis = json.loads(platform.genesis_path().read_text())
        assert len(genesis["validators"]) == 4
    finally:
        await asyncio.to_thread(platform.close)
        for server in servers:
            await server.close()
