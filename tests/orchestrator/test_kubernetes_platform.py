"""The kubernetes platform against an emulated Kubernetes API server (kmock, a real HTTP
server on 127.0.0.1; see test_kubernetes_emulator.py for what it adds to kmock). The platform
is synchronous: each call runs in a worker thread while the emulator serves on the test's
event loop. Faults reach REAL node ops servers (aitbc_node.ops.http with its FaultController)
through the emulated pod proxy."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import kmock
import pytest
import pytest_asyncio
from aitbc_node.ops.faults import FaultController
from aitbc_node.ops.http import OpsServer, start_ops_server
from prometheus_client import CollectorRegistry
from test_kubernetes_emulator import (  # noqa: F401  (the cluster fixture)
    ClusterEmulator,
    cluster,
    write_kubeconfig,
)

from orchestrator.errors import PlatformError
from orchestrator.external.kubernetes import KubeConfigError, KubeForbiddenError, RetryPolicy
from orchestrator.faults.driver import apply_fault, clear_fault
from orchestrator.platforms import PLATFORMS, get_platform
from orchestrator.platforms.capabilities import capabilities_of
from orchestrator.platforms.kubernetes import KubernetesOptions, KubernetesPlatform
from orchestrator.platforms.kubernetes.chaos import chaos_objects
from orchestrator.platforms.kubernetes.state import KubernetesState
from orchestrator.scenario.loader import load_scenario
from orchestrator.scenario.plan import Plan, PlannedFault, resolve_plan

SCENARIO = """\
name: kube-test
network: {validators: 4, authorities: 4, seed: 3}
load: {duration: 30s, warmup: 5s, cooldown: 5s, accounts: 8}
faults:
  - {at: 10s, kind: partition, target: [0], duration: 5s}
  - {at: 12s, kind: kill, target: [1]}
  - {at: 14s, kind: delay, target: [2], duration: 3s, params: {delay_ms: 50}}
"""
RUN_ID = "kube-test-1"
NAMESPACE = "aitbc-kube-test-1"
STS = "kube-test-aitbc-testnet"
FAST_RETRY = RetryPolicy(attempts=5, first_delay_s=0.01, max_delay_s=0.05)
PODS = kmock.resource("v1/pods")
STATEFULSETS = kmock.resource("apps/v1/statefulsets")


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    path = tmp_path / "kube-test.yaml"
    path.write_text(SCENARIO)
    return resolve_plan(load_scenario(path), platform="kubernetes", run_id=RUN_ID)


@pytest.fixture
def make_platform(
    cluster: ClusterEmulator,  # noqa: F811
    tmp_path: Path,
) -> Callable[..., KubernetesPlatform]:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", str(cluster.url).rstrip("/"))

    def _make(**overrides: Any) -> KubernetesPlatform:
        fields: dict[str, Any] = {
            "kubeconfig": kubeconfig,
            "prometheus_url": "http://prometheus.example:9090",
            "poll_s": 0.02,
            "restart_timeout_s": 120.0,
            "in_cluster_endpoints": True,
        }
        fields.update(overrides)
        return KubernetesPlatform(
            tmp_path / "runs" / RUN_ID, KubernetesOptions(**fields), retry=FAST_RETRY
        )

    return _make


def sts_key() -> tuple[Any, str, str]:
    return (STATEFULSETS, NAMESPACE, STS)


def add_pod(cluster: ClusterEmulator, index: int, *, ready: bool = True) -> str:  # noqa: F811
    uid = str(uuid.uuid4())
    cluster.objects[PODS, NAMESPACE, f"{STS}-{index}"] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{STS}-{index}",
            "namespace": NAMESPACE,
            "uid": uid,
            "labels": {"app.kubernetes.io/component": "validator"},
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }
    return uid


@pytest_asyncio.fixture
async def nodes(cluster: ClusterEmulator) -> AsyncIterator[dict[int, FaultController]]:  # noqa: F811
    """Four real node ops servers (fault API), reachable through the emulated pod proxy once
    a test registers the token (``serve_nodes``)."""
    controllers = {index: FaultController(peer_ids=range(4)) for index in range(4)}
    servers: list[OpsServer] = []
    yield controllers
    for server in servers:
        await server.close()


async def serve_nodes(
    cluster: ClusterEmulator,  # noqa: F811
    controllers: dict[int, FaultController],
    token: str,
) -> list[OpsServer]:
    servers = []
    for index, controller in controllers.items():
        server = await start_ops_server(
            "127.0.0.1",
            0,
            registry=CollectorRegistry(),
            faults=controller,
            admin_token=token,
            readiness=lambda: (True, "ready"),
        )
        servers.append(server)
        cluster.proxy_backends[(NAMESPACE, f"{STS}-{index}", 9100)] = server.url
    return servers


# --- install ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_install_creates_a_labelled_namespace_and_applies_the_chart(
    cluster: ClusterEmulator,  # noqa: F811
    make_platform: Callable[..., KubernetesPlatform],
    plan: Plan,
) -> None:
    platform = make_platform(prometheus_url=None)  # the bundled Prometheus too
    await asyncio.to_thread(platform.deploy, plan)

    namespace = cluster.namespaces[NAMESPACE]
    labels = namespace["metadata"]["labels"]
    assert labels["aitbc.io/run-id"] == RUN_ID
    assert labels["aitbc.io/scenario"] == "kube-test"
    assert labels["aitbc.io/user"]
    annotations = namespace["metadata"]["annotations"]
    assert annotations["aitbc.io/ttl"] == "86400s"
    assert annotations["aitbc.io/expires-at"]

    statefulset = cluster.objects[sts_key()]
    assert statefulset["spec"]["replicas"] == 4
    assert statefulset["metadata"]["labels"]["aitbc.io/run-id"] == RUN_ID
    assert statefulset["metadata"]["labels"]["app.kubernetes.io/instance"] == "kube-test"
    kinds = {key[0].plural for key in cluster.objects}
    assert {"configmaps", "secrets", "services", "poddisruptionbudgets", "deployments"} <= kinds
    assert not {"jobs"} & kinds  # the load generator starts with start_load, not deploy
    config = cluster.objects[kmock.resource("v1/configmaps"), NAMESPACE, f"{STS}-config"]
    genesis = json.loads(config["data"]["genesis.json"])
    assert len(genesis["validators"]) == 4
    assert config["data"]["node.yaml"].count(genesis["chain_id"]) == 1

    applies = [r for r in cluster if r.method == "PATCH"]
    assert applies and all(
        r.headers["Content-Type"].startswith("application/apply-patch+yaml") for r in applies
    )
    assert all(r.params.get("fieldManager") == "aitbc-testnet" for r in applies)
    state = json.loads((platform.run_dir / "state.json").read_text())
    assert state["namespace"] == NAMESPACE and state["statefulset"] == STS
    assert set(capabilities_of(platform)) == set(PLATFORMS["kubernetes"].capabilities)
    endpoint = platform.endpoints()[2]  # in a pod: the headless Service's DNS names
    assert endpoint.grpc == f"{STS}-2.{STS}-headless.{NAMESPACE}.svc.cluster.local:7000"
    assert endpoint.ops.endswith(".svc.cluster.local:9100")


# --- readiness --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_wait_ready_returns_when_the_statefulset_status_flips(
    cluster: ClusterEmulator,  # noqa: F811
    make_platform: Callable[..., KubernetesPlatform],
    plan: Plan,
) -> None:
    platform = make_platform()
    await asyncio.to_thread(platform.deploy, plan)
    waiting = asyncio.ensure_future(asyncio.to_thread(platform.wait_ready, 120.0))
    await asyncio.sleep(0.3)
    assert not waiting.done()  # no status yet: 0/4 ready
    cluster.objects[sts_key()].patch(
        {"status": {"observedGeneration": 1, "readyReplicas": 3, "replicas": 4}}
    )
    await asyncio.sleep(0.2)
    assert not waiting.done()  # 3/4 ready
    cluster.objects[sts_key()].patch(
        {
            "status": {
                "observedGeneration": 1,
                "readyReplicas": 4,
                "currentRevision": "kube-test-aitbc-testnet-7d9",
                "updateRevision": "kube-test-aitbc-testnet-7d9",
            }
        }
    )
    await asyncio.wait_for(waiting, timeout=120.0)


@pytest.mark.asyncio
async def test_wait_ready_times_out_with_status_and_artifacts(
    cluster: ClusterEmulator,  # noqa: F811
    make_platform: Callable[..., KubernetesPlatform],
    plan: Plan,
) -> None:
    platform = make_platform()
    await asyncio.to_thread(platform.deploy, plan)
    add_pod(cluster, 0, ready=False)
    cluster.objects[sts_key()].patch(
        {
            "status": {
                "observedGeneration": 1,
                "readyReplicas": 2,
                "currentRevision": "a",
                "updateRevision": "b",
            }
        }
    )
    (
        cluster["get", kmock.resource("v1/pods"), kmock.subresource("log")]
        << b"node 0: waiting for peers\n"
    )
    with pytest.raises(PlatformError) as caught:
        await asyncio.to_thread(platform.wait_ready, 0.3)
    message = str(caught.value)
    assert "2/4 ready" in message and "revision a -> b" in message
    artifacts = platform.run_dir / "artifacts"
    assert "waiting for peers" in (artifacts / "logs" / f"{STS}-0.log").read_text()
    status = json.loads((artifacts / "status.json").read_text())
    assert status["statefulset"]["ready_replicas"] == 2
    assert (artifacts / "events.json").exists()
    assert "(removed)" in (artifacts / "state.json").read_text()


# --- kill and restart -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_kill_deletes_the_pod_with_grace_zero_and_restart_waits_for_a_new_one(
    cluster: ClusterEmulator,  # noqa: F811
    make_platform: Callable[..., KubernetesPlatform],
    plan: Plan,
) -> None:
    platform = make_platform()
    await asyncio.to_thread(platform.deploy, plan)
    old_uid = add_pod(cluster, 1)
    await asyncio.to_thread(platform.kill, 1)

    deletes = [r for r in cluster if r.method == "DELETE" and r.resource == PODS]
    assert [r.name for r in deletes] == [f"{STS}-1"]
    assert deletes[0].params.get("gracePeriodSeconds") == "0"
    assert (PODS, NAMESPACE, f"{STS}-1") not in cluster.objects or cluster.objects[
        PODS, NAMESPACE, f"{STS}-1"
    ].deleted

    restarting = asyncio.ensure_future(asyncio.to_thread(platform.restart, 1))
    await asyncio.sleep(0.2)
    assert not restarting.done()  # the StatefulSet has not recreated it yet
    new_uid = add_pod(cluster, 1, ready=False)
    await asyncio.sleep(0.2)
    assert not restarting.done()  # recreated but not ready
    add_pod(cluster, 1, ready=True)
    await asyncio.wait_for(restarting, timeout=120.0)
    assert new_uid != old_uid


@pytest.mark.asyncio
async def test_restart_gives_up_after_its_timeout(
    make_platform: Callable[..., KubernetesPlatform],
    plan: Plan,
) -> None:
    platform = make_platform(restart_timeout_s=0.3)
    await asyncio.to_thread(platform.deploy, plan)
    with pytest.raises(PlatformError, match="not back and ready"):
        await asyncio.to_thread(platform.restart, 2)


# --- faults through the pod proxy ------------------------------------------------------------


@pytest.mark.asyncio
async def test_fault_via_pod_proxy_is_applied_verified_and_cleared(
    cluster: ClusterEmulator,  # noqa: F811
    make_platform: Callable[..., KubernetesPlatform],
    plan: Plan,
    nodes: dict[int, FaultController],
) -> None:
    platform = make_platform()
    await asyncio.to_thread(platform.deploy, plan)
    servers = await serve_nodes(cluster, nodes, platform.admin_token())
    try:
        partition = plan.faults[0]
        await asyncio.to_thread(apply_fault, platform, partition)
        assert [f.params["peers"] for f in nodes[0].active()] == [[1, 2, 3]]
        for index in (1, 2, 3):
            assert [(f.kind, f.params["peers"]) for f in nodes[index].active()] == [
                ("partition", [0])
            ]
        puts = [entry for entry in cluster.proxy_log if entry["method"] == "PUT"]
        assert len(puts) == 4
        first = next(entry for entry in puts if entry["pod"] == f"{STS}-0")
        assert (
            first["path"] == f"/api/v1/namespaces/{NAMESPACE}/pods/{STS}-0:9100/proxy/admin/faults"
        )
        assert first["headers"]["Authorization"] == f"Bearer {platform.admin_token()}"
        body = json.loads(first["body"])
        assert body["kind"] == "partition" and body["peers"] == [1, 2, 3]
        assert body["duration_s"] == pytest.approx(35.0)
        gets = [entry for entry in cluster.proxy_log if entry["method"] == "GET"]
        assert len(gets) >= 4  # every PUT verified by a GET

        delay = plan.faults[2]
        await asyncio.to_thread(apply_fault, platform, delay)
        assert [f.kind for f in nodes[2].active()] == ["partition", "delay"]

        await asyncio.to_thread(clear_fault, platform, partition)
        assert [f.kind for f in nodes[2].active()] == ["delay"]
        assert all(not nodes[i].active() for i in (0, 1, 3))
        await asyncio.to_thread(platform.destroy)  # clears what is still applied
        assert not nodes[2].active()
    finally:
        for server in servers:
            await server.close()


@pytest.mark.asyncio
async def test_a_refused_fault_is_a_platform_error_naming_the_validator(
    cluster: ClusterEmulator,  # noqa: F811
    make_platform: Callable[..., KubernetesPlatform],
    plan: Plan,
    nodes: dict[int, FaultController],
) -> None:
    platform = make_platform()
    await asyncio.to_thread(platform.deploy, plan)
    servers = await serve_nodes(cluster, nodes, "another-token")
    try:
        with pytest.raises(PlatformError, match="validator 2: the fault API refused delay"):
            await asyncio.to_thread(apply_fault, platform, plan.faults[2])
    finally:
        for server in servers:
            await server.close()


# --- teardown ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_destroy_deletes_the_namespace_and_is_idempotent(
    cluster: ClusterEmulator,  # noqa: F811
    make_platform: Callable[..., KubernetesPlatform],
    plan: Plan,
) -> None:
    platform = make_platform()
    await asyncio.to_thread(platform.deploy, plan)
    assert NAMESPACE in cluster.namespaces
    await asyncio.to_thread(platform.destroy)
    assert NAMESPACE not in cluster.namespaces
    assert ("DELETE", f"/api/v1/namespaces/{NAMESPACE}") in [
        (method, path) for method, path, _, _ in cluster.namespace_log
    ]
    again = make_platform()  # a later invocation, from state.json
    await asyncio.to_thread(again.destroy)
    assert platform.run_dir.joinpath("state.json").exists()  # the run directory stays


@pytest.mark.asyncio
async def test_registry_builds_the_platform_from_the_environment(
    cluster: ClusterEmulator,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kc", str(cluster.url).rstrip("/"), "ctx-a")
    monkeypatch.setenv("AITBC_KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("AITBC_KUBE_CONTEXT", "ctx-a")
    monkeypatch.setenv("AITBC_CHAOS", "chaos-mesh")
    monkeypatch.setenv("AITBC_IMAGE_TAG", "9.9.9")
    monkeypatch.setenv("AITBC_PROMETHEUS_URL", "http://prom:9090")
    platform = get_platform("kubernetes", tmp_path / "run")
    assert isinstance(platform, KubernetesPlatform)
    options = platform.options
    assert (options.kubeconfig, options.context, options.chaos, options.image_tag) == (
        kubeconfig,
        "ctx-a",
        "chaos-mesh",
        "9.9.9",
    )
    assert options.prometheus_url == "http://prom:9090"


# --- retries and errors -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_conflicts_are_retried_until_the_apply_succeeds(
    cluster: ClusterEmulator,  # noqa: F811
    make_platform: Callable[..., KubernetesPlatform],
    plan: Plan,
) -> None:
    platform = make_platform()
    await asyncio.to_thread(platform.deploy, plan)
    conflict = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": "Conflict",
        "message": "Operation cannot be fulfilled on statefulsets.apps: the object has been "
        "modified",
        "code": 409,
    }
    answers = iter([kmock.Response(status=409, payload=conflict)] * 2)
    cluster["patch", STATEFULSETS] << (lambda: next(answers, StopIteration()))
    before = len([r for r in cluster if r.method == "PATCH" and r.resource == STATEFULSETS])
    await asyncio.to_thread(platform.upgrade, plan)
    after = len([r for r in cluster if r.method == "PATCH" and r.resource == STATEFULSETS])
    assert after - before == 3  # 409, 409, then applied


@pytest.mark.asyncio
async def test_conflicts_that_never_stop_fail_clearly(
    cluster: ClusterEmulator,  # noqa: F811
    make_platform: Callable[..., KubernetesPlatform],
    plan: Plan,
) -> None:
    platform = make_platform()
    await asyncio.to_thread(platform.deploy, plan)
    cluster["patch", STATEFULSETS] << 409 << {"kind": "Status", "message": "conflict", "code": 409}
    with pytest.raises(PlatformError, match="409 Conflict after retries"):
        await asyncio.to_thread(platform.upgrade, plan)


@pytest.mark.asyncio
async def test_a_namespace_still_terminating_is_waited_for(
    cluster: ClusterEmulator,  # noqa: F811
    make_platform: Callable[..., KubernetesPlatform],
    plan: Plan,
) -> None:
    cluster.namespaces[NAMESPACE] = {
        "metadata": {"name": NAMESPACE, "deletionTimestamp": "2026-01-01T00:00:00Z"},
        "status": {"phase": "Terminating"},
    }
    platform = make_platform()

    async def finish_deletion() -> None:
        await asyncio.sleep(0.15)
        del cluster.namespaces[NAMESPACE]

    remover = asyncio.ensure_future(finish_deletion())
    await asyncio.to_thread(platform.deploy, plan)
    await remover
    assert cluster.namespaces[NAMESPACE]["status"]["phase"] == "Active"
    reads = [entry for entry in cluster.namespace_log if entry[0] == "GET"]
    assert len(reads) >= 2  # looked again after the backoff


@pytest.mark.asyncio
async def test_forbidden_is_a_clear_platform_error(
    cluster: ClusterEmulator,  # noqa: F811
    make_platform: Callable[..., KubernetesPlatform],
    plan: Plan,
) -> None:
    platform = make_platform()
    await asyncio.to_thread(platform.deploy, plan)
    (
        cluster["get", STATEFULSETS]
        << 403
        << {
            "kind": "Status",
            "code": 403,
            "reason": "Forbidden",
            "message": 'statefulsets.apps "kube-test-aitbc-testnet" is forbidden: User "dev" '
            'cannot get resource "statefulsets" in API group "apps"',
        }
    )
    with pytest.raises(KubeForbiddenError) as caught:
        await asyncio.to_thread(platform.wait_ready, 5.0)
    message = str(caught.value)
    assert "403 Forbidden" in message and 'User "dev" cannot get' in message
    assert "needs RBAC permission" in message
    assert caught.value.exit_code == 3


def test_missing_kubeconfig_is_a_clear_platform_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plan: Plan
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    platform = KubernetesPlatform(tmp_path / "run", KubernetesOptions())
    with pytest.raises(KubeConfigError) as caught:
        platform.deploy(plan)
    message = str(caught.value)
    assert "no kubeconfig found" in message and str(tmp_path / ".kube" / "config") in message
    assert "kind create cluster" in message
    assert caught.value.exit_code == 3


def test_named_kubeconfig_that_does_not_exist(tmp_path: Path, plan: Plan) -> None:
    platform = KubernetesPlatform(tmp_path / "run", KubernetesOptions(kubeconfig=tmp_path / "nope"))
    with pytest.raises(KubeConfigError, match=r"kubeconfig .*nope does not exist"):
        platform.deploy(plan)


def test_unknown_context_lists_the_known_ones(tmp_path: Path, plan: Plan) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:9", "kind-aitbc")
    platform = KubernetesPlatform(
        tmp_path / "run", KubernetesOptions(kubeconfig=kubeconfig, context="prod")
    )
    with pytest.raises(KubeConfigError, match=r"context 'prod' is not in .*it has: kind-aitbc"):
        platform.deploy(plan)


def test_unreachable_api_server_is_a_platform_error(tmp_path: Path, plan: Plan) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:9")
    platform = KubernetesPlatform(
        tmp_path / "run", KubernetesOptions(kubeconfig=kubeconfig), retry=FAST_RETRY
    )
    with pytest.raises(PlatformError, match="does not answer"):
        platform.deploy(plan)


# --- Chaos Mesh -------------------------------------------------------------------------------

NETWORKCHAOS = kmock.resource("chaos-mesh.org/v1alpha1/networkchaos")


@pytest.mark.asyncio
async def test_chaos_mesh_partition_is_a_networkchaos_verified_and_deleted(
    cluster: ClusterEmulator,  # noqa: F811
    make_platform: Callable[..., KubernetesPlatform],
    plan: Plan,
) -> None:
    platform = make_platform(chaos="chaos-mesh")
    await asyncio.to_thread(platform.deploy, plan)
    partition = plan.faults[0]
    applying = asyncio.ensure_future(asyncio.to_thread(apply_fault, platform, partition))
    key = (NETWORKCHAOS, NAMESPACE, "kube-test-fault-0-partition")
    for _ in range(100):
        if key in cluster.objects:
            break
        await asyncio.sleep(0.02)
    chaos = cluster.objects[key]
    assert chaos["spec"]["action"] == "partition"
    assert chaos["spec"]["direction"] == "both"
    assert chaos["spec"]["selector"]["expressionSelectors"][0]["values"] == ["0"]
    assert chaos["spec"]["target"]["selector"]["expressionSelectors"][0]["values"] == [
        "1",
        "2",
        "3",
    ]
    assert chaos["spec"]["duration"] == "35s"
    await asyncio.sleep(0.1)
    assert not applying.done()  # not verified until Chaos Mesh reports AllInjected
    chaos.patch({"status": {"conditions": [{"type": "AllInjected", "status": "True"}]}})
    await asyncio.wait_for(applying, timeout=120.0)
    assert not cluster.proxy_log  # nothing went to the node fault API

    await asyncio.to_thread(clear_fault, platform, partition)
    assert cluster.objects[key].deleted


def test_pause_is_a_podchaos_and_equivocate_has_no_chaos_equivalent(plan: Plan) -> None:
    state = KubernetesState(
        run_id=RUN_ID,
        scenario_name="kube-test",
        scenario={},
        namespace=NAMESPACE,
        release="kube-test",
        statefulset=STS,
        headless_service=f"{STS}-headless",
        validators=4,
        admin_token="t",
    )
    pause = PlannedFault(
        index=7,
        kind="pause",
        target="[3]",
        ids=(3,),
        start_s=1.0,
        end_s=None,
        params={},
        fractions=plan.faults[0].fractions,
    )
    (body,) = chaos_objects(pause, state)
    assert body["kind"] == "PodChaos" and body["spec"]["action"] == "pod-failure"
    assert "duration" not in body["spec"]  # open-ended until cleared
    equivocate = PlannedFault(**{**pause.__dict__, "kind": "equivocate"})
    with pytest.raises(PlatformError, match="no Chaos Mesh equivalent"):
        chaos_objects(equivocate, state)


# --- load generator ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_load_is_the_charts_locust_job_and_its_results_come_from_the_master_log(
    cluster: ClusterEmulator,  # noqa: F811
    make_platform: Callable[..., KubernetesPlatform],
    plan: Plan,
) -> None:
    platform = make_platform()
    await asyncio.to_thread(platform.deploy, plan)
    await asyncio.to_thread(platform.start_load, plan)
    job_key = (kmock.resource("batch/v1/jobs"), NAMESPACE, f"{STS}-loadgen-master")
    job = cluster.objects[job_key]
    env = {
        e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["AITBC_TPS"] == "100" and env["AITBC_RUN_ID"] == RUN_ID
    assert (kmock.resource("batch/v1/jobs"), NAMESPACE, f"{STS}-loadgen-worker") in (
        cluster.objects
    )
    assert await asyncio.to_thread(platform.load_running)

    cluster.objects[PODS, NAMESPACE, f"{STS}-loadgen-master-x1"] = {
        "metadata": {
            "name": f"{STS}-loadgen-master-x1",
            "namespace": NAMESPACE,
            "labels": {
                "app.kubernetes.io/instance": "kube-test",
                "app.kubernetes.io/component": "loadgen-master",
            },
        },
        "status": {"phase": "Succeeded"},
    }
    stats = [{"name": "SubmitTransactions", "method": "grpc", "num_requests": 600}]
    log = "[2026-01-01] master: test finished\n" + json.dumps(stats, indent=1) + "\n"
    cluster["get", PODS, kmock.subresource("log")] << log.encode()
    job.patch({"status": {"succeeded": 1}})
    assert await asyncio.to_thread(platform.wait_load, 2.0)
    await asyncio.to_thread(platform.stop_load)
    saved = json.loads((platform.run_dir / "load" / "locust-stats.json").read_text())
    assert saved == stats
    assert "test finished" in (platform.run_dir / "load" / "locust-master.log").read_text()
    assert cluster.objects[job_key].deleted
