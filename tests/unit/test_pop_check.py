"""Genesis PoPs at node start: checked once per genesis, scheme and host, never skipped for a
genesis that did not pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from aitbc_node.crypto import ModeledScheme
from aitbc_node.errors import ConfigError
from aitbc_node.genesis import Genesis, make_testnet_genesis
from aitbc_node.pop_check import check_genesis_pops, marker_name
from test_consensus_harness import RecordingScheme


def small_genesis() -> Genesis:
    return make_testnet_genesis(
        validators=5, authorities=3, seed="pop-check", scheme=ModeledScheme(), accounts=1
    )


def test_checked_once_then_read_from_the_marker(tmp_path: Path) -> None:
    genesis = small_genesis()
    scheme = RecordingScheme(ModeledScheme())
    shared, own = tmp_path / "net", tmp_path / "data"
    assert check_genesis_pops(genesis, scheme, [shared, own])
    assert scheme.checks["pop_verify"] == len(genesis.validators)
    assert (shared / marker_name(genesis, scheme)).exists()
    assert not check_genesis_pops(genesis, scheme, [shared, own])
    assert scheme.checks["pop_verify"] == len(genesis.validators)
    # Another genesis is checked again.
    other = make_testnet_genesis(
        validators=5, authorities=3, seed="pop-check-2", scheme=ModeledScheme(), accounts=1
    )
    assert check_genesis_pops(other, scheme, [shared, own])


def test_a_bad_pop_fails_every_time_and_leaves_no_marker(tmp_path: Path) -> None:
    genesis = small_genesis()
    validators = list(genesis.validators)
    validators[1] = validators[1].model_copy(update={"pop": validators[2].pop})
    tampered = genesis.model_copy(update={"validators": validators})
    for _ in range(2):
        with pytest.raises(ConfigError, match="genesis validator 1"):
            check_genesis_pops(tampered, ModeledScheme(), [tmp_path])
    assert not list(tmp_path.glob("*.ok"))


def test_an_unwritable_folder_falls_back_to_the_next(tmp_path: Path) -> None:
    genesis = small_genesis()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    data = tmp_path / "data"
    assert check_genesis_pops(genesis, ModeledScheme(), [blocker / "sub", data])
    assert (data / marker_name(genesis, ModeledScheme())).exists()
    assert not check_genesis_pops(genesis, ModeledScheme(), [blocker / "sub", data])
