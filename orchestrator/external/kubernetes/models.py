"""What the Kubernetes API answers, as plain records: a StatefulSet's rollout state, a pod's
state, a pod-proxy answer; and the helpers that read raw JSON (the client's typed models reject
fields they do not know, so nothing here uses them)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.external.kubernetes.errors import KubeApiError

__all__ = [
    "PodState",
    "StatefulSetState",
    "equality_selector",
    "identity",
    "is_api_server_status",
    "plain",
    "pod_state",
]


@dataclass(frozen=True)
class StatefulSetState:
    """What readiness needs from a StatefulSet (``status`` fields; 0/"" when absent)."""

    name: str
    generation: int
    observed_generation: int
    replicas: int
    ready_replicas: int
    current_revision: str
    update_revision: str

    @property
    def ready(self) -> bool:
        """Rolled out and every replica ready: the controller saw the latest spec, every replica
        is ready and no update is in flight."""
        return (
            self.observed_generation >= self.generation
            and self.ready_replicas >= self.replicas
            and self.current_revision == self.update_revision
            and bool(self.update_revision)
        )

    def describe(self) -> str:
        return (
            f"StatefulSet {self.name}: {self.ready_replicas}/{self.replicas} ready, generation "
            f"{self.generation} observed {self.observed_generation}, revision "
            f"{self.current_revision or '-'} -> {self.update_revision or '-'}"
        )


@dataclass(frozen=True)
class PodState:
    name: str
    uid: str
    phase: str
    ready: bool
    restarts: int
    deleting: bool
    labels: Mapping[str, str] = field(default_factory=dict)


def equality_selector(selector: str | None) -> dict[str, str]:
    """``a=b,c=d`` as a dict (other selector forms are left to the API server)."""
    wanted: dict[str, str] = {}
    for part in (selector or "").split(","):
        key, sep, value = part.partition("=")
        if sep and not key.endswith(("!", "=")) and "=" not in value:
            wanted[key.strip()] = value.strip()
    return wanted


def identity(body: Mapping[str, Any]) -> tuple[str, str, str]:
    api_version = body.get("apiVersion")
    kind = body.get("kind")
    name = (body.get("metadata") or {}).get("name")
    if not (isinstance(api_version, str) and isinstance(kind, str) and isinstance(name, str)):
        raise KubeApiError(
            f"cannot apply an object without apiVersion, kind and metadata.name "
            f"(apiVersion={api_version!r}, kind={kind!r}, name={name!r})"
        )
    return api_version, kind, name


def plain(result: Any) -> dict[str, Any]:
    """A dict from a DynamicClient answer (raw HTTP response with ``serialize=False``)."""
    if isinstance(result, dict):
        return result
    data = getattr(result, "data", None)
    if isinstance(data, bytes | str):
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        try:
            decoded = json.loads(text) if text.strip() else {}
        except ValueError:
            return {}
        return decoded if isinstance(decoded, dict) else {}
    to_dict = getattr(result, "to_dict", None)
    if callable(to_dict):
        value = to_dict()
        return value if isinstance(value, dict) else {}
    return {}


def pod_state(body: Mapping[str, Any]) -> PodState:
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    conditions = status.get("conditions") or []
    ready = any(
        c.get("type") == "Ready" and str(c.get("status")) == "True"
        for c in conditions
        if isinstance(c, dict)
    )
    restarts = sum(
        int(c.get("restartCount") or 0)
        for c in status.get("containerStatuses") or []
        if isinstance(c, dict)
    )
    return PodState(
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        phase=str(status.get("phase", "")),
        ready=ready,
        restarts=restarts,
        deleting=bool(meta.get("deletionTimestamp")),
        labels=dict(meta.get("labels") or {}),
    )


def is_api_server_status(data: bytes, status: int) -> bool:
    """Whether an error answer on a proxy path came from the API server itself (a Status
    object) rather than from the pod."""
    if 200 <= status <= 299:
        return False
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    return isinstance(document, dict) and document.get("kind") == "Status"
