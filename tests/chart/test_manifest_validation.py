"""orchestrator.external.manifest_validation over kubernetes-validate: errors name the object, the
Kubernetes version and the field; custom resources are skipped; removed APIs and missing
schema versions are reported clearly."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.external.helm import RenderedManifest
from orchestrator.external.manifest_validation import (
    DEFAULT_KUBERNETES_VERSIONS,
    UnsupportedKubernetesVersionError,
    check_manifests,
    supported_kubernetes_versions,
    validate_manifests,
)


def manifest(body: dict[str, Any]) -> RenderedManifest:
    return RenderedManifest(
        source="t.yaml", kind=body["kind"], name=body["metadata"]["name"], body=body
    )


def statefulset(replicas: Any = 3, **extra_spec: Any) -> dict[str, Any]:
    labels = {"app": "v"}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "validators"},
        "spec": {
            "replicas": replicas,
            "serviceName": "h",
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "node", "image": "x:1"}]},
            },
            **extra_spec,
        },
    }


def test_installed_package_covers_the_supported_versions() -> None:
    assert set(DEFAULT_KUBERNETES_VERSIONS) <= set(supported_kubernetes_versions())


def test_a_valid_object_passes_every_version() -> None:
    report = check_manifests([manifest(statefulset())])
    assert report.ok
    assert report.checked == len(DEFAULT_KUBERNETES_VERSIONS)
    assert report.versions == DEFAULT_KUBERNETES_VERSIONS


def test_errors_name_object_version_and_field() -> None:
    errors = validate_manifests([manifest(statefulset(replicas="three"))], ["1.29", "1.33"])
    assert errors == [
        "StatefulSet/validators: Kubernetes 1.29: spec.replicas: 'three' is not of type "
        "'integer', 'null'",
        "StatefulSet/validators: Kubernetes 1.33: spec.replicas: 'three' is not of type "
        "'integer', 'null'",
    ]


def test_unknown_fields_are_errors() -> None:
    body = statefulset()
    body["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    (error,) = validate_manifests([manifest(body)], ["1.31"])
    assert error.startswith("StatefulSet/validators: Kubernetes 1.31: spec.template.spec.")
    assert "imagePullPolicyy" in error


def test_long_values_are_cut_in_messages() -> None:
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "genesis"},
        "data": {"genesis.json": ["x" * 100_000]},
    }
    (error,) = validate_manifests([manifest(config_map)], ["1.30"])
    assert error.startswith("ConfigMap/genesis: Kubernetes 1.30: data.genesis.json: ")
    assert len(error) < 400


def test_custom_resources_are_skipped_not_failed() -> None:
    pod_monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "m"},
        "spec": {},
    }
    chaos = {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "PodChaos", "metadata": {"name": "c"}}
    report = check_manifests([manifest(pod_monitor), manifest(chaos)])
    assert report.ok
    assert report.checked == 0
    assert [s.split(" ")[0] for s in report.skipped] == ["PodMonitor/m", "PodChaos/c"]
    assert "custom resource" in report.skipped[0]


def test_a_removed_builtin_api_is_an_error_not_a_skip() -> None:
    pdb = {
        "apiVersion": "policy/v1beta1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "p"},
        "spec": {"maxUnavailable": 1},
    }
    report = check_manifests([manifest(pdb)], ["1.29"])
    assert report.skipped == ()
    assert report.errors == (
        "PodDisruptionBudget/p: Kubernetes 1.29: apiVersion policy/v1beta1 kind "
        "PodDisruptionBudget is not served by this version; use the API version that version "
        "serves",
    )


def test_versions_are_normalised_and_deduplicated() -> None:
    report = check_manifests([manifest(statefulset())], ["v1.30.2", "1.30", "1.31.0"])
    assert report.versions == ("1.30", "1.31")


@pytest.mark.parametrize(
    ("versions", "fragment"),
    [
        (["1.99"], "has no schemas for Kubernetes 1.99"),
        (["latest"], "'latest' is not a version"),
        ([], "no Kubernetes version to validate against"),
    ],
)
def test_unusable_versions_are_reported_clearly(versions: list[str], fragment: str) -> None:
    with pytest.raises(UnsupportedKubernetesVersionError, match=fragment) as caught:
        validate_manifests([manifest(statefulset())], versions)
    assert caught.value.exit_code == 2
