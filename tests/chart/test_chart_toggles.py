"""Each optional feature renders what it should and nothing else: compare the set of
(kind, name) with and without it, and check the base objects are left unchanged."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from chart_support import DASHBOARDS_DIR, FULLNAME, NAMESPACE, Render, by_kind, kind_names, one

from orchestrator.external.helm import RenderedManifest

BASE_VALUES: dict[str, Any] = {"validators": 7, "authorities": 7}
EXPERIMENTS = [
    {
        "name": "partition",
        "kind": "NetworkChaos",
        "action": "partition",
        "validators": [0, 1],
        "targetValidators": [2, 3, 4, 5, 6],
        "direction": "both",
        "duration": "30s",
    },
    {
        "name": "delay",
        "kind": "NetworkChaos",
        "action": "delay",
        "mode": "fixed",
        "value": 2,
        "spec": {"delay": {"latency": "100ms", "jitter": "10ms"}},
    },
    {"name": "kill", "kind": "PodChaos", "action": "pod-kill", "validators": [6], "paused": True},
]
PROMETHEUS = f"{FULLNAME}-prometheus"
TOGGLES: dict[str, tuple[dict[str, Any], set[tuple[str, str]]]] = {
    "podMonitor": ({"podMonitor": {"enabled": True}}, {("PodMonitor", FULLNAME)}),
    "prometheus": (
        {"prometheus": {"enabled": True}},
        {
            ("ServiceAccount", PROMETHEUS),
            ("Role", PROMETHEUS),
            ("RoleBinding", PROMETHEUS),
            ("ConfigMap", PROMETHEUS),
            ("Deployment", PROMETHEUS),
            ("Service", PROMETHEUS),
        },
    ),
    "networkPolicy": ({"networkPolicy": {"enabled": True}}, {("NetworkPolicy", FULLNAME)}),
    "chaosMesh": (
        {"chaosMesh": {"enabled": True, "experiments": EXPERIMENTS}},
        {
            ("NetworkChaos", f"{FULLNAME}-partition"),
            ("NetworkChaos", f"{FULLNAME}-delay"),
            ("PodChaos", f"{FULLNAME}-kill"),
        },
    ),
    "loadgen": (
        {"loadgen": {"enabled": True}},
        {
            ("Job", f"{FULLNAME}-loadgen-master"),
            ("Service", f"{FULLNAME}-loadgen-master"),
            ("Job", f"{FULLNAME}-loadgen-worker"),
        },
    ),
    "nightly": (
        {"nightly": {"enabled": True}},
        {
            (kind, f"{FULLNAME}-nightly")
            for kind in (
                "ServiceAccount",
                "ConfigMap",
                "PersistentVolumeClaim",
                "ClusterRole",
                "ClusterRoleBinding",
                "CronJob",
            )
        },
    ),
    "dashboards": (
        {"dashboards": {"enabled": True}},
        {
            ("ConfigMap", f"{FULLNAME}-dashboard-{path.stem}")
            for path in DASHBOARDS_DIR.glob("*.json")
        },
    ),
}


def bodies(manifests: list[RenderedManifest]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m.kind, m.name): m.body for m in manifests}


@pytest.mark.parametrize("toggle", sorted(TOGGLES))
def test_toggle_adds_exactly_its_objects(render: Render, toggle: str) -> None:
    extra, expected = TOGGLES[toggle]
    assert expected, "the toggle must be expected to add something"
    base = render(BASE_VALUES)
    with_toggle = render({**BASE_VALUES, **extra})
    assert kind_names(with_toggle) - kind_names(base) == expected
    assert kind_names(base) - kind_names(with_toggle) == set()
    base_bodies = bodies(base)
    for key, body in bodies(with_toggle).items():
        if key in base_bodies:
            assert body == base_bodies[key], f"{toggle} changed {key}"


@pytest.mark.parametrize("toggle", sorted(TOGGLES))
def test_every_toggle_is_off_by_default(render: Render, toggle: str) -> None:
    _, expected = TOGGLES[toggle]
    assert not expected & kind_names(render(BASE_VALUES))


def test_chaos_experiments_need_the_toggle_and_an_empty_list_renders_nothing(
    render: Render,
) -> None:
    base = kind_names(render(BASE_VALUES))
    listed_but_off = {**BASE_VALUES, "chaosMesh": {"enabled": False, "experiments": EXPERIMENTS}}
    assert kind_names(render(listed_but_off)) == base
    on_but_empty = {**BASE_VALUES, "chaosMesh": {"enabled": True, "experiments": []}}
    assert kind_names(render(on_but_empty)) == base


def test_pod_monitor_selects_validators_and_loadgen_with_the_release_label(
    render: Render,
) -> None:
    values = {**BASE_VALUES, "podMonitor": {"enabled": True, "releaseLabel": "monitoring"}}
    monitor = one(render(values), "PodMonitor")
    assert monitor["metadata"]["labels"]["release"] == "monitoring"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    selector = monitor["spec"]["selector"]
    assert selector["matchLabels"]["app.kubernetes.io/instance"] == "devnet"
    assert selector["matchExpressions"][0]["values"] == ["validator", "loadgen-master"]
    validators, loadgen = monitor["spec"]["podMetricsEndpoints"]
    assert (validators["port"], loadgen["port"]) == ("ops", "loadgen-metrics")
    assert validators["relabelings"] == [
        {
            "sourceLabels": ["__meta_kubernetes_pod_label_apps_kubernetes_io_pod_index"],
            "regex": "(.+)",
            "targetLabel": "validator",
            "action": "replace",
        },
        {"targetLabel": "job", "replacement": "aitbc-validators", "action": "replace"},
    ]
    assert loadgen["relabelings"] == [
        {"targetLabel": "job", "replacement": "aitbc-loadgen", "action": "replace"}
    ]


def test_bundled_prometheus_discovers_pods_in_its_namespace(render: Render) -> None:
    manifests = render({**BASE_VALUES, "prometheus": {"enabled": True, "scrapeInterval": "5s"}})
    config_map = next(m.body for m in by_kind(manifests, "ConfigMap") if m.name == PROMETHEUS)
    config = yaml.safe_load(config_map["data"]["prometheus.yml"])
    assert config["global"]["scrape_interval"] == "5s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"aitbc-validators", "aitbc-loadgen"}
    validators = jobs["aitbc-validators"]
    assert validators["kubernetes_sd_configs"][0]["namespaces"] == {"names": [NAMESPACE]}
    relabel = validators["relabel_configs"]
    assert {"source_labels": ["__meta_kubernetes_pod_container_port_name"]} | {
        "regex": "ops",
        "action": "keep",
    } in relabel
    assert any(
        r.get("target_label") == "validator"
        and r["source_labels"] == ["__meta_kubernetes_pod_label_apps_kubernetes_io_pod_index"]
        for r in relabel
    )
    role = one(manifests, "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
    ]
    deployment = next(m.body for m in by_kind(manifests, "Deployment") if m.name == PROMETHEUS)
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == PROMETHEUS


def test_dashboards_are_labelled_config_maps_holding_the_source_files(render: Render) -> None:
    manifests = render({**BASE_VALUES, "dashboards": {"enabled": True}})
    for path in DASHBOARDS_DIR.glob("*.json"):
        name = f"{FULLNAME}-dashboard-{path.stem}"
        body = next(m.body for m in by_kind(manifests, "ConfigMap") if m.name == name)
        assert body["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert body["data"] == {path.name: path.read_text()}


def test_loadgen_targets_every_validator_pod(render: Render) -> None:
    values = {
        **BASE_VALUES,
        "loadgen": {
            "enabled": True,
            "workers": 3,
            "users": 40,
            "runTime": "90s",
            "env": {"AITBC_TPS": 500},
        },
    }
    manifests = render(values)
    jobs = {m.name: m.body for m in by_kind(manifests, "Job")}
    job = jobs[f"{FULLNAME}-loadgen-master"]
    master = job["spec"]["template"]["spec"]["containers"][0]
    assert master["command"] == ["locust"]
    for flag in ("--master", "--headless", "--expect-workers=3", "--users=40", "--run-time=90s"):
        assert flag in master["args"]
    env = {e["name"]: e["value"] for e in master["env"]}
    targets = env["AITBC_TARGETS"].split(",")
    assert targets == [
        f"{FULLNAME}-{i}.{FULLNAME}-headless.{NAMESPACE}.svc.cluster.local:7000" for i in range(7)
    ]
    assert env["AITBC_TPS"] == "500"
    assert {p["name"]: p["containerPort"] for p in master["ports"]}["loadgen-metrics"] == 9646
    worker = jobs[f"{FULLNAME}-loadgen-worker"]  # indexed: see test_chart_loadgen.py
    assert worker["spec"]["parallelism"] == 3
    worker_args = worker["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--master-host={FULLNAME}-loadgen-master" in worker_args


def test_network_policy_admits_release_pods_to_grpc_and_anyone_to_ops(render: Render) -> None:
    policy = one(render({**BASE_VALUES, "networkPolicy": {"enabled": True}}), "NetworkPolicy")
    grpc_rule, ops_rule = policy["spec"]["ingress"]
    assert grpc_rule["ports"] == [{"port": "grpc", "protocol": "TCP"}]
    assert grpc_rule["from"][0]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "aitbc-testnet",
        "app.kubernetes.io/instance": "devnet",
    }
    assert ops_rule == {"ports": [{"port": "ops", "protocol": "TCP"}]}


def test_chaos_experiments_select_validators_by_pod_index(render: Render) -> None:
    values = {**BASE_VALUES, "chaosMesh": {"enabled": True, "experiments": EXPERIMENTS}}
    chaos = {m.name: m.body for m in render(values) if m.kind in {"NetworkChaos", "PodChaos"}}
    partition = chaos[f"{FULLNAME}-partition"]["spec"]
    assert partition["action"] == "partition"
    assert partition["direction"] == "both"
    assert partition["selector"]["expressionSelectors"] == [
        {"key": "apps.kubernetes.io/pod-index", "operator": "In", "values": ["0", "1"]}
    ]
    assert partition["target"]["selector"]["expressionSelectors"][0]["values"] == [
        "2",
        "3",
        "4",
        "5",
        "6",
    ]
    delay = chaos[f"{FULLNAME}-delay"]["spec"]
    assert (delay["mode"], delay["value"]) == ("fixed", "2")
    assert delay["delay"] == {"latency": "100ms", "jitter": "10ms"}
    assert "expressionSelectors" not in delay["selector"]
    kill = chaos[f"{FULLNAME}-kill"]
    assert kill["metadata"]["annotations"] == {"experiment.chaos-mesh.org/pause": "true"}
    assert kill["spec"]["selector"]["labelSelectors"]["app.kubernetes.io/component"] == "validator"


def test_prometheus_annotations_can_be_turned_off(render: Render) -> None:
    sts = one(render({**BASE_VALUES, "prometheusAnnotations": False}), "StatefulSet")
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    assert not [key for key in annotations if key.startswith("prometheus.io/")]
