"""What a kubernetes run records (``state.json``: namespace, release, object references, the
admin token; mode 0600) and the names it derives (namespace, label values)."""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from orchestrator.errors import PlatformError
from orchestrator.external.helm import RenderedManifest
from orchestrator.platforms.run_dirs import STATE_FILE, StateRecord
from orchestrator.scenario.plan import Plan

__all__ = [
    "KubernetesState",
    "ObjectRef",
    "current_user",
    "label_value",
    "load_state",
    "namespace_for",
    "namespace_metadata",
    "ref_of_body",
    "ref_of_manifest",
    "save_state",
]

_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]+")
_DNS_LABEL = re.compile(r"[^a-z0-9-]+")


class ObjectRef(StateRecord):
    api_version: str
    kind: str
    name: str
    source: str = ""


class KubernetesState(StateRecord):
    """``state.json`` of a kubernetes run: what a later CLI invocation needs."""

    platform: Literal["kubernetes"] = "kubernetes"
    run_id: str
    scenario_name: str
    scenario: dict[str, Any]
    namespace: str
    release: str
    statefulset: str
    headless_service: str
    validators: int
    admin_token: str
    kubeconfig: str | None = None
    context: str | None = None
    prometheus_url: str | None = None
    bundled_prometheus: bool = False
    chaos: str = "none"
    fault_transport: str = "proxy"
    objects: list[ObjectRef] = []
    loadgen_objects: list[ObjectRef] = []
    created: str = ""
    load_started_at: float | None = None
    load_duration_s: float | None = None
    stopped_at: float | None = None


def load_state(run_dir: Path) -> KubernetesState | None:
    """The state of the kubernetes run in ``run_dir``; None when there is none (or another
    platform's). Raises PlatformError for a damaged one."""
    path = run_dir / STATE_FILE
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise PlatformError(f"{path} cannot be read: {error}") from None
    if document.get("platform") != "kubernetes":
        return None
    try:
        return KubernetesState.model_validate(document)
    except ValueError as error:
        raise PlatformError(
            f"{path} is not a kubernetes run state ({str(error)[:200]}); delete the "
            "namespace by hand (kubectl delete ns ...)"
        ) from None


def save_state(run_dir: Path, state: KubernetesState) -> None:
    """Write ``state`` atomically, readable by its owner only (it holds the admin token)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / STATE_FILE
    temporary = path.with_name(f".{STATE_FILE}.tmp{os.getpid()}")
    temporary.write_text(state.model_dump_json(indent=2) + "\n")
    temporary.chmod(0o600)
    os.replace(temporary, path)


def namespace_for(prefix: str, run_id: str) -> str:
    """``<prefix>-<run id>`` as a DNS label (lower case, at most 63 characters; a long run id
    is cut and suffixed with a hash so names stay unique)."""
    text = _DNS_LABEL.sub("-", f"{prefix}-{run_id}".lower()).strip("-")
    if len(text) <= 63:
        return text
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    return f"{text[:54].rstrip('-')}-{digest}"


def label_value(text: str) -> str:
    """``text`` as a label value (at most 63 of [A-Za-z0-9._-], alphanumeric at both ends)."""
    value = _LABEL_VALUE.sub("-", text)[:63].strip("-._")
    return value or "unknown"


def current_user() -> str:
    with contextlib.suppress(Exception):
        return getpass.getuser()
    return os.environ.get("USER", "unknown")


def ref_of_manifest(manifest: RenderedManifest) -> ObjectRef:
    return ObjectRef(
        api_version=str(manifest.body.get("apiVersion")),
        kind=manifest.kind,
        name=manifest.name,
        source=manifest.source,
    )


def ref_of_body(body: Mapping[str, Any]) -> ObjectRef:
    return ObjectRef(
        api_version=str(body["apiVersion"]), kind=str(body["kind"]), name=body["metadata"]["name"]
    )


def namespace_metadata(plan: Plan, ttl_s: float) -> tuple[dict[str, str], dict[str, str]]:
    """(labels, annotations) of a run's namespace: who made it for which run and scenario, and
    when it expires (a janitor may delete expired ones)."""
    labels = {
        "app.kubernetes.io/managed-by": "aitbc-testnet",
        "aitbc.io/run-id": label_value(plan.run_id),
        "aitbc.io/scenario": label_value(plan.name),
        "aitbc.io/user": label_value(current_user()),
    }
    expires = datetime.now(UTC) + timedelta(seconds=ttl_s)
    annotations = {
        "aitbc.io/run-id": plan.run_id,
        "aitbc.io/ttl": f"{int(ttl_s)}s",
        "aitbc.io/expires-at": expires.isoformat(timespec="seconds"),
        "aitbc.io/description": plan.description[:200],
    }
    return labels, annotations
