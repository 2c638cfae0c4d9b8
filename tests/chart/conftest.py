"""Shared fixtures of the chart tests: the chart, values for devnet (100 validators) and
staging (1,000 validators with a real-size genesis), and a renderer over the real Helm engine."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from chart_support import CHART_DIR, NAMESPACE, RELEASE, Render, network_values

from orchestrator.external.helm import RenderedManifest, render_chart


@pytest.fixture(scope="session")
def chart_dir() -> Path:
    return CHART_DIR


@pytest.fixture(scope="session")
def render() -> Render:
    def _render(
        values: Mapping[str, Any] | None = None,
        *,
        release: str = RELEASE,
        namespace: str = NAMESPACE,
    ) -> list[RenderedManifest]:
        return render_chart(CHART_DIR, values or {}, release=release, namespace=namespace)

    return _render


@pytest.fixture(scope="session")
def devnet_values() -> dict[str, Any]:
    return network_values(100, 21, "aitbc-devnet")


@pytest.fixture(scope="session")
def staging_values() -> dict[str, Any]:
    return network_values(1000, 100, "aitbc-staging")


@pytest.fixture(scope="session")
def staging_manifests(render: Render, staging_values: dict[str, Any]) -> list[RenderedManifest]:
    return render(staging_values, release="staging")
