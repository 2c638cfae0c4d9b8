"""The load generator on a cluster: the chart's Locust master Job and worker Job (and the
master's Service), applied for a plan's load and deleted when it stops; the master's log and
its final JSON stats are kept in ``<run dir>/load/``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from orchestrator.errors import PlatformError
from orchestrator.external.helm import RenderedManifest
from orchestrator.external.kubernetes import KubeApi
from orchestrator.external.locust import locust_stats_from_log
from orchestrator.platforms.capabilities import LoadFiles
from orchestrator.platforms.kubernetes.state import KubernetesState, ObjectRef, ref_of_manifest
from orchestrator.scenario.plan import Plan

__all__ = ["LOADGEN_SOURCES", "LOAD_DIR", "KubernetesLoad"]

LOADGEN_SOURCES = ("loadgen-master-job", "loadgen-worker-job", "loadgen-master-service")
"""The chart templates of the load generator (rendered only with ``loadgen.enabled``)."""
LOAD_DIR = "load"
MASTER_LOG = "locust-master.log"
STATS_FILE = "locust-stats.json"


class KubernetesLoad:
    """Starts, watches and stops the chart's load generator of one run."""

    def __init__(
        self,
        api: Callable[[], KubeApi],
        state: Callable[[], KubernetesState],
        save: Callable[[], None],
        render: Callable[[Plan], Sequence[RenderedManifest]],
        selector: Callable[[str], str],
        run_dir: Path,
        *,
        poll_s: float,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self._api = api
        self._state = state
        self._save = save
        self._render = render
        self._selector = selector
        self._run_dir = run_dir
        self._poll_s = poll_s
        self._clock = clock
        self._sleep = sleep

    def start(self, plan: Plan) -> None:
        """Apply the chart's Locust master Job and worker Job for ``plan``'s load."""
        manifests = [
            manifest
            for manifest in self._render(plan)
            if any(part in manifest.source for part in LOADGEN_SOURCES)
        ]
        if not manifests:
            raise PlatformError("the chart rendered no load generator objects (loadgen.enabled)")
        state = self._state()
        for manifest in manifests:
            self._api().apply(manifest.body, state.namespace)
        state.loadgen_objects = [ref_of_manifest(manifest) for manifest in manifests]
        state.load_started_at = time.time()
        state.load_duration_s = plan.load.duration_s
        self._save()

    def running(self) -> bool:
        """Whether the Locust master Job is still running."""
        job = self._master_job()
        if job is None:
            return False
        body = self._api().get("batch/v1", "Job", job.name, self._state().namespace) or {}
        status = body.get("status") or {}
        return not (status.get("succeeded") or status.get("failed") or status.get("completionTime"))

    def wait(self, timeout_s: float) -> bool:
        deadline = self._clock() + timeout_s
        while self.running():
            if self._clock() >= deadline:
                return False
            self._sleep(self._poll_s)
        return True

    def stop(self) -> None:
        """Save the Locust master's log and final stats (``load/``), then delete the load
        generator objects. Idempotent."""
        state = self._state()
        if not state.loadgen_objects:
            return
        self.collect_results(self._run_dir / LOAD_DIR)
        for ref in reversed(state.loadgen_objects):
            self._api().delete(ref.api_version, ref.kind, ref.name, state.namespace)
        state.loadgen_objects = []
        self._save()

    def files(self) -> LoadFiles:
        directory = self._run_dir / LOAD_DIR
        return LoadFiles(dir=directory, log=directory / MASTER_LOG, summary=None, probe_log=None)

    def collect_results(self, dest: Path) -> Any:
        """The Locust master's log to ``dest/locust-master.log`` and its final JSON stats (the
        master runs with --json) to ``dest/locust-stats.json``; returns the stats or None."""
        dest.mkdir(parents=True, exist_ok=True)
        namespace = self._state().namespace
        pods = self._api().pods(namespace, self._selector("loadgen-master"))
        if not pods:
            return None
        log = self._api().pod_logs(pods[0].name, namespace, tail_lines=100_000)
        (dest / MASTER_LOG).write_text(log)
        stats = locust_stats_from_log(log)
        if stats is not None:
            (dest / STATS_FILE).write_text(json.dumps(stats, indent=2))
        return stats

    def _master_job(self) -> ObjectRef | None:
        for ref in self._state().loadgen_objects:
            if ref.kind == "Job":
                return ref
        return None
