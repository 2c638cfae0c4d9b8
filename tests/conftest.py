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

    # Hand the units out in collection order (see pytest_collection_modifyitems), not
    # largest-first: the default reorder would start with the container tests and end with
    # the single long campaigns, one worker running them while the others idle.
    config.option.loadscopereorder = False
    return GroupScheduling(config, log)


LONG_FIRST = (
    "tests/e2e/",
    "tests/unit/test_safety_properties.py",
    "tests/unit/test_byzantine_sim.py",
    "tests/node/",
    "tests/loadgen/",
)
"""Folders and modules of long tests (campaigns, real testnets, thousands of schedules), in
the order their units start: the longest first, so no worker is left with a long unit while
the others have finished (a unit of the others takes seconds)."""


def run_order(nodeid: str) -> int:
    """The position of ``nodeid``'s kind of test in the run: LONG_FIRST, then the rest, and the
    tests that use the node image last: `make test` builds the image in the background while the
    others run, and their `make image` waits for that build (scripts/with-image-build.sh)."""
    if nodeid.startswith(ENGINE_TESTS):
        return len(LONG_FIRST) + 1
    return next(
        (rank for rank, prefix in enumerate(LONG_FIRST) if nodeid.startswith(prefix)),
        len(LONG_FIRST),
    )


run_order.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run order: ``run_order``, each kind in its usual order (the sort is stable)."""
    items.sort(key=lambda item: run_order(item.nodeid))


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
