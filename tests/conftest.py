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


SPREAD_MODULES = frozenset(
    {
        "tests/e2e/test_campaign.py",
        "tests/e2e/test_scale.py",
        "tests/unit/test_safety_properties.py",
        "tests/unit/test_byzantine_sim.py",
    }
)
"""Modules whose tests are independent and long (each starts its own campaign or explores its
own schedules): under ``pytest -n`` (make test) their tests spread over the workers one by one.
Every other module runs whole on one worker, so its module and session fixtures (a testnet, a
live Prometheus) are set up once."""

ENGINE_TESTS = "tests/containers/"
"""The tests that use the node image and the container engine: one worker, one engine service,
and they run last."""


def test_group(nodeid: str) -> str:
    """The unit of work one pytest-xdist worker runs whole (see SPREAD_MODULES)."""
    module = nodeid.split("::", 1)[0]
    if module.startswith(ENGINE_TESTS):
        return ENGINE_TESTS
    return nodeid if module in SPREAD_MODULES else module


test_group.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``pytest -n N`` (make test) hands out ``test_group`` units, in collection order.
    (Not ``--dist loadgroup``: its groups are lost on pytest >= 9.2, pytest-xdist issue 1386.)"""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return test_group(nodeid)

    return GroupScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that use the node image run last (in their usual order): `make test` builds
    the image in the background while the others run, and their `make image` waits for that
    build (scripts/with-image-build.sh)."""
    items.sort(key=lambda item: item.nodeid.startswith(ENGINE_TESTS))


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
