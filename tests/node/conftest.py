"""Fixtures of the node's integration tests: local testnets of real ``aitbc-node run`` processes
(tests/node/testnet.py), every process killed by pid in the fixture's finalizer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testnet import LocalNetwork, NetworkFactory


def _factory(root: Path, made: list[LocalNetwork]) -> NetworkFactory:
    def make(**options: Any) -> LocalNetwork:
        folder = root / f"net-{len(made)}"
        network = LocalNetwork(folder, **options)
        made.append(network)
        return network

    return make


@pytest.fixture
def make_network(tmp_path: Path) -> Iterator[NetworkFactory]:
    """``make_network(**LocalNetwork options)``: a new, not yet started network; each one is
    closed (every node process SIGKILLed by pid) when the test ends."""
    made: list[LocalNetwork] = []
    yield _factory(tmp_path, made)
    for network in made:
        network.close()


@pytest.fixture(scope="module")
def make_module_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetworkFactory]:
    """Like ``make_network`` for a network shared by the tests of one module."""
    made: list[LocalNetwork] = []
    yield _factory(tmp_path_factory.mktemp("module-net"), made)
    for network in made:
        network.close()


@pytest.fixture(scope="module")
def running_network(make_module_network: NetworkFactory) -> LocalNetwork:
    """A started, ready 4-validator network (200 ms blocks, 64 accounts) for one module."""
    network = make_module_network()
    network.start_all()
    network.wait_ready(timeout=60)
    return network
