"""The one module over the official ``kubernetes`` client: connection, namespaces, server-side
apply, reads, pod deletion, the API server's pod proxy, pod logs, events and port-forward
tunnels (``portforward.py``). Everything above it (platforms/kubernetes/) sees plain dicts
and typed errors (``errors.py``).

Why server-side apply and not helm-python-sdk's install/upgrade: Helm stores each release
revision as a Secret (at most 1 MiB) holding base64(gzip(chart + values + rendered manifest));
the staging genesis is in the values AND in the manifest, which alone makes ~0.72 MB of that
Secret before the chart's own files (dashboards included) are counted, and the Go SDK gives no
control over what it sends to an emulated API server in tests. So the chart is rendered by the
Helm engine (external/helm.py) and its objects are applied here with
``DynamicClient.server_side_apply`` (field manager ``aitbc-testnet``, ``force_conflicts``);
"uninstall" deletes the objects, or the run's namespace.

Models of the client (37.x) are pydantic and reject fields they do not know, so every read here
goes through DynamicClient / raw JSON, never the typed models.

Errors: ``KubeConfigError`` (no kubeconfig, unknown context), ``KubeForbiddenError`` (403),
``KubeUnauthorizedError`` (401), ``KubeNotFoundError`` (404), ``KubeConflictError`` (409 after
the retries), ``KubeApiError`` otherwise: all PlatformError (exit 3). Conflicts (409), a
namespace still terminating, 429 and 5xx are retried with exponential backoff.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError
from kubernetes.stream import portforward

from orchestrator.external.http_reply import HttpReply
from orchestrator.external.kubernetes.access import (
    DEFAULT_RETRY,
    KubeAccess,
    RetryPolicy,
    context_names,
    resolve_kubeconfig,
)
from orchestrator.external.kubernetes.errors import (
    KubeApiError,
    KubeConfigError,
    KubeConflictError,
    KubeNotFoundError,
    api_error,
    error_body,
)
from orchestrator.external.kubernetes.models import (
    PodState,
    StatefulSetState,
    equality_selector,
    identity,
    is_api_server_status,
    plain,
    pod_state,
)
from orchestrator.external.kubernetes.portforward import PortForwardTunnel

__all__ = ["FIELD_MANAGER", "KubeApi"]

FIELD_MANAGER = "aitbc-testnet"
"""Server-side apply field manager of every object this tool applies."""

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
_RETRYABLE_STATUS = frozenset({409, 429, 500, 502, 503, 504})
_TERMINATING_MARKERS = ("being terminated", "NamespaceTerminating", "is being deleted")


class KubeApi:
    """A connection to one cluster. Thread-safe for concurrent calls (one urllib3 pool)."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        *,
        context: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Callable[[float], None] = time.sleep,
        request_timeout_s: float = 30.0,
    ) -> None:
        self._api_client = api_client
        self._context = context
        self._retry = retry
        self._sleep = sleep
        self._timeout = request_timeout_s
        self._cache_dir = Path(tempfile.mkdtemp(prefix="aitbc-kube-"))
        # The discovery cache goes when this object does, closed or not.
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self._cache_dir), True)
        self._dynamic: DynamicClient | None = None
        self._resources: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    # --- connection ---------------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        access: KubeAccess,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Callable[[float], None] = time.sleep,
        env: Mapping[str, str] = os.environ,
    ) -> KubeApi:
        """Load the kubeconfig and context of ``access`` (no request is sent yet). Raises
        KubeConfigError with what was looked at and what to do."""
        path = resolve_kubeconfig(access, env)
        if path is None:
            if env.get("KUBERNETES_SERVICE_HOST") and access.context is None:
                try:
                    k8s_config.load_incluster_config()
                except ConfigException as error:
                    raise KubeConfigError(f"in-cluster configuration failed: {error}") from error
                return cls(k8s_client.ApiClient(), retry=retry, sleep=sleep)
            looked = [str(Path(env.get("HOME", str(Path.home()))) / ".kube" / "config")]
            if env.get("KUBECONFIG"):
                looked.insert(0, f"$KUBECONFIG={env['KUBECONFIG']}")
            raise KubeConfigError(
                f"no kubeconfig found (looked at {', '.join(looked)}); point --kubeconfig or "
                "AITBC_KUBECONFIG (or KUBECONFIG) at one, or create a cluster with "
                "`kind create cluster`"
            )
        if access.context is not None:
            known = context_names(path)
            if access.context not in known:
                raise KubeConfigError(
                    f"context {access.context!r} is not in kubeconfig {path} (it has: "
                    f"{', '.join(known) or 'no contexts'}); pass one of those with "
                    "--kube-context / AITBC_KUBE_CONTEXT"
                )
        try:
            api_client = k8s_config.new_client_from_config(
                config_file=str(path), context=access.context, persist_config=False
            )
        except ConfigException as error:
            raise KubeConfigError(
                f"kubeconfig {path} cannot be used"
                + (f" with context {access.context!r}" if access.context else "")
                + f": {error}; fix it or choose another with --kubeconfig / --kube-context"
            ) from error
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise KubeConfigError(
                f"kubeconfig {path} is not a valid kubeconfig ({error}); fix it or choose "
                "another with --kubeconfig"
            ) from error
        return cls(api_client, context=access.context, retry=retry, sleep=sleep)

    @property
    def host(self) -> str:
        return str(self._api_client.configuration.host)

    @property
    def uses_bearer_token(self) -> bool:
        """Whether this client authenticates with a bearer token (token, exec or OIDC
        kubeconfigs). Its own ``Authorization`` header then leaves no room for another one on
        a pod-proxy request."""
        api_key = getattr(self._api_client.configuration, "api_key", None) or {}
        return bool(api_key.get("authorization") or api_key.get("BearerToken"))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._api_client.close()
        self._cleanup()

    # --- namespaces ---------------------------------------------------------------------------

    def namespace(self, name: str) -> dict[str, Any] | None:
        """The namespace object, or None when it does not exist."""
        try:
            return self._call(
                f"read namespace {name}",
                lambda: self._raw("GET", f"/api/v1/namespaces/{name}"),
            )
        except KubeNotFoundError:
            return None

    def create_namespace(
        self,
        name: str,
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
        *,
        wait_terminating_s: float = 120.0,
    ) -> dict[str, Any]:
        """Create namespace ``name``; when one of that name is still terminating, wait (with
        backoff, up to ``wait_terminating_s``) until it is gone. An existing active namespace
        with the same ``aitbc.io/run-id`` label is reused. Raises KubeConflictError when another
        owner has it."""
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": dict(labels), "annotations": dict(annotations)},
        }
        deadline = time.monotonic() + wait_terminating_s
        failures = 0
        while True:
            existing = self.namespace(name)
            if existing is not None:
                phase = (existing.get("status") or {}).get("phase", "Active")
                meta = existing.get("metadata") or {}
                if phase != "Terminating" and not meta.get("deletionTimestamp"):
                    owner = (meta.get("labels") or {}).get("aitbc.io/run-id")
                    if owner == labels.get("aitbc.io/run-id"):
                        return existing
                    raise KubeConflictError(
                        f"namespace {name} already exists and belongs to "
                        f"{'run ' + owner if owner else 'something else'}; choose another run "
                        "id or namespace prefix, or delete it",
                        409,
                    )
            else:
                try:
                    return self._call(
                        f"create namespace {name}",
                        lambda: self._raw("POST", "/api/v1/namespaces", body=body),
                        retry_conflicts=False,
                    )
                except KubeConflictError:
                    pass  # created meanwhile, or still terminating: look again
            failures += 1
            if time.monotonic() >= deadline:
                raise KubeConflictError(
                    f"namespace {name} is still terminating after {wait_terminating_s:.0f} s; "
                    "wait for it to go (kubectl get ns) or use another run id",
                    409,
                )
            self._sleep(self._retry.delay_s(failures))

    def delete_namespace(self, name: str) -> bool:
        """Delete namespace ``name`` (background cascade). False when it did not exist."""
        try:
            self._call(
                f"delete namespace {name}",
                lambda: self._raw(
                    "DELETE",
                    f"/api/v1/namespaces/{name}",
                    query={"propagationPolicy": "Background"},
                ),
            )
        except KubeNotFoundError:
            return False
        return True

    # --- objects ------------------------------------------------------------------------------

    def apply(self, body: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Server-side apply one object (created when missing). Conflicts are forced, 409s from
        concurrent writers and a terminating namespace are retried."""
        api_version, kind, name = identity(body)
        resource = self._resource(api_version, kind)
        target_namespace = namespace or (body.get("metadata") or {}).get("namespace")
        document = json.loads(json.dumps(body))
        if resource.namespaced and target_namespace:
            document.setdefault("metadata", {})["namespace"] = target_namespace
        result = self._call(
            f"apply {kind}/{name}"
            + (f" in namespace {target_namespace}" if target_namespace else ""),
            lambda: self._dyn().server_side_apply(
                resource,
                body=document,
                name=name,
                namespace=target_namespace if resource.namespaced else None,
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
                _request_timeout=self._timeout,
                serialize=False,
            ),
        )
        return plain(result)

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """One object as a dict, or None when it does not exist."""
        resource = self._resource(api_version, kind)
        try:
            result = self._call(
                f"read {kind}/{name}",
                lambda: self._dyn().get(
                    resource,
                    name=name,
                    namespace=namespace if resource.namespaced else None,
                    _request_timeout=self._timeout,
                    serialize=False,
                ),
            )
        except KubeNotFoundError:
            return None
        return plain(result)

    def list_objects(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        resource = self._resource(api_version, kind)
        result = self._call(
            f"list {kind}" + (f" in namespace {namespace}" if namespace else ""),
            lambda: self._dyn().get(
                resource,
                namespace=namespace if resource.namespaced else None,
                label_selector=label_selector,
                _request_timeout=self._timeout,
                serialize=False,
            ),
        )
        return [item for item in (plain(result).get("items") or []) if isinstance(item, dict)]

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        grace_period_s: int | None = None,
        propagation: str | None = "Background",
    ) -> bool:
        """Delete one object. False when it did not exist."""
        resource = self._resource(api_version, kind)
        try:
            self._call(
                f"delete {kind}/{name}",
                lambda: self._dyn().delete(
                    resource,
                    name=name,
                    namespace=namespace if resource.namespaced else None,
                    grace_period_seconds=grace_period_s,
                    propagation_policy=propagation,
                    _request_timeout=self._timeout,
                ),
            )
        except KubeNotFoundError:
            return False
        return True

    def serves(self, api_version: str, kind: str) -> bool:
        """Whether the cluster serves this kind (e.g. Chaos Mesh's CRDs are installed)."""
        try:
            self._resource(api_version, kind)
        except KubeNotFoundError:
            return False
        return True

    # --- workloads ----------------------------------------------------------------------------

    def statefulset_state(self, name: str, namespace: str) -> StatefulSetState | None:
        body = self.get("apps/v1", "StatefulSet", name, namespace)
        if body is None:
            return None
        meta = body.get("metadata") or {}
        spec = body.get("spec") or {}
        status = body.get("status") or {}
        return StatefulSetState(
            name=name,
            generation=int(meta.get("generation") or 0),
            observed_generation=int(status.get("observedGeneration") or 0),
            replicas=int(spec["replicas"]) if spec.get("replicas") is not None else 1,
            ready_replicas=int(status.get("readyReplicas") or 0),
            current_revision=str(status.get("currentRevision") or ""),
            update_revision=str(status.get("updateRevision") or ""),
        )

    def pods(self, namespace: str, label_selector: str | None = None) -> list[PodState]:
        bodies = self.list_objects("v1", "Pod", namespace, label_selector)
        wanted = equality_selector(label_selector)
        pods = [pod_state(body) for body in bodies]
        # The API server filters already; checking again keeps a sloppy server honest.
        return [pod for pod in pods if all(pod.labels.get(k) == v for k, v in wanted.items())]

    def pod(self, name: str, namespace: str) -> PodState | None:
        body = self.get("v1", "Pod", name, namespace)
        return None if body is None else pod_state(body)

    def delete_pod(self, name: str, namespace: str, grace_period_s: int = 0) -> bool:
        """Delete a pod right away (grace 0: SIGKILL, bypasses PodDisruptionBudgets)."""
        return self.delete(
            "v1", "Pod", name, namespace, grace_period_s=grace_period_s, propagation=None
        )

    def pod_logs(
        self, name: str, namespace: str, *, container: str | None = None, tail_lines: int = 2000
    ) -> str:
        query: dict[str, str] = {"tailLines": str(tail_lines)}
        if container:
            query["container"] = container
        data = self._call(
            f"read the log of pod {name}",
            lambda: self._raw(
                "GET", f"/api/v1/namespaces/{namespace}/pods/{name}/log", query=query, text=True
            ),
        )
        return data if isinstance(data, str) else json.dumps(data)

    def events(self, namespace: str) -> list[dict[str, Any]]:
        return self.list_objects("v1", "Event", namespace)

    # --- the API server's pod proxy -----------------------------------------------------------

    def pod_proxy(
        self,
        method: str,
        namespace: str,
        pod: str,
        port: int,
        path: str,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpReply:
        """``METHOD /api/v1/namespaces/NS/pods/POD:PORT/proxy/PATH``; returns whatever the pod
        answered (any status). Raises KubeApiError when the API server itself refuses (401/403
        from it, pod not found) or does not answer."""
        url_path = f"/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy/{path.lstrip('/')}"
        header_params = {"Accept": "application/json", **dict(headers or {})}
        if self.uses_bearer_token:  # the client's own token takes the Authorization header
            header_params = {k: v for k, v in header_params.items() if k.lower() != "authorization"}
        if body is not None:
            header_params["Content-Type"] = "application/json"
        last_error: Exception | None = None
        for attempt in range(1, self._retry.attempts + 1):
            try:
                response = self._send(method, url_path, header_params, body)
            except (urllib3.exceptions.HTTPError, OSError) as error:
                last_error = error
                self._sleep(self._retry.delay_s(attempt))
                continue
            data = response.read() or b""
            if response.status in (502, 503) and attempt < self._retry.attempts:
                self._sleep(self._retry.delay_s(attempt))
                continue
            if is_api_server_status(data, response.status):
                raise api_error(
                    f"{method} pod proxy {pod}:{port}/{path.lstrip('/')}",
                    response.status,
                    data.decode("utf-8", "replace"),
                    self._context,
                )
            return HttpReply(status=response.status, body=data)
        raise KubeApiError(
            f"the API server at {self.host} did not answer {method} {url_path}: {last_error}; "
            "check the cluster is reachable",
            0,
        )

    # --- port-forward -------------------------------------------------------------------------

    def port_forward(self, namespace: str, pod: str, port: int) -> PortForwardTunnel:
        """A local listener (127.0.0.1, free port) relaying each connection to ``pod:port``
        through the API server (one port-forward stream per connection)."""
        return PortForwardTunnel(self._open_stream, namespace, pod, port)

    def _open_stream(self, namespace: str, pod: str, port: int) -> Any:
        core = k8s_client.CoreV1Api(self._api_client)
        return portforward(
            core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port)
        )

    # --- plumbing -----------------------------------------------------------------------------

    def _dyn(self) -> DynamicClient:
        with self._lock:
            if self._dynamic is None:
                self._dynamic = self._call(
                    f"discover the API of {self.host}",
                    lambda: DynamicClient(
                        self._api_client, cache_file=str(self._cache_dir / "discovery.json")
                    ),
                )
            return self._dynamic

    def _resource(self, api_version: str, kind: str) -> Any:
        key = (api_version, kind)
        cached = self._resources.get(key)
        if cached is not None:
            return cached
        dynamic = self._dyn()
        try:
            resource = self._call(
                f"look up {kind} ({api_version})",
                lambda: dynamic.resources.get(api_version=api_version, kind=kind),
            )
        except ResourceNotFoundError as error:
            raise KubeNotFoundError(
                f"the cluster at {self.host} does not serve {kind} ({api_version}); install "
                "what provides it (e.g. Chaos Mesh for NetworkChaos/PodChaos) or turn the "
                "feature off",
                404,
            ) from error
        self._resources[key] = resource
        return resource

    def _send(
        self, method: str, path: str, headers: Mapping[str, str], body: Any
    ) -> k8s_client.rest.RESTResponse:
        serialized = self._api_client.param_serialize(
            method, path, header_params=dict(headers), body=body, auth_settings=["BearerToken"]
        )
        return self._api_client.call_api(*serialized, _request_timeout=self._timeout)

    def _raw(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        text: bool = False,
    ) -> Any:
        """One request; raises ApiException on a non-2xx status; returns JSON (or text)."""
        if query:
            path = path + "?" + "&".join(f"{key}={value}" for key, value in query.items())
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = self._send(method, path, headers, body)
        data = response.read() or b""
        if not 200 <= response.status <= 299:
            raise ApiException(status=response.status, reason=response.reason, body=data.decode())
        decoded = data.decode("utf-8", "replace")
        if text:
            return decoded
        return json.loads(decoded) if decoded.strip() else {}

    def _call(self, what: str, action: Callable[[], _T], *, retry_conflicts: bool = True) -> _T:
        failures = 0
        while True:
            try:
                return action()
            except (ApiException, DynamicApiError) as error:
                status = int(getattr(error, "status", 0) or 0)
                body = error_body(error)
                retryable = (
                    status in _RETRYABLE_STATUS and (retry_conflicts or status != 409)
                ) or (status == 403 and any(m in body for m in _TERMINATING_MARKERS))
                failures += 1
                if retryable and failures < self._retry.attempts:
                    _log.info("%s: HTTP %s, retrying (%d)", what, status, failures)
                    self._sleep(self._retry.delay_s(failures))
                    continue
                raise api_error(what, status, body, self._context) from error
            except ResourceNotFoundError:
                raise
            except (urllib3.exceptions.HTTPError, OSError) as error:
                failures += 1
                if failures < min(3, self._retry.attempts):
                    self._sleep(self._retry.delay_s(failures))
                    continue
                raise KubeApiError(
                    f"cannot {what}: the API server at {self.host} does not answer ({error}); "
                    "check that the cluster is running and the kubeconfig points at it",
                    0,
                ) from error
