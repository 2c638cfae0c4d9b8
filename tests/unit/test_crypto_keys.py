"""Deterministic testnet identities and key files."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from aitbc_node.crypto import (
    BlsScheme,
    Domain,
    ModeledScheme,
    NodeKeys,
    load_key_file,
    save_key_file,
    tagged_hash,
    testnet_account_keypair,
    testnet_bls_keypair,
)
from aitbc_node.errors import ConfigError


def _node_keys(scheme: BlsScheme | ModeledScheme, index: int = 0) -> NodeKeys:
    return NodeKeys(
        bls=testnet_bls_keypair(scheme, "seed", index),
        account=testnet_account_keypair("seed", index),
    )


def test_testnet_keys_are_deterministic_and_distinct() -> None:
    scheme = BlsScheme()
    first = testnet_bls_keypair(scheme, "seed", 0)
    assert first == testnet_bls_keypair(scheme, "seed", 0)
    assert first == scheme.keypair(tagged_hash(b"bls-key", b"seed", (0).to_bytes(8, "big")))
    assert first.public != testnet_bls_keypair(scheme, "seed", 1).public
    assert first.public != testnet_bls_keypair(scheme, "seed2", 0).public
    account = testnet_account_keypair("seed", 0)
    assert account == testnet_account_keypair("seed", 0)
    assert account.public != testnet_account_keypair("seed", 1).public
    signature = scheme.sign(first.secret, Domain.VOTE, b"m")
    assert scheme.verify(first.public, Domain.VOTE, b"m", signature)


def test_negative_index_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="index -1"):
        testnet_account_keypair("seed", -1)


@pytest.mark.parametrize("scheme", [BlsScheme(), ModeledScheme()], ids=["real", "modeled"])
def test_key_file_round_trip_with_mode_0600(
    tmp_path: Path, scheme: BlsScheme | ModeledScheme
) -> None:
    keys = _node_keys(scheme)
    path = tmp_path / "node.key"
    save_key_file(path, keys, scheme_name=scheme.name)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key_file(path, scheme) == keys
    assert "secret" not in repr(keys.bls).replace("secret=<hidden>", "")


def test_key_file_overwrite_keeps_0600(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    path.write_text("old")
    path.chmod(0o644)
    save_key_file(path, _node_keys(BlsScheme()))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def _write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document))
    return path


def _valid_document(tmp_path: Path) -> dict[str, object]:
    path = tmp_path / "valid.key"
    save_key_file(path, _node_keys(BlsScheme()))
    document: dict[str, object] = json.loads(path.read_text())
    return document


def test_load_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"key file .*absent\.key: cannot read"):
        load_key_file(tmp_path / "absent.key", BlsScheme())


def test_load_non_json_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"bad\.key"):
        load_key_file(path, BlsScheme())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bls_secret": None}, r"field bls_secret: Field required"),
        ({"extra": "x"}, r"field extra: Extra inputs are not permitted"),
        ({"account_secret": "zz" * 32}, r"field account_secret is not hex"),
        ({"bls_public": "ab" * 47}, r"field bls_public has 47 bytes, expected 48"),
        ({"version": 2}, r"field version is 2"),
        ({"scheme": "modeled"}, r"field scheme is 'modeled'"),
        ({"bls_secret": "ff" * 32}, r"field bls_secret: .*not a valid scalar"),
    ],
)
def test_load_errors_name_path_and_field(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    document = _valid_document(tmp_path)
    for key, value in change.items():
        if value is None:
            del document[key]
        else:
            document[key] = value
    path = _write(tmp_path / "node.key", document)
    with pytest.raises(ConfigError, match=rf"key file {path}: {message}"):
        load_key_file(path, BlsScheme())


def test_load_detects_keys_that_do_not_match(tmp_path: Path) -> None:
    document = _valid_document(tmp_path)
    other = _node_keys(BlsScheme(), index=1)
    document["bls_public"] = other.bls.public.hex()
    path = _write(tmp_path / "a.key", document)
    with pytest.raises(ConfigError, match="field bls_public does not belong to bls_secret"):
        load_key_file(path, BlsScheme())
    document = _valid_document(tmp_path)
    document["account_public"] = other.account.public.hex()
    path = _write(tmp_path / "b.key", document)
    with pytest.raises(ConfigError, match="field account_public does not belong"):
        load_key_file(path, BlsScheme())


def test_save_into_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot write"):
        save_key_file(tmp_path / "missing" / "node.key", _node_keys(BlsScheme()))
