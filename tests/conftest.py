"""Settings shared by every test folder. Keep this file small: fixtures of one folder belong in
that folder's own conftest.py."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# The machines that run the tests have 2 cores and run other jobs: a per-example wall-clock
# deadline only produces flaky failures. Tests that need one set it with @settings.
settings.register_profile("aitbc", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "aitbc"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the node image run last (in their usual order): `make test` builds the
    image in the background while the others run, and their `make image` waits for that build
    (scripts/with-image-build.sh)."""
    items.sort(key=lambda item: "node_image" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def checkout_manifests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """``aitbc-testnet render devnet-smoke`` from this checkout: file name -> content. The chart
    shipped in a wheel (tests/chart) and in the node image (tests/containers) must give these."""
    from typer.testing import CliRunner

    from orchestrator.cli import app

    out = tmp_path_factory.mktemp("checkout-manifests")
    result = CliRunner().invoke(app, ["render", "devnet-smoke", "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifests = {path.name: path.read_bytes() for path in out.iterdir()}
    assert "statefulset-devnet-smoke-aitbc-testnet.yaml" in manifests
    return manifests
