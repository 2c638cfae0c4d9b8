"""The chart renders with the real Helm engine for default, devnet (100) and staging (1,000)
values, passes Helm's lint and kubernetes-validate for Kubernetes 1.29..1.33, and follows the
validator container contract."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import yaml
from chart_support import CHART_DIR, FULLNAME, NAMESPACE, Render, by_kind, kind_names, one

from orchestrator.external.helm import RenderedManifest, lint_chart, render_notes, write_manifests
from orchestrator.external.manifest_validation import DEFAULT_KUBERNETES_VERSIONS, check_manifests

ALL_TOGGLES: dict[str, Any] = {
    "loadgen": {"enabled": True},
    "podMonitor": {"enabled": True},
    "prometheus": {"enabled": True},
    "dashboards": {"enabled": True},
    "networkPolicy": {"enabled": True},
    "chaosMesh": {
        "enabled": True,
        "experiments": [
            {
                "name": "partition-minority",
                "kind": "NetworkChaos",
                "action": "partition",
                "validators": [0, 1],
                "targetValidators": [2, 3, 4],
                "direction": "both",
                "duration": "60s",
            },
            {"name": "kill-one", "kind": "PodChaos", "action": "pod-kill", "mode": "one"},
        ],
    },
}


def node_config(manifests: list[RenderedManifest]) -> dict[str, Any]:
    config_map = one(manifests, "ConfigMap")
    loaded: dict[str, Any] = yaml.safe_load(config_map["data"]["node.yaml"])
    return loaded


def validator_container(manifests: list[RenderedManifest]) -> dict[str, Any]:
    containers = one(manifests, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["node"]
    container: dict[str, Any] = containers[0]
    return container


def test_default_values_render_the_validator_set_only(render: Render) -> None:
    manifests = render()
    assert kind_names(manifests) == {
        ("ConfigMap", f"{FULLNAME}-config"),
        ("Secret", f"{FULLNAME}-admin"),
        ("Service", f"{FULLNAME}-headless"),
        ("StatefulSet", FULLNAME),
        ("PodDisruptionBudget", FULLNAME),
    }
    assert all(m.source.startswith("aitbc-testnet/templates/") for m in manifests)


def test_notes_and_the_helm_test_hook_exist_in_the_chart_but_are_not_rendered(
    render: Render,
) -> None:
    hook_template = CHART_DIR / "templates" / "tests" / "test-readyz.yaml"
    assert "helm.sh/hook: test" in hook_template.read_text()
    assert (CHART_DIR / "templates" / "NOTES.txt").is_file()
    sources = {m.source for m in render({"helmTest": {"enabled": True}})}
    assert not any(s.endswith(("NOTES.txt", "test-readyz.yaml")) for s in sources)
    assert not by_kind(render(), "Pod")


@pytest.mark.parametrize("network", ["default", "devnet", "staging", "devnet-all-toggles"])
def test_lint_and_kubernetes_validate_pass(
    network: str, render: Render, devnet_values: dict[str, Any], staging_values: dict[str, Any]
) -> None:
    values: dict[str, Any] = {
        "default": {},
        "devnet": devnet_values,
        "staging": staging_values,
        "devnet-all-toggles": {**devnet_values, **ALL_TOGGLES},
    }[network]
    messages = lint_chart(CHART_DIR, values)
    assert not [m for m in messages if m.startswith(("error", "warning"))], messages

    manifests = render(values)
    report = check_manifests(manifests, DEFAULT_KUBERNETES_VERSIONS)
    assert report.errors == ()
    custom = [m for m in manifests if m.kind in {"PodMonitor", "NetworkChaos", "PodChaos"}]
    assert len(report.skipped) == len(custom)
    assert report.checked == (len(manifests) - len(custom)) * len(DEFAULT_KUBERNETES_VERSIONS)


def test_staging_carries_the_whole_genesis_and_node_config(
    staging_manifests: list[RenderedManifest], staging_values: dict[str, Any]
) -> None:
    genesis = staging_values["genesis.json"]
    assert len(genesis) > 500_000
    data = one(staging_manifests, "ConfigMap")["data"]
    assert data["genesis.json"] == genesis
    config = node_config(staging_manifests)
    sts = "staging-aitbc-testnet"
    assert config == {
        "chain_id": "aitbc-staging",
        "genesis": "/etc/aitbc/genesis.json",
        "key": {"seed": "aitbc-staging-seed", "index": "auto"},
        "listen": {"grpc": "0.0.0.0:7000", "ops": "0.0.0.0:9100"},
        "peers": {
            "count": 1000,
            "template": f"{sts}-{{index}}.{sts}-headless.{NAMESPACE}.svc.cluster.local:7000",
        },
        "data_dir": "/data",
        "era": 1,
        "log_level": "info",
    }


def test_validator_pod_follows_the_container_contract(render: Render) -> None:
    manifests = render({"image": {"repository": "registry.local/aitbc-node", "tag": "1.2.3"}})
    sts = one(manifests, "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    container = validator_container(manifests)
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    assert sts["spec"]["serviceName"] == f"{FULLNAME}-headless"
    assert container["image"] == "registry.local/aitbc-node:1.2.3"
    assert container["args"] == ["run", "--config", "/etc/aitbc/node.yaml"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["AITBC_ADMIN_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": f"{FULLNAME}-admin", "key": "admin-token"}
    }
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": 7000, "ops": 9100}
    assert container["readinessProbe"]["grpc"] == {"port": 7000}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {"/etc/aitbc": "config", "/data": "data", "/tmp": "tmp"}
    assert [t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]] == ["data"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 10001
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsUser"] == 10001
    spread = pod["topologySpreadConstraints"]
    assert [(s["topologyKey"], s["whenUnsatisfiable"]) for s in spread] == [
        ("kubernetes.io/hostname", "ScheduleAnyway")
    ]
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "9100"
    headless = one(manifests, "Service")["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["publishNotReadyAddresses"] is True


def test_config_changes_roll_the_pods_through_the_checksum(render: Render) -> None:
    def checksum(values: dict[str, Any]) -> str:
        sts = one(render(values), "StatefulSet")
        value: str = sts["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        return value

    base = checksum({"era": 1})
    assert checksum({"era": 1}) == base
    assert checksum({"era": 2}) != base
    assert checksum({"era": 1, "genesis.json": "{}"}) != base
    assert checksum({"era": 1, "loadgen": {"enabled": True}}) == base


def test_era_reaches_node_config_and_pod_annotation(render: Render) -> None:
    manifests = render({"era": "2026-05"})
    assert node_config(manifests)["era"] == "2026-05"
    sts = one(manifests, "StatefulSet")
    assert sts["spec"]["template"]["metadata"]["annotations"]["aitbc.io/era"] == "2026-05"


@pytest.mark.parametrize(
    ("mode", "expected_cpu"), [("fast", "1"), ("balanced", "200m"), ("auto", "50m")]
)
def test_resources_follow_the_mode(render: Render, mode: str, expected_cpu: str) -> None:
    resources = {
        "default": {"requests": {"cpu": "50m"}},
        "fast": {"requests": {"cpu": "1"}},
        "balanced": {"requests": {"cpu": "200m"}},
    }
    container = validator_container(render({"mode": mode, "resources": resources}))
    # Helm merges these over the chart's defaults: only cpu differs between the entries.
    assert container["resources"]["requests"]["cpu"] == expected_cpu


def test_persistence_off_uses_an_empty_dir(render: Render) -> None:
    sts = one(render({"persistence": {"enabled": False}}), "StatefulSet")
    assert "volumeClaimTemplates" not in sts["spec"]
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}


def test_admin_token_from_values_or_an_existing_secret(render: Render) -> None:
    with_token = render({"admin": {"token": "s3cret"}})
    secret = one(with_token, "Secret")
    assert secret["data"]["admin-token"] == "czNjcmV0"  # base64("s3cret")

    derived = one(render(), "Secret")["data"]["admin-token"]
    assert derived == one(render(), "Secret")["data"]["admin-token"]  # stable across renders

    existing = render({"admin": {"existingSecret": "ops-token", "existingSecretKey": "token"}})
    assert not by_kind(existing, "Secret")
    env = {e["name"]: e for e in validator_container(existing)["env"]}
    assert env["AITBC_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "ops-token",
        "key": "token",
    }


def test_written_staging_manifests_round_trip(
    staging_manifests: list[RenderedManifest], tmp_path: Any
) -> None:
    paths = write_manifests(staging_manifests, tmp_path)
    assert [p.name for p in paths] == [f"{m.kind.lower()}-{m.name}.yaml" for m in staging_manifests]
    for path, manifest in zip(paths, staging_manifests, strict=True):
        assert yaml.safe_load(path.read_text()) == manifest.body
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest()
    again = write_manifests(staging_manifests, tmp_path)
    assert again == paths
    assert hashlib.sha256(b"".join(p.read_bytes() for p in again)).hexdigest() == digest


def test_notes_say_how_to_reach_prometheus_grafana_and_status() -> None:
    values = {"prometheus": {"enabled": True}, "dashboards": {"enabled": True}}
    notes = render_notes(CHART_DIR, values, release="devnet", namespace=NAMESPACE)
    assert "aitbc-testnet status" in notes
    assert f"port-forward svc/{FULLNAME}-prometheus 9090:9090" in notes
    assert "grafana_dashboard=1" in notes
    assert "genesis.json is empty" in notes
    external = render_notes(
        CHART_DIR,
        {"podMonitor": {"enabled": True}, "genesis.json": "{}"},
        release="devnet",
        namespace=NAMESPACE,
    )
    assert "PodMonitor" in external
    assert "genesis.json is empty" not in external
