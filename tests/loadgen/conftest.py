"""Fixtures of the load generator's tests: a small testnet genesis and the node double."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aitbc_node.crypto import ModeledScheme
from aitbc_node.genesis import Genesis, make_testnet_genesis, write_genesis
from loadgen_node_double import ChainDouble, NodeDoubleCluster

GENESIS_ACCOUNTS = 17  # 16 load accounts + the probe's


@pytest.fixture(scope="session")
def genesis() -> Genesis:
    return make_testnet_genesis(
        validators=2,
        authorities=2,
        seed="loadgen-tests",
        accounts=GENESIS_ACCOUNTS,
        scheme=ModeledScheme(),
    )


@pytest.fixture(scope="session")
def genesis_path(genesis: Genesis, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("genesis") / "genesis.json"
    write_genesis(genesis, path)
    return path


@pytest.fixture
def node_cluster(genesis: Genesis) -> Iterator[NodeDoubleCluster]:
    cluster = NodeDoubleCluster(ChainDouble(chain_id=genesis.chain_id), count=2)
    try:
        yield cluster
    finally:
        cluster.stop()
