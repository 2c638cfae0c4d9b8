"""Node faults on a cluster: the shared node fault injector (``faults/node_faults.py``) over a
transport that reaches each pod's ops port, plus Chaos Mesh objects when the run uses them.

The API server's pod proxy is tried first. It removes the ``Authorization`` header of proxied
requests once it has authenticated the caller (and a kubeconfig that authenticates with a
bearer token takes that header itself), so the node answers 401; the transport then switches,
once for the run, to a port-forward to the pod's ops port, where the header arrives intact,
and says so in the run's notes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import PlatformError
from orchestrator.external.http_reply import HttpReply
from orchestrator.external.kubernetes import KubeApi, PortForwardTunnel
from orchestrator.external.node_client import NodeUnreachable, ops_request
from orchestrator.faults.node_faults import NodeFaultInjector
from orchestrator.platforms.kubernetes.chaos import CHAOS_KINDS, ChaosMesh
from orchestrator.platforms.kubernetes.state import KubernetesState, ObjectRef
from orchestrator.scenario.plan import PlannedFault

__all__ = ["OPS_PORT", "KubernetesFaults", "PodOpsTransport"]

OPS_PORT = 9100
OPS_TIMEOUT_S = 10.0
"""Seconds a pod's ops port may take to answer one request through a port-forward."""


class PodOpsTransport:
    """Reaches validator ``index``'s ops port (``/admin/...``) through the pod proxy, falling
    back to a port-forward (see the module docstring)."""

    def __init__(
        self,
        api: Callable[[], KubeApi],
        state: Callable[[], KubernetesState],
        pod_name: Callable[[int], str],
        tunnel: Callable[[str, int], PortForwardTunnel],
        on_switch: Callable[[str], None],
    ) -> None:
        self._api = api
        self._state = state
        self._pod_name = pod_name
        self._tunnel = tunnel
        self._on_switch = on_switch
        self._lock = threading.Lock()

    def request(
        self, index: int, method: str, path: str, body: dict[str, Any] | None = None
    ) -> HttpReply:
        state = self._state()
        if state.fault_transport == "proxy" and self._api().uses_bearer_token:
            self._switch(
                "the kubeconfig authenticates with a bearer token, which takes the "
                "Authorization header of pod-proxy requests: the node fault API is reached by "
                "port-forward"
            )
        if state.fault_transport == "port-forward":
            return self._forwarded(index, method, path, body)
        reply = self._proxied(index, method, path, body)
        if reply.status == 401:
            self._switch(
                "the API server strips the Authorization header of pod-proxy requests: the "
                "node fault API is reached by port-forward for this run"
            )
            reply = self._forwarded(index, method, path, body)
        return reply

    def _switch(self, note: str) -> None:
        with self._lock:
            state = self._state()
            if state.fault_transport != "port-forward":
                state.fault_transport = "port-forward"
                self._on_switch(note)

    def _proxied(
        self, index: int, method: str, path: str, body: dict[str, Any] | None
    ) -> HttpReply:
        state = self._state()
        reply = self._api().pod_proxy(
            method,
            state.namespace,
            self._pod_name(index),
            OPS_PORT,
            path,
            body=body,
            headers={
                "Authorization": f"Bearer {state.admin_token}",
                "X-Aitbc-Admin-Token": state.admin_token,
            },
        )
        return reply

    def _forwarded(
        self, index: int, method: str, path: str, body: dict[str, Any] | None
    ) -> HttpReply:
        pod = self._pod_name(index)
        tunnel = self._tunnel(pod, OPS_PORT)
        try:
            return ops_request(
                tunnel.address,
                method,
                path,
                body,
                token=self._state().admin_token,
                timeout_s=OPS_TIMEOUT_S,
                who=f"validator {index}",
            )
        except NodeUnreachable as error:
            raise PlatformError(
                f"validator {index}: the fault API did not answer through the port-forward "
                f"to {pod}:{OPS_PORT} ({error}; {', '.join(tunnel.errors) or 'no detail'})"
            ) from None


@dataclass
class _ChaosApplied:
    refs: list[ObjectRef] = field(default_factory=list)


class KubernetesFaults:
    """The ``NodeFaults`` of a kubernetes run: Chaos Mesh objects for the kinds it has when
    the run uses it, the node fault API otherwise."""

    def __init__(
        self,
        injector: NodeFaultInjector,
        chaos: ChaosMesh,
        state: Callable[[], KubernetesState],
    ) -> None:
        self._injector = injector
        self._chaos = chaos
        self._state = state
        self._lock = threading.Lock()
        self._applied: dict[int, _ChaosApplied] = {}

    def _uses_chaos(self, fault: PlannedFault) -> bool:
        return self._state().chaos == "chaos-mesh" and fault.kind in CHAOS_KINDS

    def inject(self, fault: PlannedFault, expire_after_s: float | None = None) -> None:
        if not self._uses_chaos(fault):
            self._injector.inject(fault, expire_after_s)
            return
        applied = _ChaosApplied()
        with self._lock:
            self._applied[fault.index] = applied
        self._chaos.apply(fault, self._state(), applied.refs)

    def remove(self, fault: PlannedFault) -> None:
        if not self._uses_chaos(fault):
            self._injector.remove(fault)
            return
        with self._lock:
            applied = self._applied.pop(fault.index, None)
        refs = applied.refs if applied is not None else self._chaos.refs_of(fault, self._state())
        for ref in refs:
            self._chaos.delete(ref)

    def heal(self, ids: Sequence[int] | None) -> None:
        self._injector.heal(ids)
        with self._lock:
            refs = [ref for applied in self._applied.values() for ref in applied.refs]
            for applied in self._applied.values():
                applied.refs.clear()
        for ref in refs:
            self._chaos.delete(ref)

    def active_faults(self) -> dict[int, list[dict[str, Any]]]:
        return self._injector.active_faults()

    def clear_all(self) -> None:
        """Clear every fault this object applied (teardown); PlatformError listing failures."""
        errors: list[str] = []
        with self._lock:
            pending = list(self._applied.items())
            self._applied.clear()
        for _, applied in pending:
            for ref in applied.refs:
                try:
                    self._chaos.delete(ref)
                except PlatformError as error:
                    errors.append(str(error))
        try:
            self._injector.clear_all()
        except PlatformError as error:
            errors.append(str(error))
        if errors:
            raise PlatformError("; ".join(errors))
