"""An emulated Kubernetes API server for the kubernetes platform tests: kmock's
``KubernetesEmulator`` (a real HTTP server on 127.0.0.1 keeping objects in memory) plus the
few things kmock 0.8 cannot emulate, implemented here and tested below:

* namespaces: kmock's URL parser fails on ``/api/v1/namespaces`` (it reads ``namespaces`` as
  the namespace prefix of a path), so namespace requests are served by this class;
* server-side apply of a missing object creates it (kmock's PATCH only updates);
* the API server's pod proxy: ``/api/v1/namespaces/NS/pods/POD:PORT/proxy/PATH`` is relayed
  to a backend registered per pod (in the tests: the REAL node ops server with its fault API);
  with ``strip_proxy_authorization`` it drops the ``Authorization`` header on the way, as a
  real API server does once it has authenticated the caller;
* port-forward: ``/api/v1/namespaces/NS/pods/POD/portforward?ports=P`` is a WebSocket
  (``v4.channel.k8s.io``: channel 0 data, channel 1 errors, each opened by a frame carrying
  the port) relayed to a TCP backend registered per pod. kmock's reactions cannot answer a
  WebSocket upgrade, so this class serves it with aiohttp directly.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web
import attrs
import kmock
import pytest
import pytest_asyncio
import yaml

NAMESPACE_PATH = re.compile(r"^/api/v1/namespaces(?:/(?P<name>[^/]+))?/?$")
PORTFORWARD_PATH = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<pod>[^/]+)/portforward$")
PROXY_PATH = re.compile(
    r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<pod>[^/:]+):(?P<port>\d+)/proxy(?P<rest>/.*)?$"
)
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"

# The kinds the chart renders (and the platform reads), as the discovery API announces them.
RESOURCES: dict[str, tuple[str, bool]] = {
    "v1/pods": ("Pod", True),
    "v1/configmaps": ("ConfigMap", True),
    "v1/secrets": ("Secret", True),
    "v1/services": ("Service", True),
    "v1/serviceaccounts": ("ServiceAccount", True),
    "v1/events": ("Event", True),
    "apps/v1/statefulsets": ("StatefulSet", True),
    "apps/v1/deployments": ("Deployment", True),
    "batch/v1/jobs": ("Job", True),
    "policy/v1/poddisruptionbudgets": ("PodDisruptionBudget", True),
    "rbac.authorization.k8s.io/v1/roles": ("Role", True),
    "rbac.authorization.k8s.io/v1/rolebindings": ("RoleBinding", True),
    "networking.k8s.io/v1/networkpolicies": ("NetworkPolicy", True),
    "chaos-mesh.org/v1alpha1/networkchaos": ("NetworkChaos", True),
    "chaos-mesh.org/v1alpha1/podchaos": ("PodChaos", True),
}


@attrs.define(kw_only=True)
class ClusterEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with namespaces, apply-creates and a pod proxy (see the module doc)."""

    namespaces: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    namespace_log: list[tuple[str, str, dict[str, str], Any]] = attrs.field(factory=list)
    proxy_backends: dict[tuple[str, str, int], str] = attrs.field(factory=dict)
    proxy_log: list[dict[str, Any]] = attrs.field(factory=list)
    namespace_delete_keeps: bool = False
    """True: a deleted namespace stays Terminating (until a test removes it)."""
    strip_proxy_authorization: bool = False
    """True: the pod proxy drops the Authorization header, as a real API server does."""
    portforward_backends: dict[tuple[str, str, int], tuple[str, int]] = attrs.field(factory=dict)
    portforward_log: list[tuple[str, str, int]] = attrs.field(factory=list)

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        match = NAMESPACE_PATH.match(raw_request.path)
        if match is not None:
            return await self._serve_namespace(raw_request, match["name"])
        match = PROXY_PATH.match(raw_request.path)
        if match is not None:
            return await self._serve_proxy(raw_request, match)
        match = PORTFORWARD_PATH.match(raw_request.path)
        if match is not None:
            return await self._serve_portforward(raw_request, match)
        return await super().__call__(raw_request)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        content_type = str(request.headers.get("Content-Type", ""))
        if (
            request.method == kmock.method.PATCH
            and content_type.startswith(APPLY_CONTENT_TYPE)
            and request.resource is not None
            and request.name is not None
        ):
            key = (request.resource, request.namespace, request.name)
            if key not in self.objects or self.objects[key].deleted:
                body = (
                    request.data if isinstance(request.data, dict) else yaml.safe_load(request.text)
                )
                body = dict(body)
                meta = dict(body.get("metadata") or {})
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("generation", 1)
                body["metadata"] = meta
                self.objects[key] = body
                return aiohttp.web.json_response(body, status=201)
        return await super()._handle(request)

    # --- namespaces -----------------------------------------------------------------------

    async def _serve_namespace(
        self, raw: aiohttp.web.BaseRequest, name: str | None
    ) -> aiohttp.web.StreamResponse:
        body: Any = None
        if raw.can_read_body:
            text = await raw.text()
            body = json.loads(text) if text.strip() else None
        self.namespace_log.append((raw.method, raw.path, dict(raw.query), body))
        if raw.method == "POST" and name is None:
            ns_name = str(((body or {}).get("metadata") or {}).get("name"))
            if ns_name in self.namespaces:
                return _status(409, "AlreadyExists", f'namespaces "{ns_name}" already exists')
            obj = dict(body)
            obj["metadata"] = {**obj.get("metadata", {}), "uid": str(uuid.uuid4())}
            obj["status"] = {"phase": "Active"}
            self.namespaces[ns_name] = obj
            return aiohttp.web.json_response(obj, status=201)
        if raw.method == "GET" and name is None:
            return aiohttp.web.json_response(
                {"kind": "NamespaceList", "items": list(self.namespaces.values())}
            )
        if name is None or name not in self.namespaces:
            return _status(404, "NotFound", f'namespaces "{name}" not found')
        if raw.method == "GET":
            return aiohttp.web.json_response(self.namespaces[name])
        if raw.method == "DELETE":
            obj = self.namespaces[name]
            if self.namespace_delete_keeps:
                obj["status"] = {"phase": "Terminating"}
                obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
            else:
                del self.namespaces[name]
            return aiohttp.web.json_response(obj)
        return _status(405, "MethodNotAllowed", f"{raw.method} on a namespace")

    # --- pod proxy ------------------------------------------------------------------------

    async def _serve_proxy(
        self, raw: aiohttp.web.BaseRequest, match: re.Match[str]
    ) -> aiohttp.web.StreamResponse:
        body = await raw.read()
        key = (match["ns"], match["pod"], int(match["port"]))
        rest = match["rest"] or "/"
        self.proxy_log.append(
            {
                "method": raw.method,
                "path": raw.path,
                "namespace": key[0],
                "pod": key[1],
                "port": key[2],
                "rest": rest,
                "headers": dict(raw.headers),
                "body": body,
            }
        )
        backend = self.proxy_backends.get(key)
        if backend is None:
            return _status(404, "NotFound", f'pods "{key[1]}" not found')
        forwarded = _FORWARDED_HEADERS - (
            {"authorization"} if self.strip_proxy_authorization else set()
        )
        headers = {k: v for k, v in raw.headers.items() if k.lower() in forwarded}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                raw.method, backend + rest, data=body or None, headers=headers
            ) as reply,
        ):
            payload = await reply.read()
            return aiohttp.web.Response(
                status=reply.status,
                body=payload,
                content_type=reply.content_type,
            )

    # --- port-forward ---------------------------------------------------------------------

    async def _serve_portforward(
        self, raw: aiohttp.web.BaseRequest, match: re.Match[str]
    ) -> aiohttp.web.StreamResponse:
        port = int(raw.query.get("ports", "0"))
        key = (match["ns"], match["pod"], port)
        self.portforward_log.append(key)
        backend = self.portforward_backends.get(key)
        if backend is None:
            return _status(404, "NotFound", f'pods "{key[1]}" not found')
        ws = aiohttp.web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(raw)  # type: ignore[arg-type]
        reader, writer = await asyncio.open_connection(*backend)
        prefix = port.to_bytes(2, "little")
        await ws.send_bytes(b"\x00" + prefix)
        await ws.send_bytes(b"\x01" + prefix)

        async def upstream() -> None:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.BINARY and message.data[:1] == b"\x00":
                    writer.write(message.data[1:])
                    await writer.drain()
            writer.close()

        async def downstream() -> None:
            while chunk := await reader.read(65536):
                await ws.send_bytes(b"\x00" + chunk)
            await ws.close()

        relay = asyncio.ensure_future(upstream())
        try:
            await downstream()
        finally:
            relay.cancel()
            writer.close()
        return ws


_FORWARDED_HEADERS = {"authorization", "content-type", "accept"}


def _status(code: int, reason: str, message: str) -> aiohttp.web.Response:
    return aiohttp.web.json_response(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": reason,
            "message": message,
            "code": code,
        },
        status=code,
    )


def declare_resources(emulator: ClusterEmulator) -> None:
    for key, (kind, namespaced) in RESOURCES.items():
        emulator.resources[key] = kmock.ResourceInfo(
            kind=kind,
            namespaced=namespaced,
            verbs={"get", "list", "create", "patch", "delete", "update"},
            subresources={"status"} if kind in ("StatefulSet", "Deployment", "Job") else set(),
        )


def write_kubeconfig(path: Path, server: str, context: str = "emulated") -> Path:
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulated", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {}}],
        "contexts": [{"name": context, "context": {"cluster": "emulated", "user": "tester"}}],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(document))
    return path


@pytest_asyncio.fixture
async def cluster() -> AsyncIterator[ClusterEmulator]:
    """The emulated API server, listening on 127.0.0.1 (stopped after the test)."""
    async with ClusterEmulator() as emulator, kmock.Server(emulator):
        declare_resources(emulator)
        yield emulator


# --- the emulator's own checks --------------------------------------------------------------


@pytest.mark.asyncio
async def test_emulator_serves_namespaces_and_apply_creates(cluster: ClusterEmulator) -> None:
    async with aiohttp.ClientSession(base_url=str(cluster.url)) as session:
        created = await session.post(
            "/api/v1/namespaces", json={"metadata": {"name": "run-1", "labels": {"a": "b"}}}
        )
        assert created.status == 201
        again = await session.post("/api/v1/namespaces", json={"metadata": {"name": "run-1"}})
        assert again.status == 409
        applied = await session.patch(
            "/apis/apps/v1/namespaces/run-1/statefulsets/v",
            data=json.dumps({"metadata": {"name": "v"}, "spec": {"replicas": 2}}),
            headers={"Content-Type": APPLY_CONTENT_TYPE},
        )
        assert applied.status == 201
        fetched = await session.get("/apis/apps/v1/namespaces/run-1/statefulsets/v")
        assert (await fetched.json())["spec"]["replicas"] == 2
        deleted = await session.delete("/api/v1/namespaces/run-1")
        assert deleted.status == 200
        missing = await session.get("/api/v1/namespaces/run-1")
        assert missing.status == 404


@pytest.mark.asyncio
async def test_emulator_proxy_relays_to_the_backend(cluster: ClusterEmulator) -> None:
    seen: list[tuple[str, str | None]] = []

    async def backend(request: aiohttp.web.Request) -> aiohttp.web.Response:
        seen.append((request.path, request.headers.get("Authorization")))
        return aiohttp.web.json_response({"ok": True}, status=201)

    app = aiohttp.web.Application()
    app.router.add_put("/admin/faults", backend)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        cluster.proxy_backends[("ns", "pod-0", 9100)] = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(base_url=str(cluster.url)) as session:
            reply = await session.put(
                "/api/v1/namespaces/ns/pods/pod-0:9100/proxy/admin/faults",
                json={"kind": "pause"},
                headers={"Authorization": "Bearer t"},
            )
            assert reply.status == 201
            unknown = await session.put("/api/v1/namespaces/ns/pods/pod-1:9100/proxy/x")
            assert unknown.status == 404
    finally:
        await runner.cleanup()
    assert seen == [("/admin/faults", "Bearer t")]
    await asyncio.sleep(0)
