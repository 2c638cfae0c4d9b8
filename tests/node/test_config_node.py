"""The validator's config file: parsing, errors with file/line/field, environment overrides,
key checks against the genesis, and data eras."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from aitbc_node.config import (
    ERA_MARKER,
    era_check,
    load_node_config,
    parse_node_config,
    split_host_port,
)
from aitbc_node.crypto.bls import BlsScheme
from aitbc_node.crypto.keys import (
    NodeKeys,
    save_key_file,
    testnet_account_keypair,
    testnet_bls_keypair,
)
from aitbc_node.errors import ConfigError, StorageError
from aitbc_node.genesis import Genesis, make_testnet_genesis, write_genesis

SEED = "config-test-seed"
VALIDATORS = 4


@pytest.fixture(scope="module")
def genesis() -> Genesis:
    return make_testnet_genesis(
        validators=VALIDATORS, authorities=3, seed=SEED, chain_id="aitbc-config-test"
    )


@pytest.fixture
def net(tmp_path: Path, genesis: Genesis) -> Path:
    """A folder with genesis.json; configs are written next to it."""
    write_genesis(genesis, tmp_path / "genesis.json")
    return tmp_path


def write_config(folder: Path, text: str, name: str = "node.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


BASE = """\
chain_id: aitbc-config-test
genesis: genesis.json
key: {{seed: "{seed}", index: {index}}}
listen: {{grpc: "127.0.0.1:7001", ops: "127.0.0.1:9101"}}
peers:
  - {{index: 0, address: "127.0.0.1:7000"}}
  - {{index: 1, address: "127.0.0.1:7001"}}
  - {{index: 2, address: "127.0.0.1:7002"}}
  - {{index: 3, address: "127.0.0.1:7003"}}
data_dir: ./data/node-1
era: "1"
admin_token: file-token
log_level: info
mempool: {{max_txs: 1000, batch_max_txs: 50}}
"""


def base(index: object = 1, seed: str = SEED) -> str:
    return BASE.format(index=index, seed=seed)


# -- a full resolve -------------------------------------------------------------------------
def test_resolve_gives_every_field_with_paths_relative_to_the_config(
    net: Path, genesis: Genesis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(net, base())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative paths follow the file, not the working directory

    resolved = load_node_config(path).resolve({})

    assert resolved.index == 1
    assert resolved.chain_id == "aitbc-config-test"
    assert resolved.genesis == genesis
    assert resolved.genesis_path == (net / "genesis.json").resolve()
    assert resolved.keys.bls.public.hex() == genesis.validators[1].bls_public_key
    assert resolved.keys.account.public.hex() == genesis.validators[1].reward_address
    assert resolved.grpc_listen == "127.0.0.1:7001"
    assert resolved.ops_host_port == ("127.0.0.1", 9101)
    assert resolved.peers == {0: "127.0.0.1:7000", 2: "127.0.0.1:7002", 3: "127.0.0.1:7003"}
    assert resolved.data_dir == net / "data" / "node-1"
    assert resolved.era == "1"
    assert resolved.admin_token == "file-token"
    assert resolved.log_level == "info"
    assert resolved.mempool.max_txs == 1000
    assert resolved.mempool.batch_max_txs == 50
    assert resolved.mempool.batch_interval_ms == 20  # default
    assert resolved.mempool.max_submit_batch == 5000  # default
    assert "file-token" not in repr(resolved)


def test_the_charts_node_yaml_resolves_in_a_pod(net: Path, genesis: Genesis) -> None:
    # The shape helm/aitbc-testnet/templates/configmap.yaml renders (era as an int, auto index).
    text = f"""\
chain_id: "aitbc-config-test"
genesis: {net / "genesis.json"}
key: {{seed: "{SEED}", index: auto}}
listen: {{grpc: "0.0.0.0:7000", ops: "0.0.0.0:9100"}}
peers: {{count: 4, template: "aitbc-validator-{{index}}.aitbc-validators.ns.svc:7000"}}
data_dir: /data
era: 0
log_level: "info"
"""
    config = parse_node_config(text, source="node.yaml")
    env = {"POD_NAME": "aitbc-validator-3", "AITBC_ADMIN_TOKEN": "from-secret"}
    resolved = config.resolve(env)
    assert resolved.index == 3
    assert resolved.era == "0"
    assert resolved.admin_token == "from-secret"
    assert sorted(resolved.peers) == [0, 1, 2]
    assert resolved.peers[0] == "aitbc-validator-0.aitbc-validators.ns.svc:7000"
    assert resolved.data_dir == Path("/data")
    assert resolved.keys.bls.public.hex() == genesis.validators[3].bls_public_key


# -- index from the environment -------------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "index"),
    [
        ({"AITBC_VALIDATOR_INDEX": "2"}, 2),
        ({"AITBC_POD_INDEX": "3"}, 3),
        ({"POD_NAME": "aitbc-validator-1"}, 1),
        ({"POD_NAME": "x-0"}, 0),
        # precedence: explicit index variable, then the pod-index label, then the pod name
        ({"AITBC_VALIDATOR_INDEX": "2", "AITBC_POD_INDEX": "3", "POD_NAME": "v-1"}, 2),
        ({"AITBC_POD_INDEX": "3", "POD_NAME": "v-1"}, 3),
        ({"AITBC_VALIDATOR_INDEX": " ", "POD_NAME": "v-1"}, 1),  # blank counts as unset
    ],
)
def test_auto_index_comes_from_the_environment(net: Path, env: dict[str, str], index: int) -> None:
    config = load_node_config(write_config(net, base("auto")))
    assert config.resolve(env).index == index


def test_an_explicit_index_ignores_the_environment(net: Path) -> None:
    config = load_node_config(write_config(net, base(1)))
    assert config.resolve({"AITBC_VALIDATOR_INDEX": "2", "POD_NAME": "v-3"}).index == 1


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "AITBC_VALIDATOR_INDEX"),
        ({"POD_NAME": "aitbc-validator"}, "POD_NAME"),
        ({"AITBC_POD_INDEX": "three"}, "AITBC_POD_INDEX"),
        ({"AITBC_VALIDATOR_INDEX": "-1"}, "AITBC_VALIDATOR_INDEX"),
    ],
)
def test_auto_index_without_a_usable_variable_is_an_error(
    net: Path, env: dict[str, str], named: str
) -> None:
    config = load_node_config(write_config(net, base("auto")))
    with pytest.raises(ConfigError, match=named):
        config.resolve(env)


def test_an_index_outside_the_genesis_is_an_error(net: Path) -> None:
    config = load_node_config(write_config(net, base("auto")))
    with pytest.raises(ConfigError, match=r"index 7 is not in the genesis, which has 4"):
        config.resolve({"POD_NAME": "aitbc-validator-7"})


# -- other overrides ------------------------------------------------------------------------
def test_data_dir_and_log_level_and_admin_token_come_from_the_environment(
    net: Path, tmp_path: Path
) -> None:
    config = load_node_config(write_config(net, base()))
    env = {
        "AITBC_DATA_DIR": str(tmp_path / "pvc"),
        "AITBC_LOG_LEVEL": "DEBUG",
        "AITBC_ADMIN_TOKEN": "env-token",
    }
    resolved = config.resolve(env)
    assert resolved.data_dir == tmp_path / "pvc"
    assert resolved.log_level == "debug"
    assert resolved.admin_token == "env-token"


def test_a_bad_log_level_in_the_environment_is_named(net: Path) -> None:
    config = load_node_config(write_config(net, base()))
    with pytest.raises(ConfigError, match=r"AITBC_LOG_LEVEL='loud' is not a log level"):
        config.resolve({"AITBC_LOG_LEVEL": "loud"})


def test_no_admin_token_anywhere_leaves_the_fault_api_disabled(net: Path) -> None:
    text = base().replace("admin_token: file-token\n", "")
    resolved = load_node_config(write_config(net, text)).resolve({"AITBC_ADMIN_TOKEN": ""})
    assert resolved.admin_token is None


def test_resolve_defaults_to_os_environ(net: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITBC_VALIDATOR_INDEX", "2")
    config = load_node_config(write_config(net, base("auto")), env=os.environ)
    assert config.resolve().index == 2


# -- keys -----------------------------------------------------------------------------------
def test_a_seed_that_does_not_match_the_genesis_keys_fails_clearly(net: Path) -> None:
    config = load_node_config(write_config(net, base(1, seed="another-seed")))
    with pytest.raises(ConfigError) as caught:
        config.resolve({})
    message = str(caught.value)
    assert "node.yaml:3: field key.seed" in message
    assert "genesis validator 1" in message
    assert SEED in message  # says which seed the genesis was made with


def test_the_seed_defaults_to_the_genesis_key_seed(net: Path, genesis: Genesis) -> None:
    text = base(2).replace(f'key: {{seed: "{SEED}", index: 2}}', "key: {index: 2}")
    resolved = load_node_config(write_config(net, text)).resolve({})
    assert resolved.keys.bls.public.hex() == genesis.validators[2].bls_public_key


def test_a_key_file_finds_its_validator_in_the_genesis(net: Path, genesis: Genesis) -> None:
    scheme = BlsScheme()
    keys = NodeKeys(
        bls=testnet_bls_keypair(scheme, SEED, 2), account=testnet_account_keypair(SEED, 1_000_002)
    )
    save_key_file(net / "key.json", keys)
    text = base().replace(f'key: {{seed: "{SEED}", index: 1}}', "key_file: key.json")
    resolved = load_node_config(write_config(net, text)).resolve({})
    assert resolved.index == 2
    assert resolved.keys == keys


def test_a_key_file_of_no_genesis_validator_is_an_error(net: Path) -> None:
    scheme = BlsScheme()
    stranger = NodeKeys(
        bls=testnet_bls_keypair(scheme, "stranger", 0), account=testnet_account_keypair("s", 0)
    )
    save_key_file(net / "key.json", stranger)
    text = base().replace(f'key: {{seed: "{SEED}", index: 1}}', "key_file: key.json")
    with pytest.raises(ConfigError, match=r"field key_file: .*belongs to none of the genesis"):
        load_node_config(write_config(net, text)).resolve({})


def test_key_and_key_file_are_exclusive_and_one_is_needed(net: Path) -> None:
    both = base().replace("data_dir:", "key_file: key.json\ndata_dir:")
    with pytest.raises(ConfigError, match="key and key_file are both set"):
        load_node_config(write_config(net, both))
    neither = base().replace(f'key: {{seed: "{SEED}", index: 1}}\n', "")
    with pytest.raises(ConfigError, match="neither key nor key_file"):
        load_node_config(write_config(net, neither))


# -- genesis --------------------------------------------------------------------------------
def test_a_missing_genesis_file_names_the_path_and_the_field(net: Path) -> None:
    text = base().replace("genesis: genesis.json", "genesis: missing/genesis.json")
    config = load_node_config(write_config(net, text))
    with pytest.raises(ConfigError) as caught:
        config.resolve({})
    message = str(caught.value)
    assert "node.yaml:2: field genesis" in message
    assert str(net / "missing" / "genesis.json") in message
    assert "aitbc-node genesis" in message


def test_a_genesis_that_is_not_json_is_a_config_error(net: Path) -> None:
    (net / "broken.json").write_text("{not json")
    text = base().replace("genesis: genesis.json", "genesis: broken.json")
    with pytest.raises(ConfigError, match=r"field genesis: genesis file .*not valid JSON"):
        load_node_config(write_config(net, text)).resolve({})


def test_a_chain_id_that_differs_from_the_genesis_is_an_error(net: Path) -> None:
    text = base().replace("chain_id: aitbc-config-test", "chain_id: other-chain")
    with pytest.raises(ConfigError, match=r"node.yaml:1: field chain_id: .*'aitbc-config-test'"):
        load_node_config(write_config(net, text)).resolve({})


# -- file errors ----------------------------------------------------------------------------
def test_an_unknown_field_names_the_file_line_and_field(net: Path) -> None:
    path = write_config(net, base() + "colour: blue\n")
    with pytest.raises(ConfigError) as caught:
        load_node_config(path)
    assert f"{path}:15: field colour: unknown field 'colour'" in str(caught.value)


def test_an_unknown_nested_field_is_named_with_its_path(net: Path) -> None:
    text = base().replace('listen: {grpc: "127.0.0.1:7001"', 'listen: {grpcc: "127.0.0.1:7001"')
    with pytest.raises(ConfigError, match=r"node.yaml:4: field listen.grpcc: unknown field"):
        load_node_config(write_config(net, text))


@pytest.mark.parametrize(
    ("replace", "with_", "expected"),
    [
        ('"127.0.0.1:9101"', '"localhost"', r":4: field listen.ops: address 'localhost'"),
        ('address: "127.0.0.1:7002"', 'address: "h:99999"', r":8: field peers.2.address"),
        ("log_level: info", "log_level: loud", r":13: field log_level"),
        ("max_txs: 1000", "max_txs: 0", r":14: field mempool.max_txs"),
        ('era: "1"', 'era: "a b"', r":11: field era"),
        ("index: 1}", "index: -1}", r":3: field key.index: index -1 is out of range"),
        ("index: 1}", "index: one}", r":3: field key.index: index 'one' is neither"),
        ("data_dir: ./data/node-1\n", "", r"field data_dir: required field is missing"),
    ],
)
def test_bad_values_are_named_with_their_line(
    net: Path, replace: str, with_: str, expected: str
) -> None:
    text = base()
    assert replace in text
    with pytest.raises(ConfigError, match=expected):
        load_node_config(write_config(net, text.replace(replace, with_, 1)))


def test_a_peer_template_needs_an_index_placeholder(net: Path) -> None:
    text = base().split("peers:")[0] + 'peers: {count: 4, template: "host:7000"}\n'
    text += "data_dir: d\n"
    with pytest.raises(ConfigError, match=r"field peers.template: .*no \{index\} placeholder"):
        load_node_config(write_config(net, text))


def test_a_peer_listed_twice_is_an_error(net: Path) -> None:
    text = base().replace('{index: 3, address: "127.0.0.1:7003"}', '{index: 2, address: "x:1"}')
    with pytest.raises(ConfigError, match=r"field peers.3.index: peer 2 is listed twice"):
        load_node_config(write_config(net, text)).resolve({})


def test_yaml_syntax_errors_and_wrong_shapes_are_config_errors(net: Path) -> None:
    with pytest.raises(ConfigError, match=r"node.yaml:3: YAML syntax error"):
        load_node_config(write_config(net, "genesis: g\nkey: {seed: [\n"))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_node_config(write_config(net, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="is empty"):
        load_node_config(write_config(net, "# nothing\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_node_config(net / "absent.yaml")


def test_split_host_port() -> None:
    assert split_host_port("127.0.0.1:7000") == ("127.0.0.1", 7000)
    assert split_host_port("[::1]:9100") == ("::1", 9100)
    assert split_host_port(":9100") == ("", 9100)
    assert split_host_port("aitbc-validator-3.svc:7000") == ("aitbc-validator-3.svc", 7000)
    for bad in ("7000", "host:", "host:70000", "a b:1", "[::1]", "host:-1"):
        with pytest.raises(ValueError):
            split_host_port(bad)


# -- eras -----------------------------------------------------------------------------------
def test_era_check_wipes_data_only_when_the_era_changes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert era_check(data, "1") is False  # new folder: created and marked, nothing to wipe
    assert (data / ERA_MARKER).read_text().strip() == "1"
    (data / "chain.sqlite").write_text("blocks")
    (data / "sub").mkdir()
    (data / "sub" / "wal").write_text("x")
    (data / "lost+found").mkdir()

    assert era_check(data, "1") is False
    assert (data / "chain.sqlite").exists()

    assert era_check(data, "2") is True
    assert sorted(p.name for p in data.iterdir()) == [ERA_MARKER, "lost+found"]
    assert (data / ERA_MARKER).read_text().strip() == "2"
    assert era_check(data, "2") is False


def test_era_check_without_an_era_touches_nothing(tmp_path: Path) -> None:
    (tmp_path / "chain.sqlite").write_text("blocks")
    assert era_check(tmp_path, None) is False
    assert (tmp_path / "chain.sqlite").exists()
    assert not (tmp_path / ERA_MARKER).exists()


def test_era_check_wipes_unmarked_data_and_never_follows_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("precious")
    data = tmp_path / "data"
    data.mkdir()
    (data / "old.sqlite").write_text("from before eras")
    (data / "link").symlink_to(outside, target_is_directory=True)

    assert era_check(data, "7") is True
    assert sorted(p.name for p in data.iterdir()) == [ERA_MARKER]
    assert (outside / "keep.txt").read_text() == "precious"


def test_era_check_on_a_file_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match=r"data dir .*file"):
        era_check(blocker, "1")


# -- a start-up attack ----------------------------------------------------------------------
def test_a_byzantine_behaviour_to_start_with_is_optional_and_checked(net: Path) -> None:
    assert load_node_config(write_config(net, base())).resolve({}).byzantine is None
    text = base() + "byzantine: {behaviour: flood, count: 5}\n"
    resolved = load_node_config(write_config(net, text)).resolve({})
    assert resolved.byzantine == {"behaviour": "flood", "count": 5}
    with pytest.raises(ConfigError, match=r"node.yaml:15: field byzantine.behaviour: .*use one"):
        load_node_config(write_config(net, base() + "byzantine: {behaviour: meteor}\n"))
    with pytest.raises(ConfigError, match=r"node.yaml:15: field byzantine.speed: flood takes"):
        load_node_config(write_config(net, base() + "byzantine: {behaviour: flood, speed: 1}\n"))
