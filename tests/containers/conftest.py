"""Fixtures of the container tests: one connection to the engine for the session (it starts
``podman system service`` when no Docker answers, and stops it at the end), the node image built
once per session by ``make image`` (cached: seconds when nothing changed), and container
networks whose containers and volumes are removed whatever the test did.

Every container and volume a test creates carries the session's run label; the session's
finalizer removes whatever still carries it, so nothing outlives the tests even after a failure.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from container_network import ContainerNetwork, ContainerNetworkFactory, build_node_image

from orchestrator.external.container_engine import RUN_LABEL, ContainerEngine

#: Prefix of every container, volume and run label of this test session.
SESSION_ID = f"aitbc-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def engine() -> Iterator[ContainerEngine]:
    engine = ContainerEngine.connect()
    try:
        yield engine
        leftovers = engine.remove_labelled({RUN_LABEL: SESSION_ID})
    finally:
        engine.close()
    assert leftovers == ([], []), f"containers and volumes left by a test: {leftovers}"


@pytest.fixture(scope="session")
def node_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The id of the node image of this checkout (``make image``)."""
    return build_node_image(tmp_path_factory.mktemp("image"))


@pytest.fixture
def run_labels() -> dict[str, str]:
    """Labels for what a test creates: the session's run label (removed at the end)."""
    return {RUN_LABEL: SESSION_ID}


@pytest.fixture
def make_container_network(
    tmp_path: Path, engine: ContainerEngine, node_image: str
) -> Iterator[ContainerNetworkFactory]:
    """``make_container_network(**LocalNetwork options)``: a new, not yet started network of
    validator containers; each one is removed (containers and volumes) when the test ends."""
    made: list[ContainerNetwork] = []

    def make(**options: Any) -> ContainerNetwork:
        name = f"{SESSION_ID}-{uuid.uuid4().hex[:6]}"
        network = ContainerNetwork(
            tmp_path / f"net-{len(made)}", engine, node_image, name, {RUN_LABEL: SESSION_ID},
            **options,
        )  # fmt: skip
        made.append(network)
        return network

    yield make
    for network in made:
        network.close()
