"""Invariants that matter at 1,000 validators and with long names: one StatefulSet, a PDB
below a third, selectors without version labels, and DNS-label names."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from chart_support import Render, by_kind, one

from orchestrator.external.helm import RenderedManifest

EVERYTHING_ON: dict[str, Any] = {
    "loadgen": {"enabled": True},
    "podMonitor": {"enabled": True},
    "prometheus": {"enabled": True},
    "dashboards": {"enabled": True},
    "networkPolicy": {"enabled": True},
    "chaosMesh": {
        "enabled": True,
        "experiments": [
            {
                "name": "a-rather-long-experiment-name-0123456",
                "kind": "NetworkChaos",
                "action": "loss",
                "spec": {"loss": {"loss": "10"}},
            }
        ],
    },
}
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
VERSION_LABELS = {"app.kubernetes.io/version", "helm.sh/chart"}


def test_staging_is_one_statefulset_of_1000_replicas(
    staging_manifests: list[RenderedManifest],
) -> None:
    statefulsets = by_kind(staging_manifests, "StatefulSet")
    assert len(statefulsets) == 1
    assert statefulsets[0].body["spec"]["replicas"] == 1000
    assert len(staging_manifests) < 10
    assert not by_kind(staging_manifests, "Pod")
    assert len(by_kind(staging_manifests, "Service")) == 1


@pytest.mark.parametrize("validators", [1, 2, 3, 4, 5, 6, 7, 10, 21, 100, 999, 1000])
def test_pdb_keeps_unavailability_strictly_below_a_third(render: Render, validators: int) -> None:
    pdb = one(render({"validators": validators, "authorities": validators}), "PodDisruptionBudget")
    max_unavailable = pdb["spec"]["maxUnavailable"]
    assert isinstance(max_unavailable, int)
    assert max_unavailable >= 0
    assert 3 * max_unavailable < validators  # strictly below N/3
    assert 3 * (max_unavailable + 1) >= validators  # and the largest such count


@pytest.mark.parametrize(("validators", "authorities"), [(100, 10), (1000, 100), (1000, 4)])
def test_pdb_also_stays_below_a_third_of_authorities(
    render: Render, validators: int, authorities: int
) -> None:
    values = {"validators": validators, "authorities": authorities}
    max_unavailable = one(render(values), "PodDisruptionBudget")["spec"]["maxUnavailable"]
    assert 3 * max_unavailable < authorities
    assert 3 * (max_unavailable + 1) >= authorities


def selectors(body: Any) -> Iterator[dict[str, Any]]:
    """Every label selector in an object: matchLabels, Service selectors, Chaos Mesh
    labelSelectors."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key in {"matchLabels", "labelSelectors"} and isinstance(value, dict):
                yield value
            elif key == "selector" and body.get("clusterIP") is not None:
                yield value  # a Service's plain selector
            else:
                yield from selectors(value)
    elif isinstance(body, list):
        for item in body:
            yield from selectors(item)


def test_no_selector_carries_a_version_label(render: Render) -> None:
    manifests = render(EVERYTHING_ON)
    service_selectors = [m.body["spec"]["selector"] for m in by_kind(manifests, "Service")]
    found = [s for m in manifests for s in selectors(m.body)] + service_selectors
    assert len(found) > 10
    for selector in found:
        assert not VERSION_LABELS & set(selector), selector
        assert "app.kubernetes.io/instance" in selector


def test_names_fit_dns_labels_for_the_longest_release_name(render: Render) -> None:
    release = "r" + "x" * 51 + "z"  # 53 characters, Helm's limit
    assert len(release) == 53
    manifests = render({**EVERYTHING_ON, "validators": 1000}, release=release)
    for manifest in manifests:
        assert len(manifest.name) <= 63, manifest.name
        assert DNS_1123_LABEL.match(manifest.name), manifest.name
        for value in manifest.body["metadata"].get("labels", {}).values():
            assert len(str(value)) <= 63
    for service in by_kind(manifests, "Service"):
        assert DNS_1035_LABEL.match(service.name), service.name
    sts = one(manifests, "StatefulSet")
    sts_name = sts["metadata"]["name"]
    # controller-revision-hash = "<name>-<10 characters>" must stay a valid label value.
    assert len(sts_name) <= 52
    assert len(f"{sts_name}-999") <= 63
    for container in sts["spec"]["template"]["spec"]["containers"]:
        assert all(len(port["name"]) <= 15 for port in container["ports"])
    headless = next(s.name for s in by_kind(manifests, "Service") if s.name.endswith("headless"))
    assert sts["spec"]["serviceName"] == headless
