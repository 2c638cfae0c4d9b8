"""Genesis models, the deterministic testnet genesis, and genesis files."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from aitbc_node.crypto import BlsScheme, ModeledScheme, testnet_account_keypair, testnet_bls_keypair
from aitbc_node.errors import ConfigError, DecodeError
from aitbc_node.genesis import (
    ConsensusGenesis,
    Genesis,
    load_genesis,
    make_testnet_genesis,
    write_genesis,
)
from pydantic import ValidationError


def _small(**overrides: object) -> Genesis:
    arguments: dict[str, object] = {
        "validators": 4,
        "authorities": 2,
        "seed": "genesis-tests",
        "scheme": ModeledScheme(),
        "accounts": 2,
    }
    arguments.update(overrides)
    return make_testnet_genesis(**arguments)  # type: ignore[arg-type]


def test_same_arguments_same_genesis() -> None:
    first, second = _small(), _small()
    assert first == second
    assert first.hash() == second.hash()
    placeholder = first.model_copy(update={"chain_id": "aitbc-testnet"})
    assert first.chain_id == f"aitbc-testnet-{placeholder.hash().hex()[:12]}"
    assert _small(seed="other").hash() != first.hash()
    assert _small(seed="other").chain_id != first.chain_id
    assert first.genesis_time == 0.0
    assert first.key_seed == "genesis-tests"


def test_testnet_genesis_contents() -> None:
    scheme = ModeledScheme()
    genesis = _small(scheme=scheme, mode="fast", epoch_length=20, chain_id="aitbc-x")
    assert genesis.chain_id == "aitbc-x"
    assert genesis.consensus.mode == "fast"
    assert genesis.consensus.epoch_length == 20
    assert [v.authority for v in genesis.validators] == [True, True, False, False]
    assert [v.stake for v in genesis.validators] == [1_000_000] * 4
    for validator in genesis.validators:
        key = testnet_bls_keypair(scheme, "genesis-tests", validator.index)
        assert validator.bls_public_key_bytes == key.public
        assert scheme.pop_verify(key.public, validator.pop_bytes)
        reward = testnet_account_keypair("genesis-tests", 1_000_000 + validator.index)
        assert validator.reward_address_bytes == reward.public
    assert [a.address_bytes for a in genesis.accounts] == [
        testnet_account_keypair("genesis-tests", i).public for i in range(2)
    ]
    assert all(a.balance == 10**12 for a in genesis.accounts)


def test_stake_distributions() -> None:
    zipf = [v.stake for v in _small(validators=5, stake="zipf").validators]
    assert zipf == sorted(zipf, reverse=True)
    assert zipf[0] == pytest.approx(2 * zipf[1], rel=1e-6)
    assert sum(zipf) == pytest.approx(5 * 1_000_000, rel=1e-6)
    uniform = [v.stake for v in _small(validators=20, stake="uniform:10:20").validators]
    assert all(10 <= stake <= 20 for stake in uniform)
    assert len(set(uniform)) > 1
    assert uniform == [v.stake for v in _small(validators=20, stake="uniform:10:20").validators]
    assert uniform != [
        v.stake for v in _small(validators=20, stake="uniform:10:20", seed="s2").validators
    ]
    assert [v.stake for v in _small(stake=[5, 0, 7, 9]).validators] == [5, 0, 7, 9]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"authorities": 5}, "authorities is 5 with 4 validators"),
        ({"authorities": 0}, "authorities is 0"),
        ({"validators": 0}, "validators is 0"),
        ({"accounts": -1}, "accounts is -1"),
        ({"stake": [1, 2]}, "2 entries for 4 validators"),
        ({"stake": [1, 2, -3, 4]}, "entry 2 is -3"),
        ({"stake": "pareto"}, "unknown stake distribution 'pareto'"),
        ({"stake": "uniform:9:3"}, "LO 9 is above HI 3"),
        ({"mode": "turbo"}, "field consensus.mode"),
        ({"epoch_length": 5}, "field consensus.epoch_length"),
        ({"chain_id": "bad chain id"}, "field chain_id"),
    ],
)
def test_make_testnet_genesis_errors(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _small(**overrides)


def _document() -> dict:
    return json.loads(_small().model_dump_json())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["validators"][1].update(index=2), r"validators\[1\] has index 2"),
        (lambda d: [v.update(authority=False) for v in d["validators"]], "no validator has auth"),
        (lambda d: d["validators"][2].update(stake=-1), r"validators\.2\.stake"),
        (lambda d: d["validators"][0].update(pop="ab"), r"validators\.0\.pop"),
        (lambda d: d["validators"][0].update(bls_public_key="zz" * 48), "not hex"),
        (lambda d: d["validators"][0].update(reward_address="00" * 31), r"reward_address"),
        (
            lambda d: d["validators"][3].update(
                bls_public_key=d["validators"][0]["bls_public_key"]
            ),
            "share a bls_public_key",
        ),
        (lambda d: d["accounts"].append(dict(d["accounts"][0])), "repeats address"),
        (lambda d: d.update(surprise=1), "surprise"),
        (lambda d: d["consensus"].update(epoch_length=9), r"consensus\.epoch_length"),
        (lambda d: d.update(validators=[]), "validators"),
    ],
)
def test_genesis_validation(mutate: object, message: str) -> None:
    assert callable(mutate)
    document = _document()
    mutate(document)
    with pytest.raises(ValidationError, match=message):
        Genesis.model_validate(document)


def test_hex_is_normalised_to_lower_case() -> None:
    document = _document()
    validator = document["validators"][0]
    validator["bls_public_key"] = validator["bls_public_key"].upper()
    assert Genesis.model_validate(document) == _small()


def test_consensus_defaults() -> None:
    assert ConsensusGenesis().effective_block_interval_ms() == 500
    assert ConsensusGenesis(mode="fast").effective_block_interval_ms() == 100
    assert ConsensusGenesis(mode="secure").effective_block_interval_ms() == 2000
    assert ConsensusGenesis(mode="fast", block_interval_ms=250).effective_block_interval_ms() == 250


def test_write_and_load_round_trip(tmp_path: Path) -> None:
    genesis = _small(genesis_time=1700000000.5)
    path = tmp_path / "genesis.json"
    write_genesis(genesis, path)
    loaded = load_genesis(path)
    assert loaded == genesis
    assert loaded.hash() == genesis.hash()


def test_load_errors_name_file_and_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"genesis file .*missing\.json: cannot read"):
        load_genesis(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"chain_id": "x",\n  "validators": [}')
    with pytest.raises(DecodeError, match=r"genesis file .*broken\.json: not valid JSON at line 2"):
        load_genesis(broken)
    document = _document()
    document["validators"][3]["stake"] = "lots"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match=r"genesis file .*bad\.json: field validators\.3\.stake"):
        load_genesis(bad)
    document = _document()
    document["validators"][2]["index"] = 7
    gap = tmp_path / "gap.json"
    gap.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match=r"gap\.json: .*validators\[2\] has index 7"):
        load_genesis(gap)


@pytest.mark.parametrize("scheme_name", ["real", "modeled"])
def test_verify_pops(scheme_name: str) -> None:
    scheme = BlsScheme() if scheme_name == "real" else ModeledScheme()
    genesis = _small(scheme=scheme)
    genesis.verify_pops(scheme)
    validators = list(genesis.validators)
    validators[2] = validators[2].model_copy(update={"pop": validators[3].pop})
    tampered = genesis.model_copy(update={"validators": validators})
    with pytest.raises(ConfigError, match=r"genesis validator 2 .*field pop does not verify"):
        tampered.verify_pops(scheme)
    with pytest.raises(ConfigError, match="genesis validator 2"):
        tampered.verify_pops(scheme, max_workers=1)


def test_pops_do_not_verify_under_the_other_scheme() -> None:
    with pytest.raises(ConfigError, match="genesis validator 0"):
        _small(scheme=ModeledScheme()).verify_pops(BlsScheme())


@pytest.mark.slow
def test_thousand_validators_are_generated_quickly() -> None:
    started = time.perf_counter()
    genesis = make_testnet_genesis(validators=1000, authorities=100, seed="big")
    elapsed = time.perf_counter() - started
    assert len(genesis.validators) == 1000
    assert elapsed < 5.0, f"1,000 BLS validators took {elapsed:.2f} s"
    started = time.perf_counter()
    make_testnet_genesis(validators=1000, authorities=100, seed="big", scheme=ModeledScheme())
    assert time.perf_counter() - started < 1.0
