"""The ``kubernetes`` platform: the bundled Helm chart on a real cluster, one namespace per run.

* ``deploy``: a namespace labelled with the run id, scenario and user and annotated with a TTL
  (``aitbc.io/ttl``, ``aitbc.io/expires-at``: a janitor may delete expired ones); the chart is
  rendered by the Helm engine with the plan's values (``chart_values.py``: the same genesis as
  every platform, a per-run admin token) and every object is server-side applied
  (``external/kubernetes``). ``upgrade`` re-applies and prunes objects the chart no longer
  renders; ``uninstall`` deletes them; ``destroy`` deletes the namespace.
* ``wait_ready``: the StatefulSet's status (observedGeneration, readyReplicas,
  currentRevision == updateRevision), never 1,000 pods; bounded; artifacts on failure.
* faults: ``faults.py`` (the node fault API through the pod proxy or a port-forward, or Chaos
  Mesh objects). Kill = pod deletion with grace 0; restart = wait for the StatefulSet to
  recreate the pod and for it to be ready.
* Prometheus: ``prometheus_url`` option, else a port-forward to the chart's bundled one.
* Load: ``load.py`` (the chart's Locust master and worker Jobs).
* ``endpoints``: in a pod, the cluster DNS names; outside, a port-forward per validator port.

Options come from ``KubernetesOptions`` (CLI flags, else the AITBC_* environment variables).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.errors import FaultNotVerified, PlatformError, UsageError
from orchestrator.external.helm import RenderedManifest, render_chart
from orchestrator.external.kubernetes import (
    DEFAULT_RETRY,
    KubeAccess,
    KubeApi,
    KubeNotFoundError,
    PortForwardTunnel,
    RetryPolicy,
    StatefulSetState,
)
from orchestrator.external.node_client import Endpoint, NodeClient
from orchestrator.faults.node_faults import NodeFaultInjector
from orchestrator.platforms.capabilities import (
    LivePlatform,
    LoadFiles,
    ReadyProgress,
    RunRecord,
    Stopped,
)
from orchestrator.platforms.kubernetes.artifacts import collect_cluster_artifacts
from orchestrator.platforms.kubernetes.chaos import ChaosMesh
from orchestrator.platforms.kubernetes.chart_values import (
    CHART_DIR,
    ChartSettings,
    chart_values,
    genesis_json,
    make_genesis,
)
from orchestrator.platforms.kubernetes.faults import OPS_PORT, KubernetesFaults, PodOpsTransport
from orchestrator.platforms.kubernetes.load import KubernetesLoad
from orchestrator.platforms.kubernetes.options import KubernetesOptions
from orchestrator.platforms.kubernetes.state import (
    KubernetesState,
    label_value,
    load_state,
    namespace_for,
    namespace_metadata,
    ref_of_manifest,
    save_state,
)
from orchestrator.platforms.run_dirs import STATE_FILE
from orchestrator.scenario.model import Scenario
from orchestrator.scenario.plan import Plan, PlannedFault, resolve_plan

__all__ = ["GENESIS_FILE", "GRPC_PORT", "PROMETHEUS_PORT", "KubernetesPlatform"]

GENESIS_FILE = "genesis.json"
GRPC_PORT = 7000
PROMETHEUS_PORT = 9090
ARTIFACTS_DIR = "artifacts"
KILL_CONFIRM_S = 60.0
"""How long a pod deleted with grace 0 may take to disappear before ``kill`` fails."""


class KubernetesPlatform(LivePlatform):
    """The capabilities of the registry's ``kubernetes`` entry on a cluster (see the module
    docstring)."""

    name = "kubernetes"

    def __init__(
        self,
        run_dir: Path,
        options: KubernetesOptions | None = None,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.options = options if options is not None else KubernetesOptions.from_env()
        self._retry = retry
        self._sleep = sleep
        self._clock = clock
        self._api: KubeApi | None = None
        self._state: KubernetesState | None = load_state(self.run_dir)
        self._plan: Plan | None = None
        self._lock = threading.RLock()
        self._killed: dict[int, str] = {}
        self._tunnels: dict[tuple[str, int], PortForwardTunnel] = {}
        self._clients: dict[int, NodeClient] = {}
        self._faults: KubernetesFaults | None = None
        self.notes: list[str] = []
        self._load = KubernetesLoad(
            self.api,
            lambda: self.state,
            self._save,
            lambda plan: self._render(plan, loadgen=True),
            self._selector,
            self.run_dir,
            poll_s=self.options.poll_s,
            clock=clock,
            sleep=sleep,
        )

    def image_tag(self) -> str:
        """The node image tag of the options (``AITBC_IMAGE_TAG``), else the chart's default."""
        return self.options.image_tag or "the chart's default"

    # --- state ----------------------------------------------------------------------------

    @classmethod
    def attach(cls, run_dir: Path) -> KubernetesPlatform:
        """The platform of an existing run (its state.json; options from the environment).
        Raises PlatformError when ``run_dir`` holds no kubernetes run."""
        platform = cls(Path(run_dir))
        if platform._state is None:
            raise PlatformError(
                f"{run_dir} is not a kubernetes run directory (no {STATE_FILE}): give the "
                "--run-id of a run started with `aitbc-testnet up --platform kubernetes`"
            )
        return platform

    @property
    def state(self) -> KubernetesState:
        if self._state is None:
            raise PlatformError(
                f"run {self.run_dir.name} is not deployed: run `aitbc-testnet up --platform "
                "kubernetes` first"
            )
        return self._state

    def plan(self) -> Plan:
        if self._plan is None:
            scenario = Scenario.model_validate(self.state.scenario)
            self._plan = resolve_plan(scenario, platform="kubernetes", run_id=self.state.run_id)
        return self._plan

    @property
    def namespace(self) -> str:
        return self.state.namespace

    def run_record(self) -> RunRecord:
        state = self.state
        created = datetime.fromisoformat(state.created).timestamp() if state.created else 0.0
        return RunRecord(
            run_id=state.run_id,
            created=created,
            stopped_at=state.stopped_at,
            load_started_at=state.load_started_at,
            load_duration_s=state.load_duration_s,
        )

    def _save(self) -> None:
        save_state(self.run_dir, self.state)

    def api(self) -> KubeApi:
        """The cluster connection (opened on first use). Raises PlatformError (exit 3) when
        there is no kubeconfig or context."""
        with self._lock:
            if self._api is None:
                access = self.options.access
                if self._state is not None and access.kubeconfig is None:
                    access = KubeAccess(
                        kubeconfig=Path(self._state.kubeconfig) if self._state.kubeconfig else None,
                        context=access.context or self._state.context,
                    )
                self._api = KubeApi.connect(access, retry=self._retry, sleep=self._sleep)
            return self._api

    # --- deploy / upgrade / uninstall -----------------------------------------------------

    def deploy(self, plan: Plan) -> None:
        """Namespace, then every object of the chart for ``plan`` (server-side apply). What was
        created is recorded in state.json first, so ``destroy`` works after a failure."""
        self._plan = plan
        api = self.api()
        namespace = namespace_for(self.options.namespace_prefix, plan.run_id)
        release = self.options.release or plan.name
        labels, annotations = namespace_metadata(plan, self.options.ttl_s)
        api.create_namespace(namespace, labels, annotations)
        self._state = KubernetesState(
            run_id=plan.run_id,
            scenario_name=plan.name,
            scenario=dict(plan.scenario),
            namespace=namespace,
            release=release,
            statefulset="",
            headless_service="",
            validators=plan.network.validators,
            admin_token=self._state.admin_token
            if self._state is not None and self._state.run_id == plan.run_id
            else secrets.token_hex(24),
            kubeconfig=str(self.options.kubeconfig) if self.options.kubeconfig else None,
            context=self.options.context,
            prometheus_url=self.options.prometheus_url,
            bundled_prometheus=self.options.prometheus_url is None,
            chaos=self.options.chaos,
            fault_transport=self.options.fault_transport,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self._save()
        manifests = self._render(plan, loadgen=False)
        self._record_names(manifests)
        try:
            self._apply_all(manifests)
        except PlatformError:
            self._safe_collect(self.run_dir / ARTIFACTS_DIR)
            raise

    def upgrade(self, plan: Plan) -> None:
        """Re-apply the chart for ``plan`` in the same namespace and delete the objects it no
        longer renders."""
        self._plan = plan
        manifests = self._render(plan, loadgen=False)
        before = {(ref.kind, ref.name): ref for ref in self.state.objects}
        self._record_names(manifests)
        self._apply_all(manifests)
        after = {(ref.kind, ref.name) for ref in self.state.objects}
        for key, ref in before.items():
            if key not in after:
                self.api().delete(ref.api_version, ref.kind, ref.name, self.namespace)

    def uninstall(self) -> None:
        """Delete every object deploy applied (the namespace stays)."""
        state = self.state
        for ref in reversed([*state.objects, *state.loadgen_objects]):
            self.api().delete(ref.api_version, ref.kind, ref.name, state.namespace)
        state.loadgen_objects = []
        self._save()

    def _render(self, plan: Plan, *, loadgen: bool) -> list[RenderedManifest]:
        state = self.state
        genesis = make_genesis(plan)
        (self.run_dir / GENESIS_FILE).write_text(genesis_json(genesis))
        settings = ChartSettings(
            release=state.release,
            namespace=state.namespace,
            image_tag=self.options.image_tag,
            loadgen=loadgen,
            bundled_prometheus=state.bundled_prometheus,
            admin_token=state.admin_token,
            extra_labels={"aitbc.io/run-id": label_value(plan.run_id)},
        )
        values = chart_values(plan, genesis, settings)
        return render_chart(CHART_DIR, values, release=state.release, namespace=state.namespace)

    def _record_names(self, manifests: Sequence[RenderedManifest]) -> None:
        state = self.state
        for manifest in manifests:
            if manifest.kind == "StatefulSet":
                state.statefulset = manifest.name
                state.headless_service = str(
                    (manifest.body.get("spec") or {}).get("serviceName") or ""
                )
        state.objects = [ref_of_manifest(manifest) for manifest in manifests]
        self._save()

    def _apply_all(self, manifests: Iterable[RenderedManifest]) -> None:
        for manifest in manifests:
            self.api().apply(manifest.body, self.namespace)

    # --- readiness and endpoints ----------------------------------------------------------

    def wait_ready(self, timeout_s: float, on_progress: ReadyProgress | None = None) -> None:
        """Return when the StatefulSet is rolled out and every validator ready (and the
        bundled Prometheus available); PlatformError after ``timeout_s`` with the last status
        and the artifacts (pod logs, events, status) in ``<run dir>/artifacts``."""
        deadline = self._clock() + timeout_s
        last: StatefulSetState | None = None
        waiting_for = "the validators"
        while True:
            last = self.api().statefulset_state(self.state.statefulset, self.namespace)
            if on_progress is not None and last is not None:
                on_progress("pods ready", last.ready_replicas, 0)
            if last is not None and last.ready:
                if not self.state.bundled_prometheus or self._prometheus_available():
                    return
                waiting_for = "the bundled Prometheus"
            if self._clock() >= deadline:
                break
            self._sleep(min(self.options.poll_s, max(0.0, deadline - self._clock())))
        artifacts = self.run_dir / ARTIFACTS_DIR
        self._safe_collect(artifacts)
        status = last.describe() if last is not None else "the StatefulSet does not exist"
        raise PlatformError(
            f"run {self.state.run_id}: {waiting_for} not ready after {timeout_s:g} s in "
            f"namespace {self.namespace}: {status}; pod logs, events and status are in "
            f"{artifacts}"
        )

    def _prometheus_available(self) -> bool:
        for body in self.api().list_objects(
            "apps/v1", "Deployment", self.namespace, self._selector("prometheus")
        ):
            if int((body.get("status") or {}).get("availableReplicas") or 0) >= 1:
                return True
        return False

    def pod_name(self, index: int) -> str:
        if not 0 <= index < self.state.validators:
            raise UsageError(
                f"validator {index} does not exist: this run has validators 0.."
                f"{self.state.validators - 1}"
            )
        return f"{self.state.statefulset}-{index}"

    def endpoints(self) -> list[Endpoint]:
        """One endpoint per validator: cluster DNS names when this process runs in a pod,
        else local port-forwards (two per validator, created on first use and closed by
        ``close``/``destroy``; for 1,000 validators prefer running in the cluster)."""
        return [self.endpoint(index) for index in range(self.state.validators)]

    def endpoint(self, index: int) -> Endpoint:
        """Validator ``index``'s gRPC and ops addresses (see ``endpoints``)."""
        pod = self.pod_name(index)
        in_cluster = self.options.in_cluster_endpoints
        if in_cluster is None:
            in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        if in_cluster:
            state = self.state
            host = f"{pod}.{state.headless_service}.{state.namespace}.svc.cluster.local"
            return Endpoint(index=index, grpc=f"{host}:{GRPC_PORT}", ops=f"{host}:{OPS_PORT}")
        return Endpoint(
            index=index,
            grpc=self._tunnel(pod, GRPC_PORT).address,
            ops=self._tunnel(pod, OPS_PORT).address,
        )

    def client(self, index: int) -> NodeClient:
        """A node client of validator ``index`` (gRPC status, blocks), cached."""
        with self._lock:
            existing = self._clients.get(index)
            if existing is None:
                existing = NodeClient(self.endpoint(index), self.admin_token())
                self._clients[index] = existing
            return existing

    def genesis_path(self) -> Path:
        """The genesis the run was deployed with (also in the config ConfigMap)."""
        return self.run_dir / GENESIS_FILE

    def admin_token(self) -> str:
        return self.state.admin_token

    def _tunnel(self, pod: str, port: int) -> PortForwardTunnel:
        with self._lock:
            tunnel = self._tunnels.get((pod, port))
            if tunnel is None:
                tunnel = self.api().port_forward(self.namespace, pod, port)
                self._tunnels[(pod, port)] = tunnel
            return tunnel

    def _selector(self, component: str) -> str:
        return (
            f"app.kubernetes.io/instance={self.state.release},"
            f"app.kubernetes.io/component={component}"
        )

    # --- kill / restart -------------------------------------------------------------------

    def kill(self, index: int) -> None:
        """Delete validator ``index``'s pod with grace 0 and check the old pod is gone."""
        name = self.pod_name(index)
        api = self.api()
        before = api.pod(name, self.namespace)
        if before is None:
            raise PlatformError(
                f"validator {index}: pod {name} does not exist in namespace {self.namespace}; "
                "is the run deployed?"
            )
        api.delete_pod(name, self.namespace, grace_period_s=0)
        self._killed[index] = before.uid
        deadline = self._clock() + KILL_CONFIRM_S
        while True:
            now = api.pod(name, self.namespace)
            if now is None or now.uid != before.uid:
                return
            if self._clock() >= deadline:
                raise FaultNotVerified(
                    f"validator {index}: pod {name} (uid {before.uid}) still exists "
                    f"{KILL_CONFIRM_S:g} s after its deletion with grace 0"
                )
            self._sleep(min(1.0, self.options.poll_s))

    def restart(self, index: int) -> None:
        """Wait until the StatefulSet has recreated validator ``index``'s pod (a new uid) and
        it is ready; PlatformError after ``restart_timeout_s``."""
        name = self.pod_name(index)
        old_uid = self._killed.get(index)
        deadline = self._clock() + self.options.restart_timeout_s
        api = self.api()
        while True:
            pod = api.pod(name, self.namespace)
            if pod is not None and pod.uid != old_uid and pod.ready and not pod.deleting:
                self._killed.pop(index, None)
                return
            if self._clock() >= deadline:
                seen = "missing" if pod is None else f"{pod.phase}, ready={pod.ready}"
                raise PlatformError(
                    f"validator {index}: pod {name} not back and ready "
                    f"{self.options.restart_timeout_s:g} s after the kill ({seen}); see "
                    f"`kubectl -n {self.namespace} describe pod {name}`"
                )
            self._sleep(min(1.0, self.options.poll_s))

    def is_running(self, index: int) -> bool:
        """False for a validator this object killed and has not restarted yet."""
        return index not in self._killed

    # --- node faults ----------------------------------------------------------------------

    def _node_faults(self) -> KubernetesFaults:
        with self._lock:
            if self._faults is None:
                transport = PodOpsTransport(
                    self.api, lambda: self.state, self.pod_name, self._tunnel, self._switched
                )
                injector = NodeFaultInjector(
                    transport, self.state.validators, running=self.is_running
                )
                chaos = ChaosMesh(
                    self.api,
                    self.namespace,
                    poll_s=self.options.poll_s,
                    clock=self._clock,
                    sleep=self._sleep,
                )
                self._faults = KubernetesFaults(injector, chaos, lambda: self.state)
            return self._faults

    def _switched(self, note: str) -> None:
        self.notes.append(note)
        with contextlib.suppress(OSError):
            self._save()

    def inject(self, fault: PlannedFault, expire_after_s: float | None = None) -> None:
        self._node_faults().inject(fault, expire_after_s)

    def remove(self, fault: PlannedFault) -> None:
        self._node_faults().remove(fault)

    def heal(self, ids: Sequence[int] | None) -> None:
        self._node_faults().heal(ids)

    def active_faults(self) -> dict[int, list[dict[str, Any]]]:
        return self._node_faults().active_faults()

    # --- Prometheus and load --------------------------------------------------------------

    def prometheus_url(self) -> str | None:
        """``prometheus_url`` of the options, else a port-forward to the bundled Prometheus
        (None when there is neither)."""
        state = self.state
        if state.prometheus_url:
            return state.prometheus_url
        if not state.bundled_prometheus:
            return None
        pods = [
            pod
            for pod in self.api().pods(self.namespace, self._selector("prometheus"))
            if not pod.deleting
        ]
        if not pods:
            return None
        return self._tunnel(pods[0].name, PROMETHEUS_PORT).url

    def start_load(self, plan: Plan) -> None:
        """Apply the chart's Locust master Job and worker Job for ``plan``'s load."""
        self._load.start(plan)

    def load_running(self) -> bool:
        return self._load.running()

    def wait_load(self, timeout_s: float) -> bool:
        return self._load.wait(timeout_s)

    def stop_load(self) -> None:
        """Save the Locust master's log and final stats, then delete the load generator."""
        if self._state is not None:
            self._load.stop()

    def load_files(self) -> LoadFiles:
        return self._load.files()

    def collect_load_results(self, dest: Path) -> Any:
        """The Locust master's log and final JSON stats into ``dest`` (see ``load.py``)."""
        return self._load.collect_results(dest)

    # --- artifacts and teardown -----------------------------------------------------------

    def collect_artifacts(self, dest: Path) -> None:
        """Pod logs, events, the StatefulSet's and pods' status, load results and the state
        without its token (``artifacts.py``)."""
        collect_cluster_artifacts(
            self.api(), self.state, Path(dest), notes=self.notes, load=self._load
        )

    def destroy(self) -> list[Stopped]:
        """Clear the faults still applied, close the port-forwards and delete the run's
        namespace (every object in it goes with it). Idempotent; keeps the run directory."""
        if self._state is None:
            return []
        errors: list[str] = []
        if self._faults is not None:
            try:
                self._faults.clear_all()
            except PlatformError as error:
                errors.append(str(error))
        self._close_tunnels()
        namespace = self.namespace
        try:
            deleted = self.api().delete_namespace(namespace)
        except KubeNotFoundError:
            deleted = False
        finally:
            if self._api is not None:
                self._api.close()
                self._api = None
        self.state.stopped_at = time.time()
        with contextlib.suppress(OSError):
            self._save()
        if errors:
            raise PlatformError("; ".join(errors))
        return [Stopped(f"namespace {namespace}", None, "deleted" if deleted else "already gone")]

    def close(self) -> None:
        """Close port-forwards and the connection (the testnet keeps running)."""
        self._close_tunnels()
        if self._api is not None:
            self._api.close()
            self._api = None

    def _close_tunnels(self) -> None:
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
            tunnels = list(self._tunnels.values())
            self._tunnels.clear()
        for node_client in clients:
            with contextlib.suppress(Exception):
                node_client.close()
        for tunnel in tunnels:
            tunnel.close()

    def _safe_collect(self, dest: Path) -> None:
        with contextlib.suppress(PlatformError, OSError):
            self.collect_artifacts(dest)
