"""The chart's optional nightly campaign: a CronJob with its ServiceAccount, ClusterRole (what
the kubernetes platform applies and calls, nothing more), PersistentVolumeClaim and script,
rendered by the real Helm engine, linted, validated for Kubernetes 1.29..1.33, and its script
run for real on the simulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from chart_support import CHART_DIR, FULLNAME, NAMESPACE, Render, by_kind, kind_names, one

# orchestrator.cli first: importing a command module before the CLI leaves that command
# unregistered on the app (the CLI registers the modules of orchestrator.commands at import).
import orchestrator.cli  # noqa: F401
from orchestrator.commands.render import render_scenario
from orchestrator.external.helm import ChartValuesError, RenderedManifest, lint_chart
from orchestrator.external.manifest_validation import check_manifests

NIGHTLY = f"{FULLNAME}-nightly"
NIGHTLY_ONLY: dict[str, Any] = {"testnet": {"enabled": False}, "nightly": {"enabled": True}}
NIGHTLY_OBJECTS = {
    ("ServiceAccount", NIGHTLY),
    ("ConfigMap", NIGHTLY),
    ("PersistentVolumeClaim", NIGHTLY),
    ("ClusterRole", NIGHTLY),
    ("ClusterRoleBinding", NIGHTLY),
    ("CronJob", NIGHTLY),
}
APPLY_VERBS = {"get", "create", "patch", "delete"}


def nightly(**changes: Any) -> dict[str, Any]:
    return {"testnet": {"enabled": False}, "nightly": {"enabled": True, **changes}}


def cron_container(manifests: list[RenderedManifest]) -> dict[str, Any]:
    pod = one(manifests, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return dict(container)


def env_of(manifests: list[RenderedManifest]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in cron_container(manifests)["env"]}


def script_of(manifests: list[RenderedManifest]) -> str:
    config = next(m.body for m in by_kind(manifests, "ConfigMap") if m.name == NIGHTLY)
    return str(config["data"]["nightly.sh"])


def granted(manifests: list[RenderedManifest]) -> dict[tuple[str, str], set[str]]:
    """(api group, resource) -> verbs of the nightly ClusterRole."""
    rights: dict[tuple[str, str], set[str]] = {}
    for rule in one(manifests, "ClusterRole")["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                rights.setdefault((group, resource), set()).update(rule["verbs"])
    return rights


def resource_of(manifest: RenderedManifest) -> tuple[str, str]:
    group = manifest.body["apiVersion"].rpartition("/")[0]
    kind = manifest.kind.lower()
    return group, kind if kind.endswith("chaos") else kind + "s"


def test_only_the_nightly_objects_render_without_the_testnet(render: Render) -> None:
    assert kind_names(render(NIGHTLY_ONLY)) == NIGHTLY_OBJECTS
    assert render({"testnet": {"enabled": False}}) == []


def test_the_cronjob_runs_the_scenario_once_at_a_time_on_its_volume(render: Render) -> None:
    manifests = render(nightly(schedule="30 1 * * *", timeZone="Etc/UTC", scenario="devnet"))
    cron = one(manifests, "CronJob")
    assert cron["metadata"]["namespace"] == NAMESPACE
    spec = cron["spec"]
    assert (spec["schedule"], spec["timeZone"]) == ("30 1 * * *", "Etc/UTC")
    assert spec["concurrencyPolicy"] == "Forbid"
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0 and job["activeDeadlineSeconds"] == 14400
    pod = job["template"]["spec"]
    assert pod["serviceAccountName"] == NIGHTLY and pod["restartPolicy"] == "Never"
    container = cron_container(manifests)
    assert container["image"] == "aitbc-testnet-node:0.1.0"  # the chart's node image
    assert container["command"] == ["/bin/sh", "/etc/aitbc-nightly/nightly.sh"]
    assert container["workingDir"] == "/var/lib/aitbc"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = env_of(manifests)
    assert env["AITBC_NIGHTLY_SCENARIO"] == "devnet"
    assert env["AITBC_NIGHTLY_PLATFORM"] == "kubernetes"
    assert env["AITBC_NAMESPACE_PREFIX"] == "aitbc-nightly"
    assert (env["AITBC_IMAGE_TAG"], env["AITBC_CHAOS"]) == ("0.1.0", "none")
    assert "AITBC_PROMETHEUS_URL" not in env
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == NIGHTLY
    assert volumes["script"]["configMap"]["name"] == NIGHTLY
    claim = one(manifests, "PersistentVolumeClaim")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"


def test_image_args_prometheus_chaos_and_an_existing_claim(render: Render) -> None:
    manifests = render(
        nightly(
            image={"repository": "registry.example/aitbc", "tag": "nightly-2"},
            args=["--set", "load.tps=500"],
            prometheusUrl="http://prometheus.monitoring:9090",
            chaosMesh=True,
            env={"AITBC_KUBE_CONTEXT": "in-cluster"},
            persistence={"existingClaim": "aitbc-history"},
        )
    )
    container = cron_container(manifests)
    assert container["image"] == "registry.example/aitbc:nightly-2"
    assert container["args"] == ["--set", "load.tps=500"]
    env = env_of(manifests)
    assert env["AITBC_PROMETHEUS_URL"] == "http://prometheus.monitoring:9090"
    assert env["AITBC_CHAOS"] == "chaos-mesh"
    assert env["AITBC_KUBE_CONTEXT"] == "in-cluster"
    assert not by_kind(manifests, "PersistentVolumeClaim")
    pod = one(manifests, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    data = next(volume for volume in pod["volumes"] if volume["name"] == "data")
    assert data["persistentVolumeClaim"]["claimName"] == "aitbc-history"


def test_the_role_covers_every_object_the_platform_applies(render: Render, tmp_path: Path) -> None:
    # What the kubernetes platform applies for the nightly scenario with its bundled Prometheus.
    applied = render_scenario(
        "nightly", tmp_path / "out", chart_sets=["prometheus.enabled=true"]
    ).manifests
    rights = granted(render(NIGHTLY_ONLY))
    kinds = {resource_of(manifest) for manifest in applied}
    assert ("rbac.authorization.k8s.io", "roles") in kinds  # the bundled Prometheus's Role
    for kind in kinds:
        assert rights.get(kind, set()) >= APPLY_VERBS, kind
    # Everything the platform calls besides applying (kube.py).
    assert rights[("", "namespaces")] == {"get", "create", "delete"}
    assert {"get", "list", "delete", "watch"} <= rights[("", "pods")]
    assert rights[("", "pods/log")] == {"get"}
    assert rights[("", "pods/proxy")] == {"get", "update", "delete"}
    assert rights[("", "pods/portforward")] == {"get", "create"}
    assert rights[("", "events")] == {"list"}


def test_the_role_grants_nothing_more(render: Render, tmp_path: Path) -> None:
    rights = granted(render(nightly(prometheusUrl="http://prometheus:9090")))
    for (group, resource), verbs in rights.items():
        assert "*" not in group and "*" not in resource and "*" not in verbs
        assert not verbs & {"escalate", "bind", "impersonate", "deletecollection"}
    assert ("rbac.authorization.k8s.io", "roles") not in rights  # no bundled Prometheus
    assert ("apps", "deployments") not in rights
    assert ("chaos-mesh.org", "networkchaos") not in rights
    assert "watch" not in rights[("", "pods")]
    applied = render_scenario("nightly", tmp_path / "out").manifests
    for kind in {resource_of(manifest) for manifest in applied}:
        assert rights.get(kind, set()) >= APPLY_VERBS, kind
    with_chaos = granted(render(nightly(chaosMesh=True)))
    assert with_chaos[("chaos-mesh.org", "podchaos")] >= APPLY_VERBS
    binding = one(render(NIGHTLY_ONLY), "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == NIGHTLY
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": NIGHTLY, "namespace": NAMESPACE}
    ]


def test_the_script_records_history_and_gates_on_check(render: Render) -> None:
    script = script_of(render(nightly(keepReports=7)))
    assert 'aitbc-testnet history add "$out" --history "$data/history.sqlite" || exit 3' in (script)
    assert "aitbc-testnet history check --history" in script
    assert "head -n -7" in script
    without = script_of(render(nightly(history=False)))
    assert "history" not in without.replace("the history", "")


def test_the_script_runs_a_campaign_and_keeps_the_newest_reports(
    render: Render, tmp_path: Path
) -> None:
    script = tmp_path / "nightly.sh"
    script.write_text(script_of(render(nightly(platform="sim", history=False, keepReports=2))))
    data = tmp_path / "data"
    for old in ("20000101-000000", "20000102-000000"):
        (data / "reports" / old).mkdir(parents=True)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "AITBC_NIGHTLY_DATA": str(data),
        "AITBC_NIGHTLY_SCENARIO": "devnet-smoke",
        "AITBC_NIGHTLY_PLATFORM": "sim",
    }
    done = subprocess.run(
        ["/bin/sh", str(script)], cwd=data, env=env, capture_output=True, text=True, timeout=300
    )
    # devnet-smoke on the simulator fails the criteria it cannot measure: the Job fails (1).
    assert done.returncode == 1, done.stdout + done.stderr
    assert "nightly: aitbc-testnet run exited 1; report in" in done.stdout
    kept = sorted(path.name for path in (data / "reports").iterdir())
    assert kept[0] == "20000102-000000" and len(kept) == 2  # the oldest one was removed
    assert (data / "reports" / kept[1] / "report.json").is_file()


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        (nightly(schedule="nightly"), "/nightly/schedule"),
        (nightly(platform="local"), "/nightly/platform"),
        (nightly(namespacePrefix="Bad_Prefix"), "/nightly/namespacePrefix"),
        (nightly(keepReports=0), "/nightly/keepReports"),
        (nightly(prometheusUrl="prometheus:9090"), "/nightly/prometheusUrl"),
        (nightly(persistence={"size": "lots"}), "/nightly/persistence/size"),
        (nightly(scheduel="0 2 * * *"), "additional properties 'scheduel' not allowed"),
    ],
    ids=["schedule", "platform", "prefix", "keep", "prometheus-url", "size", "typo"],
)
def test_bad_nightly_values_are_refused(
    render: Render, values: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ChartValuesError) as caught:
        render(values)
    assert fragment in str(caught.value)


def test_nightly_lints_and_validates_for_every_supported_kubernetes(render: Render) -> None:
    assert not [line for line in lint_chart(CHART_DIR, NIGHTLY_ONLY) if "error" in line.lower()]
    manifests = render({"nightly": {"enabled": True, "timeZone": "Etc/UTC", "chaosMesh": True}})
    report = check_manifests(manifests)
    assert report.ok, report.errors
