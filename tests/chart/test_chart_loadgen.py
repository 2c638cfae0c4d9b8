"""The chart's load generator: the Locust master Job and the indexed worker Job both read the
testnet genesis from the config ConfigMap (``/etc/aitbc/genesis.json`` = ``AITBC_GENESIS``),
every worker gets ``AITBC_WORKERS`` and its own ``AITBC_WORKER_INDEX`` (the Job completion
index), values that contradict the chart fail with a clear message, and the objects stay valid
for Kubernetes 1.29..1.33, also as ``aitbc-testnet render`` writes them for a scenario."""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

import pytest
from chart_support import FULLNAME, Render, by_kind, network_values

# orchestrator.cli first: importing a command module before the CLI leaves that command
# unregistered on the app (the CLI registers the modules of orchestrator.commands at import).
import orchestrator.cli  # noqa: F401
from orchestrator.commands.render import render_scenario
from orchestrator.external.helm import ChartValuesError, RenderedManifest
from orchestrator.external.manifest_validation import DEFAULT_KUBERNETES_VERSIONS, check_manifests

GENESIS_PATH = "/etc/aitbc/genesis.json"
MASTER = f"{FULLNAME}-loadgen-master"
WORKER = f"{FULLNAME}-loadgen-worker"
CONFIG = f"{FULLNAME}-config"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
BASE: dict[str, Any] = {
    **network_values(7, 5, "aitbc-loadgen"),
    "loadgen": {"enabled": True, "workers": 3, "env": {"AITBC_TPS": 500}},
}


def loadgen_jobs(manifests: list[RenderedManifest]) -> dict[str, dict[str, Any]]:
    return {m.name: m.body for m in by_kind(manifests, "Job")}


def pod_spec(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


def container(job: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(job)["containers"]
    assert len(containers) == 1
    only: dict[str, Any] = containers[0]
    return only


def env_items(job: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = container(job)["env"]
    return items


def plain_env(job: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in env_items(job) if "value" in item}


def mounted_files(job: dict[str, Any], manifests: list[RenderedManifest]) -> dict[str, str]:
    """Path in the container -> content, for every ConfigMap file the container mounts
    (resolved as the kubelet would: mountPath / item path, or every key without items)."""
    configmaps = {m.name: m.body for m in by_kind(manifests, "ConfigMap")}
    volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
    files: dict[str, str] = {}
    for mount in container(job)["volumeMounts"]:
        source = volumes[mount["name"]].get("configMap")
        if source is None:
            continue
        data = configmaps[source["name"]]["data"]
        items = source.get("items") or [{"key": key, "path": key} for key in data]
        for item in items:
            files[posixpath.join(mount["mountPath"], item["path"])] = data[item["key"]]
    return files


@pytest.fixture(scope="module")
def manifests(render: Render) -> list[RenderedManifest]:
    return render(BASE)


def test_master_and_workers_read_the_configmap_genesis_at_aitbc_genesis(
    manifests: list[RenderedManifest],
) -> None:
    genesis = BASE["genesis.json"]
    jobs = loadgen_jobs(manifests)
    assert set(jobs) == {MASTER, WORKER}
    for name, job in jobs.items():
        env = plain_env(job)
        assert env["AITBC_GENESIS"] == GENESIS_PATH, name
        files = mounted_files(job, manifests)
        assert files.get(GENESIS_PATH) == genesis, (name, sorted(files))
        assert list(files) == [GENESIS_PATH], name  # node.yaml (admin settings) not exposed
        mount = next(m for m in container(job)["volumeMounts"] if m["name"] == "config")
        assert mount["readOnly"] is True
        volume = next(v for v in pod_spec(job)["volumes"] if v["name"] == "config")
        assert volume["configMap"]["name"] == CONFIG


def test_workers_are_an_indexed_job_with_distinct_indices(
    manifests: list[RenderedManifest],
) -> None:
    worker = loadgen_jobs(manifests)[WORKER]
    spec = worker["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 3  # every index runs at once
    assert pod_spec(worker)["restartPolicy"] == "OnFailure"
    assert spec["backoffLimit"] == 6
    index = [item for item in env_items(worker) if item["name"] == "AITBC_WORKER_INDEX"]
    assert index == [
        {
            "name": "AITBC_WORKER_INDEX",
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_ANNOTATION}']"}},
        }
    ]
    env = plain_env(worker)
    assert env["AITBC_WORKERS"] == "3" and env["AITBC_TPS"] == "500"
    assert "--worker" in container(worker)["args"]
    assert f"--master-host={MASTER}" in container(worker)["args"]


def test_the_master_knows_the_worker_count_and_has_no_worker_index(
    manifests: list[RenderedManifest],
) -> None:
    master = loadgen_jobs(manifests)[MASTER]
    env = plain_env(master)
    assert env["AITBC_WORKERS"] == "3"
    assert "--expect-workers=3" in container(master)["args"]
    assert all(item["name"] != "AITBC_WORKER_INDEX" for item in env_items(master))


def test_the_master_job_comes_first(manifests: list[RenderedManifest]) -> None:
    # The kubernetes platform takes the first loadgen Job as the master whose end is the end
    # of the load; rendering order must keep it ahead of the worker Job.
    assert [m.name for m in by_kind(manifests, "Job")] == [MASTER, WORKER]


def test_env_given_by_the_orchestrator_is_not_duplicated(tmp_path: Path) -> None:
    result = render_scenario("devnet-smoke", tmp_path / "out")
    jobs = {m.name: m.body for m in result.manifests if m.kind == "Job"}
    assert len(jobs) == 2, sorted(jobs)
    worker = next(job for name, job in jobs.items() if name.endswith("-loadgen-worker"))
    for name, job in jobs.items():
        names = [item["name"] for item in env_items(job)]
        assert len(names) == len(set(names)), (name, names)
        env = plain_env(job)
        assert env["AITBC_GENESIS"] == GENESIS_PATH, name
        assert env["AITBC_WORKERS"] == str(worker["spec"]["completions"]), name
    report = check_manifests(result.manifests)
    assert report.ok, report.errors


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"AITBC_WORKERS": "5"}, "loadgen.env.AITBC_WORKERS=5 but loadgen.workers=3"),
        ({"AITBC_GENESIS": "/data/g.json"}, f"the chart mounts the genesis at {GENESIS_PATH}"),
        ({"AITBC_WORKER_INDEX": "0"}, "each worker gets its own index"),
    ],
    ids=["workers", "genesis", "worker-index"],
)
def test_contradicting_env_is_rejected(render: Render, env: dict[str, str], fragment: str) -> None:
    values = {**BASE, "loadgen": {**BASE["loadgen"], "env": env}}
    with pytest.raises(ChartValuesError) as caught:
        render(values)
    assert fragment in str(caught.value)


def test_consistent_env_is_accepted_once(render: Render) -> None:
    env = {"AITBC_WORKERS": "3", "AITBC_GENESIS": GENESIS_PATH}
    jobs = loadgen_jobs(render({**BASE, "loadgen": {**BASE["loadgen"], "env": env}}))
    for job in jobs.values():
        names = [item["name"] for item in env_items(job)]
        assert names.count("AITBC_WORKERS") == names.count("AITBC_GENESIS") == 1


@pytest.mark.parametrize("bad", [-1, "6"])
def test_schema_rejects_a_bad_worker_backoff_limit(render: Render, bad: Any) -> None:
    with pytest.raises(ChartValuesError) as caught:
        render({**BASE, "loadgen": {**BASE["loadgen"], "workerBackoffLimit": bad}})
    assert "workerBackoffLimit" in str(caught.value)


@pytest.mark.parametrize("workers", [1, 3, 500])
def test_loadgen_objects_validate_for_every_supported_kubernetes(
    render: Render, workers: int
) -> None:
    manifests = render({**BASE, "loadgen": {**BASE["loadgen"], "workers": workers}})
    loadgen = [m for m in manifests if "loadgen" in m.source]
    assert {(m.kind, m.name) for m in loadgen} == {
        ("Job", MASTER),
        ("Job", WORKER),
        ("Service", MASTER),
    }
    report = check_manifests(manifests, DEFAULT_KUBERNETES_VERSIONS)
    assert report.versions == ("1.29", "1.30", "1.31", "1.32", "1.33")
    assert report.ok, report.errors
    assert loadgen_jobs(manifests)[WORKER]["spec"]["completions"] == workers
