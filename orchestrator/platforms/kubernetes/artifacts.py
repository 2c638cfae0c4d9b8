"""What a kubernetes run leaves for diagnosis: every pod's log, the namespace's events, the
status of the StatefulSet and every pod, the load generator's results and the run state
(its admin token removed)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path

from orchestrator.errors import PlatformError
from orchestrator.external.kubernetes import KubeApi
from orchestrator.faults.node_faults import parallel
from orchestrator.platforms.kubernetes.load import KubernetesLoad
from orchestrator.platforms.kubernetes.state import KubernetesState
from orchestrator.platforms.run_dirs import STATE_FILE

__all__ = ["collect_cluster_artifacts"]


def collect_cluster_artifacts(
    api: KubeApi,
    state: KubernetesState,
    dest: Path,
    *,
    notes: Sequence[str],
    load: KubernetesLoad,
) -> None:
    """Pod logs (``logs/<pod>.log``), events (``events.json``), the status of the
    StatefulSet and every pod (``status.json``, with ``notes``), load results (``load/``) and
    the state (token removed) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    namespace = state.namespace
    pods = api.pods(namespace)
    logs = dest / "logs"
    logs.mkdir(exist_ok=True)

    def fetch(name: str) -> None:
        try:
            text = api.pod_logs(name, namespace)
        except PlatformError as error:
            text = f"(no log: {error})\n"
        (logs / f"{name}.log").write_text(text)

    parallel(fetch, [pod.name for pod in pods])
    (dest / "events.json").write_text(json.dumps(api.events(namespace), indent=2))
    sts = api.statefulset_state(state.statefulset, namespace)
    status = {
        "namespace": namespace,
        "statefulset": None if sts is None else sts.__dict__ | {"ready": sts.ready},
        "pods": [pod.__dict__ | {"labels": dict(pod.labels)} for pod in pods],
        "notes": list(notes),
    }
    (dest / "status.json").write_text(json.dumps(status, indent=2, default=str))
    if state.loadgen_objects:
        with contextlib.suppress(PlatformError):
            load.collect_results(dest / "load")
    document = state.model_dump()
    document["admin_token"] = "(removed)"
    (dest / STATE_FILE).write_text(json.dumps(document, indent=2))
