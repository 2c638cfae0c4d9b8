"""The ``kubernetes`` platform: the bundled Helm chart on a real cluster, one namespace per run.

* ``deploy``: a namespace labelled with the run id, scenario and user and annotated with a TTL
  (``aitbc.io/ttl``, ``aitbc.io/expires-at``: a janitor may delete expired ones); the chart is
  rendered by the Helm engine with the plan's values (real genesis, a per-run admin token) and
  every object is server-side applied (``orchestrator.kube``). ``upgrade`` re-applies and prunes
  objects the chart no longer renders; ``uninstall`` deletes them; ``destroy`` deletes the
  namespace.
* ``wait_ready``: the StatefulSet's status (observedGeneration, readyReplicas,
  currentRevision == updateRevision), never 1,000 pods; bounded; artifacts on failure.
* faults: the node fault API (``PUT/GET/DELETE /admin/faults`` on the ops port) through the API
  server's pod proxy, each verified by GET and always cleared; ``chaos="chaos-mesh"`` creates
  NetworkChaos / PodChaos objects instead (equivocation has no Chaos Mesh equivalent and still
  uses the fault API). Kill = pod deletion with grace 0; restart = wait for the StatefulSet to
  recreate the pod and for it to be ready.

  The API server removes the ``Authorization`` header of proxied requests once it has
  authenticated the caller, so on a real cluster the node answers 401 to the bearer token sent
  through the proxy. When that happens the platform switches (once, for the run) to a
  port-forward to the pod's ops port, where the header arrives intact.
* Prometheus: ``prometheus_url`` option, else a port-forward to the chart's bundled one.
* Load: ``start_load`` applies the chart's Locust master Job and worker Deployment;
  ``stop_load`` saves the master's log and its final JSON stats to ``load/`` and deletes them.
* ``endpoints``: in a pod, the cluster DNS names; outside, a port-forward per validator port.

Options come from ``KubernetesOptions`` (CLI flags, else the AITBC_* environment variables).
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from orchestrator.chart_values import (
    CHART_DIR,
    ChartSettings,
    chart_values,
    genesis_json,
    make_genesis,
)
from orchestrator.errors import UsageError
from orchestrator.helm_engine import RenderedManifest, render_chart
from orchestrator.kube import (
    DEFAULT_RETRY,
    KubeAccess,
    KubeApi,
    KubeApiError,
    KubeNotFoundError,
    PortForwardTunnel,
    ProxyResponse,
    RetryPolicy,
    StatefulSetState,
)
from orchestrator.plan import Plan, PlannedFault, resolve_plan
from orchestrator.platforms.base import Endpoint, PlatformError
from orchestrator.scenario import Scenario

if TYPE_CHECKING:
    from orchestrator.node_client import NodeClient

__all__ = [
    "CHAOS_CHOICES",
    "ENV_CHAOS",
    "ENV_CONTEXT",
    "ENV_IMAGE_TAG",
    "ENV_KUBECONFIG",
    "ENV_PROMETHEUS_URL",
    "STATE_FILE",
    "FaultNotVerified",
    "KubernetesOptions",
    "KubernetesPlatform",
    "KubernetesState",
    "chaos_objects",
    "namespace_for",
    "node_fault_specs",
]

ENV_KUBECONFIG = "AITBC_KUBECONFIG"
ENV_CONTEXT = "AITBC_KUBE_CONTEXT"
ENV_PROMETHEUS_URL = "AITBC_PROMETHEUS_URL"
ENV_CHAOS = "AITBC_CHAOS"
ENV_IMAGE_TAG = "AITBC_IMAGE_TAG"
ENV_NAMESPACE_PREFIX = "AITBC_NAMESPACE_PREFIX"
ENV_RELEASE = "AITBC_RELEASE"
CHAOS_CHOICES = ("none", "chaos-mesh")
STATE_FILE = "state.json"
GENESIS_FILE = "genesis.json"
OPS_PORT = 9100
GRPC_PORT = 7000
PROMETHEUS_PORT = 9090
FAULT_BACKSTOP_S = 30.0
"""A node fault with a planned end also expires on its own this long after it (a lost clear
must not leave a partition behind)."""
CHAOS_API_VERSION = "chaos-mesh.org/v1alpha1"
FAULT_API_KINDS = ("partition", "delay", "loss", "pause", "equivocate")
CHAOS_KINDS = ("partition", "delay", "loss", "pause")
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]+")
_DNS_LABEL = re.compile(r"[^a-z0-9-]+")
_LOADGEN_SOURCES = ("loadgen-master-job", "loadgen-worker-job", "loadgen-master-service")


class FaultNotVerified(PlatformError):
    """A fault was accepted but the check that it took effect (or is gone) failed."""


@dataclass(frozen=True)
class KubernetesOptions:
    """How the kubernetes platform reaches the cluster and runs the testnet."""

    kubeconfig: Path | None = None
    """Kubeconfig file (None: $KUBECONFIG, then ~/.kube/config, then in-cluster)."""
    context: str | None = None
    """Context in the kubeconfig (None: its current context)."""
    namespace_prefix: str = "aitbc"
    """Each run gets the namespace ``<prefix>-<run id>`` (cut to 63 characters)."""
    prometheus_url: str | None = None
    """A Prometheus that scrapes the testnet (e.g. kube-prometheus-stack); None: deploy the
    chart's bundled Prometheus and reach it by port-forward."""
    chaos: Literal["none", "chaos-mesh"] = "none"
    """``chaos-mesh``: partitions, delays, loss and pauses as Chaos Mesh objects."""
    image_tag: str | None = None
    """Node image tag (None: the chart's default)."""
    release: str | None = None
    """Helm release name (None: the scenario name)."""
    ttl_s: float = 24 * 3600.0
    """The namespace's TTL annotation (a janitor deletes expired run namespaces)."""
    poll_s: float = 2.0
    """Status polling interval while waiting."""
    restart_timeout_s: float = 180.0
    """How long ``restart`` waits for the StatefulSet to bring a pod back and ready."""
    fault_transport: Literal["proxy", "port-forward"] = "proxy"
    """How the node fault API is reached (proxy falls back to port-forward on 401)."""
    in_cluster_endpoints: bool | None = None
    """Endpoints as cluster DNS names (True) or port-forwards (False); None: DNS names when
    running in a pod."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, **flags: Any) -> KubernetesOptions:
        """Options from CLI ``flags`` (None values ignored), else the AITBC_* variables."""
        given = {key: value for key, value in flags.items() if value is not None}
        kubeconfig = given.pop("kubeconfig", None) or env.get(ENV_KUBECONFIG) or None
        chaos = given.pop("chaos", None) or env.get(ENV_CHAOS) or "none"
        if chaos not in CHAOS_CHOICES:
            raise UsageError(
                f"chaos {chaos!r} ({ENV_CHAOS} or --chaos) is not one of {', '.join(CHAOS_CHOICES)}"
            )
        return cls(
            kubeconfig=Path(kubeconfig) if kubeconfig else None,
            context=given.pop("context", None) or env.get(ENV_CONTEXT) or None,
            namespace_prefix=given.pop("namespace_prefix", None)
            or env.get(ENV_NAMESPACE_PREFIX)
            or "aitbc",
            prometheus_url=given.pop("prometheus_url", None) or env.get(ENV_PROMETHEUS_URL) or None,
            chaos=chaos,  # type: ignore[arg-type]
            image_tag=given.pop("image_tag", None) or env.get(ENV_IMAGE_TAG) or None,
            release=given.pop("release", None) or env.get(ENV_RELEASE) or None,
            **given,
        )

    @property
    def access(self) -> KubeAccess:
        return KubeAccess(kubeconfig=self.kubeconfig, context=self.context)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ObjectRef(_Record):
    api_version: str
    kind: str
    name: str
    source: str = ""


class KubernetesState(_Record):
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


@dataclass
class _AppliedFault:
    """What apply_fault did for one planned fault, so clear_fault undoes exactly that."""

    node_faults: list[tuple[int, str]] = field(default_factory=list)
    chaos: list[ObjectRef] = field(default_factory=list)


class _FaultApi(Protocol):
    def request(self, index: int, method: str, path: str, body: Any = None) -> ProxyResponse: ...

    def close(self) -> None: ...


class KubernetesPlatform:
    """The Platform protocol on a Kubernetes cluster (see the module docstring)."""

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
        self._state: KubernetesState | None = None
        self._plan: Plan | None = None
        self._lock = threading.RLock()
        self._applied: dict[int, _AppliedFault] = {}
        self._killed: dict[int, str] = {}
        self._tunnels: dict[tuple[str, int], PortForwardTunnel] = {}
        self._fault_api: _FaultApi | None = None
        self._clients: dict[int, NodeClient] = {}
        self.notes: list[str] = []
        if (self.run_dir / STATE_FILE).is_file():
            self._load_state()

    # --- state ----------------------------------------------------------------------------

    @classmethod
    def attach(cls, run_dir: Path, options: KubernetesOptions | None = None) -> KubernetesPlatform:
        """The platform of an existing run (its state.json). Raises PlatformError when
        ``run_dir`` holds no kubernetes run."""
        platform = cls(Path(run_dir), options)
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

    @property
    def plan(self) -> Plan:
        if self._plan is None:
            scenario = Scenario.model_validate(self.state.scenario)
            self._plan = resolve_plan(scenario, platform="kubernetes", run_id=self.state.run_id)
        return self._plan

    @property
    def namespace(self) -> str:
        return self.state.namespace

    def _load_state(self) -> None:
        path = self.run_dir / STATE_FILE
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise PlatformError(f"{path} cannot be read: {error}") from None
        if document.get("platform") != "kubernetes":
            return  # another platform's run: attach() says so
        try:
            self._state = KubernetesState.model_validate(document)
        except ValueError as error:
            raise PlatformError(
                f"{path} is not a kubernetes run state ({str(error)[:200]}); delete the "
                "namespace by hand (kubectl delete ns ...)"
            ) from None

    def _save(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / STATE_FILE
        temporary = path.with_name(f".{STATE_FILE}.tmp{os.getpid()}")
        temporary.write_text(self.state.model_dump_json(indent=2) + "\n")
        temporary.chmod(0o600)  # it holds the admin token
        os.replace(temporary, path)

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
        labels = {
            "app.kubernetes.io/managed-by": "aitbc-testnet",
            "aitbc.io/run-id": label_value(plan.run_id),
            "aitbc.io/scenario": label_value(plan.name),
            "aitbc.io/user": label_value(_user()),
        }
        expires = datetime.now(UTC) + timedelta(seconds=self.options.ttl_s)
        annotations = {
            "aitbc.io/run-id": plan.run_id,
            "aitbc.io/ttl": f"{int(self.options.ttl_s)}s",
            "aitbc.io/expires-at": expires.isoformat(timespec="seconds"),
            "aitbc.io/description": plan.description[:200],
        }
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
            self._safe_collect(self.run_dir / "artifacts")
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
        state.objects = [_ref(manifest) for manifest in manifests]
        self._save()

    def _apply_all(self, manifests: Iterable[RenderedManifest]) -> None:
        for manifest in manifests:
            self.api().apply(manifest.body, self.namespace)

    # --- readiness and endpoints ----------------------------------------------------------

    def wait_ready(self, timeout_s: float) -> None:
        """Return when the StatefulSet is rolled out and every validator ready (and the
        bundled Prometheus available); PlatformError after ``timeout_s`` with the last status
        and the artifacts (pod logs, events, status) in ``<run dir>/artifacts``."""
        deadline = self._clock() + timeout_s
        last: StatefulSetState | None = None
        waiting_for = "the validators"
        while True:
            last = self.api().statefulset_state(self.state.statefulset, self.namespace)
            if last is not None and last.ready:
                if not self.state.bundled_prometheus or self._prometheus_available():
                    return
                waiting_for = "the bundled Prometheus"
            if self._clock() >= deadline:
                break
            self._sleep(min(self.options.poll_s, max(0.0, deadline - self._clock())))
        artifacts = self.run_dir / "artifacts"
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
        """A node client of validator ``index`` (gRPC status, blocks, fault API), cached."""
        from orchestrator.node_client import NodeClient

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
        deadline = self._clock() + 30.0
        while True:
            now = api.pod(name, self.namespace)
            if now is None or now.uid != before.uid:
                return
            if self._clock() >= deadline:
                raise FaultNotVerified(
                    f"validator {index}: pod {name} (uid {before.uid}) still exists 30 s after "
                    "its deletion with grace 0"
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

    # --- faults ---------------------------------------------------------------------------

    def apply_fault(self, fault: PlannedFault) -> None:
        """Inject ``fault`` and verify it took effect (see the module docstring)."""
        kind = fault.kind
        if kind == "churn":
            raise PlatformError(
                f"fault {fault.index} is churn: the fault engine expands it into kills and "
                "restarts; apply those instead"
            )
        if kind == "kill":
            for index in fault.ids:
                self.kill(index)
            return
        if kind == "restart":
            for index in fault.ids:
                self.restart(index)
            return
        if kind == "heal":
            self._heal(fault.ids or tuple(range(self.state.validators)))
            return
        if kind not in FAULT_API_KINDS:
            raise PlatformError(f"fault {fault.index}: unknown kind {kind!r}")
        applied = _AppliedFault()
        with self._lock:
            self._applied[fault.index] = applied
        if self.state.chaos == "chaos-mesh" and kind in CHAOS_KINDS:
            self._apply_chaos(fault, applied)
            return
        specs = node_fault_specs(fault, self.state.validators)

        def put(item: tuple[int, dict[str, Any]]) -> tuple[int, str]:
            index, spec = item
            reply = self._fault_request(index, "PUT", "admin/faults", spec)
            if reply.status != 201:
                raise PlatformError(
                    f"validator {index}: the fault API refused {spec['kind']} "
                    f"(HTTP {reply.status}: {_error_text(reply)})"
                )
            fault_id = str((reply.json() or {}).get("id", ""))
            listed = self._fault_request(index, "GET", "admin/faults")
            ids = {str(item.get("id")) for item in (listed.json() or {}).get("faults", [])}
            if fault_id not in ids:
                raise FaultNotVerified(
                    f"validator {index}: fault {fault_id} ({spec['kind']}) was accepted but GET "
                    "/admin/faults does not list it"
                )
            return index, fault_id

        for index, fault_id in _parallel(put, specs):
            applied.node_faults.append((index, fault_id))

    def clear_fault(self, fault: PlannedFault) -> None:
        """Clear ``fault`` and verify it is gone (faults no longer listed, Chaos objects
        deleted, killed validators back)."""
        kind = fault.kind
        if kind == "kill":
            for index in fault.ids:
                if index in self._killed:
                    self.restart(index)
            return
        if kind in ("heal", "restart", "churn") or kind not in FAULT_API_KINDS:
            return
        with self._lock:
            applied = self._applied.pop(fault.index, None)
        if applied is None:  # applied by another invocation: clear that kind where it went
            targets = sorted({index for index, _ in node_fault_specs(fault, self.state.validators)})
            for index in targets:
                self._clear_kind(index, kind)
            if self.state.chaos == "chaos-mesh":
                for body in chaos_objects(fault, self.state):
                    self._delete_chaos(_ref_of(body))
            return
        for ref in applied.chaos:
            self._delete_chaos(ref)

        def delete(item: tuple[int, str]) -> None:
            index, fault_id = item
            reply = self._fault_request(index, "DELETE", f"admin/faults/{fault_id}")
            if reply.status not in (200, 404):
                raise PlatformError(
                    f"validator {index}: DELETE /admin/faults/{fault_id} answered "
                    f"{reply.status}: {_error_text(reply)}"
                )
            listed = self._fault_request(index, "GET", "admin/faults")
            ids = {str(item.get("id")) for item in (listed.json() or {}).get("faults", [])}
            if fault_id in ids:
                raise FaultNotVerified(
                    f"validator {index}: fault {fault_id} ({kind}) is still listed after DELETE"
                )

        list(_parallel(delete, applied.node_faults))

    def clear_all_faults(self) -> None:
        """Clear every fault this object applied (used by destroy; best effort per fault)."""
        with self._lock:
            pending = list(self._applied.items())
            self._applied.clear()
        errors: list[str] = []
        for index, applied in pending:
            for ref in applied.chaos:
                try:
                    self._delete_chaos(ref)
                except PlatformError as error:
                    errors.append(str(error))
            for validator, fault_id in applied.node_faults:
                try:
                    self._fault_request(validator, "DELETE", f"admin/faults/{fault_id}")
                except PlatformError as error:
                    errors.append(f"fault {index} on validator {validator}: {error}")
        if errors:
            raise PlatformError("some faults could not be cleared:\n- " + "\n- ".join(errors))

    def active_faults(self) -> dict[int, list[dict[str, Any]]]:
        """Validator -> its active node faults (GET /admin/faults); unreachable ones left out."""
        result: dict[int, list[dict[str, Any]]] = {}
        for index in range(self.state.validators):
            try:
                reply = self._fault_request(index, "GET", "admin/faults")
            except PlatformError:
                continue
            if reply.status == 200:
                result[index] = list((reply.json() or {}).get("faults", []))
        return result

    def _heal(self, targets: Iterable[int]) -> None:
        def heal(index: int) -> None:
            reply = self._fault_request(index, "DELETE", "admin/faults")
            if reply.status != 200:
                raise PlatformError(
                    f"validator {index}: heal (DELETE /admin/faults) answered {reply.status}: "
                    f"{_error_text(reply)}"
                )
            left = (self._fault_request(index, "GET", "admin/faults").json() or {}).get("faults")
            if left:
                raise FaultNotVerified(
                    f"validator {index}: {len(left)} faults still listed after heal"
                )

        list(_parallel(heal, [i for i in targets if i not in self._killed]))
        with self._lock:
            chaos = [ref for applied in self._applied.values() for ref in applied.chaos]
            for applied in self._applied.values():
                applied.chaos.clear()
        for ref in chaos:
            self._delete_chaos(ref)

    def _clear_kind(self, index: int, kind: str) -> None:
        listed = self._fault_request(index, "GET", "admin/faults").json() or {}
        for item in listed.get("faults", []):
            if item.get("kind") == kind:
                self._fault_request(index, "DELETE", f"admin/faults/{item.get('id')}")

    def _fault_request(self, index: int, method: str, path: str, body: Any = None) -> ProxyResponse:
        transport = self._fault_transport()
        reply = transport.request(index, method, path, body)
        if reply.status == 401 and isinstance(transport, _ProxyFaultApi):
            # The API server stripped the Authorization header: use a port-forward instead.
            with self._lock:
                if self._fault_api is transport:
                    self._fault_api = _PortForwardFaultApi(self)
                    self.state.fault_transport = "port-forward"
                    self.notes.append(
                        "the API server strips the Authorization header of pod-proxy requests: "
                        "the node fault API is reached by port-forward for this run"
                    )
                    with contextlib.suppress(OSError):
                        self._save()
            reply = self._fault_transport().request(index, method, path, body)
        return reply

    def _fault_transport(self) -> _FaultApi:
        with self._lock:
            if self._fault_api is None:
                if self.state.fault_transport == "proxy" and self.api().uses_bearer_token:
                    self.state.fault_transport = "port-forward"
                    self.notes.append(
                        "the kubeconfig authenticates with a bearer token, which takes the "
                        "Authorization header of pod-proxy requests: the node fault API is "
                        "reached by port-forward"
                    )
                if self.state.fault_transport == "port-forward":
                    self._fault_api = _PortForwardFaultApi(self)
                else:
                    self._fault_api = _ProxyFaultApi(self)
            return self._fault_api

    def _apply_chaos(self, fault: PlannedFault, applied: _AppliedFault) -> None:
        api = self.api()
        bodies = chaos_objects(fault, self.state)
        for body in bodies:
            api.apply(body, self.namespace)
            applied.chaos.append(_ref_of(body))
        deadline = self._clock() + 60.0
        for body in bodies:
            ref = _ref_of(body)
            while True:
                current = api.get(ref.api_version, ref.kind, ref.name, self.namespace)
                if current is not None and _chaos_injected(current):
                    break
                if self._clock() >= deadline:
                    raise FaultNotVerified(
                        f"fault {fault.index}: {ref.kind}/{ref.name} was created but Chaos Mesh "
                        "did not report AllInjected within 60 s; is Chaos Mesh running?"
                    )
                self._sleep(min(1.0, self.options.poll_s))

    def _delete_chaos(self, ref: ObjectRef) -> None:
        api = self.api()
        api.delete(ref.api_version, ref.kind, ref.name, self.namespace)
        deadline = self._clock() + 60.0
        while api.get(ref.api_version, ref.kind, ref.name, self.namespace) is not None:
            if self._clock() >= deadline:
                raise FaultNotVerified(
                    f"{ref.kind}/{ref.name} still exists 60 s after its deletion (a finalizer "
                    "of Chaos Mesh did not finish)"
                )
            self._sleep(min(1.0, self.options.poll_s))

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
        """Apply the chart's Locust master Job and worker Deployment for ``plan``'s load."""
        manifests = [
            manifest
            for manifest in self._render(plan, loadgen=True)
            if any(part in manifest.source for part in _LOADGEN_SOURCES)
        ]
        if not manifests:
            raise PlatformError("the chart rendered no load generator objects (loadgen.enabled)")
        self._apply_all(manifests)
        self.state.loadgen_objects = [_ref(manifest) for manifest in manifests]
        self._save()

    def load_running(self) -> bool:
        """Whether the Locust master Job is still running."""
        job = self._master_job()
        if job is None:
            return False
        status = self.api().get("batch/v1", "Job", job.name, self.namespace) or {}
        state = status.get("status") or {}
        return not (state.get("succeeded") or state.get("failed") or state.get("completionTime"))

    def wait_load(self, timeout_s: float) -> bool:
        deadline = self._clock() + timeout_s
        while self.load_running():
            if self._clock() >= deadline:
                return False
            self._sleep(self.options.poll_s)
        return True

    def stop_load(self) -> None:
        """Save the Locust master's log and final stats (``load/``), then delete the load
        generator objects. Idempotent."""
        if self._state is None or not self.state.loadgen_objects:
            return
        self.collect_load_results(self.run_dir / "load")
        for ref in reversed(self.state.loadgen_objects):
            self.api().delete(ref.api_version, ref.kind, ref.name, self.namespace)
        self.state.loadgen_objects = []
        self._save()

    def collect_load_results(self, dest: Path) -> dict[str, Any] | None:
        """The Locust master's log to ``dest/locust-master.log`` and its final JSON stats (the
        master runs with --json) to ``dest/locust-stats.json``; returns the stats or None."""
        dest.mkdir(parents=True, exist_ok=True)
        pods = self.api().pods(self.namespace, self._selector("loadgen-master"))
        if not pods:
            return None
        log = self.api().pod_logs(pods[0].name, self.namespace, tail_lines=100_000)
        (dest / "locust-master.log").write_text(log)
        stats = locust_stats_from_log(log)
        if stats is not None:
            (dest / "locust-stats.json").write_text(json.dumps(stats, indent=2))
        return stats

    def _master_job(self) -> ObjectRef | None:
        for ref in self.state.loadgen_objects:
            if ref.kind == "Job":
                return ref
        return None

    # --- artifacts and teardown -----------------------------------------------------------

    def collect_artifacts(self, dest: Path) -> None:
        """Pod logs (``logs/<pod>.log``), events (``events.json``), the status of the
        StatefulSet and every pod (``status.json``), load results and state (token removed)."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        api = self.api()
        namespace = self.namespace
        pods = api.pods(namespace)
        logs = dest / "logs"
        logs.mkdir(exist_ok=True)

        def fetch(name: str) -> None:
            try:
                text = api.pod_logs(name, namespace)
            except PlatformError as error:
                text = f"(no log: {error})\n"
            (logs / f"{name}.log").write_text(text)

        list(_parallel(fetch, [pod.name for pod in pods], workers=4))
        (dest / "events.json").write_text(json.dumps(api.events(namespace), indent=2))
        sts = api.statefulset_state(self.state.statefulset, namespace)
        status = {
            "namespace": namespace,
            "statefulset": None if sts is None else sts.__dict__ | {"ready": sts.ready},
            "pods": [pod.__dict__ | {"labels": dict(pod.labels)} for pod in pods],
            "notes": list(self.notes),
        }
        (dest / "status.json").write_text(json.dumps(status, indent=2, default=str))
        if self.state.loadgen_objects:
            with contextlib.suppress(PlatformError):
                self.collect_load_results(dest / "load")
        state = self.state.model_dump()
        state["admin_token"] = "(removed)"
        (dest / STATE_FILE).write_text(json.dumps(state, indent=2))

    def destroy(self) -> None:
        """Clear the faults still applied, close the port-forwards and delete the run's
        namespace (every object in it goes with it). Idempotent; keeps the run directory."""
        if self._state is None:
            return
        errors: list[str] = []
        try:
            self.clear_all_faults()
        except PlatformError as error:
            errors.append(str(error))
        self._close_tunnels()
        try:
            self.api().delete_namespace(self.namespace)
        except KubeNotFoundError:
            pass
        finally:
            if self._api is not None:
                self._api.close()
                self._api = None
        if errors:
            raise PlatformError("; ".join(errors))

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
            fault_api = self._fault_api
            self._fault_api = None
        if fault_api is not None:
            fault_api.close()
        for node_client in clients:
            with contextlib.suppress(Exception):
                node_client.close()
        for tunnel in tunnels:
            tunnel.close()

    def _safe_collect(self, dest: Path) -> None:
        with contextlib.suppress(PlatformError, OSError):
            self.collect_artifacts(dest)


# --- fault API transports -------------------------------------------------------------------


class _ProxyFaultApi:
    """The node fault API through the API server's pod proxy."""

    def __init__(self, platform: KubernetesPlatform) -> None:
        self._platform = platform

    def request(self, index: int, method: str, path: str, body: Any = None) -> ProxyResponse:
        platform = self._platform
        return platform.api().pod_proxy(
            method,
            platform.namespace,
            platform.pod_name(index),
            OPS_PORT,
            path,
            body=body,
            headers={
                "Authorization": f"Bearer {platform.admin_token()}",
                "X-Aitbc-Admin-Token": platform.admin_token(),
            },
        )

    def close(self) -> None:
        return None


class _PortForwardFaultApi:
    """The node fault API through a port-forward to each pod's ops port."""

    def __init__(self, platform: KubernetesPlatform, timeout_s: float = 10.0) -> None:
        self._platform = platform
        self._timeout = timeout_s

    def request(self, index: int, method: str, path: str, body: Any = None) -> ProxyResponse:
        platform = self._platform
        tunnel = platform._tunnel(platform.pod_name(index), OPS_PORT)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{tunnel.url}/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {platform.admin_token()}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as reply:
                return ProxyResponse(status=reply.status, body=reply.read())
        except urllib.error.HTTPError as error:
            return ProxyResponse(status=error.code, body=error.read())
        except (urllib.error.URLError, OSError) as error:
            raise PlatformError(
                f"validator {index}: the fault API did not answer through the port-forward "
                f"to {tunnel.pod}:{OPS_PORT} ({error}; {', '.join(tunnel.errors) or 'no detail'})"
            ) from error

    def close(self) -> None:
        return None


# --- pure helpers ---------------------------------------------------------------------------


def node_fault_specs(fault: PlannedFault, validators: int) -> list[tuple[int, dict[str, Any]]]:
    """(validator, node fault spec) pairs that inject ``fault`` through the fault API. A
    partition of S cuts both ways (S drops the rest, the rest drops S); a fault with a planned
    end also expires by itself ``FAULT_BACKSTOP_S`` after it."""
    inside = sorted(set(fault.ids))
    backstop: dict[str, Any] = {}
    if fault.duration_s is not None:
        backstop["duration_s"] = round(fault.duration_s + FAULT_BACKSTOP_S, 3)
    if fault.kind == "partition":
        outside = [i for i in range(validators) if i not in inside]
        if not outside or not inside:
            return []
        specs = [(i, {"kind": "partition", "peers": outside, **backstop}) for i in inside]
        specs += [(i, {"kind": "partition", "peers": inside, **backstop}) for i in outside]
        return specs
    params: dict[str, Any] = {}
    if fault.kind == "delay":
        params = {
            "delay_ms": float(fault.params.get("delay_ms", 0)),
            "jitter_ms": float(fault.params.get("jitter_ms", 0)),
        }
    elif fault.kind == "loss":
        params = {"rate": float(fault.params["rate"])}
    return [(i, {"kind": fault.kind, **params, **backstop}) for i in inside]


def chaos_objects(fault: PlannedFault, state: KubernetesState) -> list[dict[str, Any]]:
    """The Chaos Mesh objects of ``fault``: NetworkChaos for partition / delay / loss (the
    validators ``ids`` against the rest for a partition), PodChaos ``pod-failure`` for pause."""
    name = f"{state.release}-fault-{fault.index}-{fault.kind}"[:63].rstrip("-")
    selector_labels = {
        "app.kubernetes.io/instance": state.release,
        "app.kubernetes.io/component": "validator",
    }

    def selector(ids: Sequence[int]) -> dict[str, Any]:
        return {
            "namespaces": [state.namespace],
            "labelSelectors": dict(selector_labels),
            "expressionSelectors": [
                {
                    "key": "apps.kubernetes.io/pod-index",
                    "operator": "In",
                    "values": [str(i) for i in ids],
                }
            ],
        }

    metadata = {
        "name": name,
        "namespace": state.namespace,
        "labels": {
            "aitbc.io/run-id": label_value(state.run_id),
            "aitbc.io/fault": str(fault.index),
        },
    }
    duration = (
        {"duration": f"{int(fault.duration_s + FAULT_BACKSTOP_S)}s"}
        if fault.duration_s is not None
        else {}
    )
    ids = sorted(set(fault.ids))
    if fault.kind == "pause":
        return [
            {
                "apiVersion": CHAOS_API_VERSION,
                "kind": "PodChaos",
                "metadata": metadata,
                "spec": {"action": "pod-failure", "mode": "all", "selector": selector(ids)}
                | duration,
            }
        ]
    spec: dict[str, Any] = {"mode": "all", "selector": selector(ids)} | duration
    if fault.kind == "partition":
        outside = [i for i in range(state.validators) if i not in ids]
        spec |= {
            "action": "partition",
            "direction": "both",
            "target": {"mode": "all", "selector": selector(outside)},
        }
    elif fault.kind == "delay":
        spec |= {
            "action": "delay",
            "direction": "to",
            "delay": {
                "latency": f"{float(fault.params.get('delay_ms', 0)):g}ms",
                "jitter": f"{float(fault.params.get('jitter_ms', 0)):g}ms",
            },
        }
    elif fault.kind == "loss":
        spec |= {
            "action": "loss",
            "direction": "to",
            "loss": {"loss": f"{float(fault.params['rate']) * 100:g}"},
        }
    else:
        raise PlatformError(f"fault {fault.index}: {fault.kind} has no Chaos Mesh equivalent")
    return [
        {
            "apiVersion": CHAOS_API_VERSION,
            "kind": "NetworkChaos",
            "metadata": metadata,
            "spec": spec,
        }
    ]


def locust_stats_from_log(log: str) -> Any:
    """The JSON stats Locust prints at the end of a ``--json`` run (the last JSON array or
    object in the log), or None."""
    end = log.rstrip()
    for opener, closer in (("[", "]"), ("{", "}")):
        if not end.endswith(closer):
            continue
        position = end.rfind("\n" + opener)
        while position != -1:
            try:
                return json.loads(end[position + 1 :])
            except ValueError:
                position = end.rfind("\n" + opener, 0, position)
        with contextlib.suppress(ValueError):
            return json.loads(end)
    return None


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


def _user() -> str:
    with contextlib.suppress(Exception):
        return getpass.getuser()
    return os.environ.get("USER", "unknown")


def _ref(manifest: RenderedManifest) -> ObjectRef:
    return ObjectRef(
        api_version=str(manifest.body.get("apiVersion")),
        kind=manifest.kind,
        name=manifest.name,
        source=manifest.source,
    )


def _ref_of(body: Mapping[str, Any]) -> ObjectRef:
    return ObjectRef(
        api_version=str(body["apiVersion"]), kind=str(body["kind"]), name=body["metadata"]["name"]
    )


def _chaos_injected(body: Mapping[str, Any]) -> bool:
    for condition in (body.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "AllInjected" and str(condition.get("status")) == "True":
            return True
    return False


def _error_text(reply: ProxyResponse) -> str:
    document = reply.json()
    if isinstance(document, dict) and document.get("error"):
        return str(document["error"])
    return reply.body.decode("utf-8", "replace")[:200]


def _parallel(
    action: Callable[[Any], Any], items: Sequence[Any], workers: int = 8
) -> Iterable[Any]:
    """``action`` over ``items`` with at most ``workers`` at once (a 1,000-validator partition
    is 1,000 requests); results in order; the first error is raised."""
    if len(items) <= 1:
        return [action(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(action, items))


_ = KubeApiError  # re-exported for callers catching the kube layer's errors
