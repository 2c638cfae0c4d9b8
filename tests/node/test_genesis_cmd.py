"""`aitbc-node genesis`, run through the real CLI entry point into tmp_path: the files, their
modes, free and distinct ports, configs that resolve against the genesis, determinism, and
bad flags exiting 2 with a message naming the flag."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

import pytest
from aitbc_node.cli import main
from aitbc_node.config import load_node_config, split_host_port
from aitbc_node.genesis import load_genesis

FLAGS = ["--validators", "4", "--authorities", "3", "--seed", "cmd-seed"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def bindable(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def test_writes_genesis_configs_network_and_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "net"
    code, stdout, _ = run(capsys, "genesis", *FLAGS, "--accounts", "8", "--out", str(out))
    assert code == 0
    assert "4-validator testnet" in stdout
    assert f"aitbc-node run --config {out / 'node-0.yaml'}" in stdout

    genesis = load_genesis(out / "genesis.json")
    assert len(genesis.validators) == 4
    assert genesis.authority_count == 3
    assert len(genesis.accounts) == 8
    assert genesis.key_seed == "cmd-seed"

    token = (out / "admin-token").read_text().strip()
    assert len(token) >= 32
    assert stat.S_IMODE((out / "admin-token").stat().st_mode) == 0o600

    network = json.loads((out / "network.json").read_text())
    assert network["chain_id"] == genesis.chain_id
    assert network["admin_token_file"] == str(out / "admin-token")
    assert [v["index"] for v in network["validators"]] == [0, 1, 2, 3]
    assert [v["authority"] for v in network["validators"]] == [True, True, True, False]
    assert all(v["stake"] == genesis.validators[v["index"]].stake for v in network["validators"])

    ports: list[int] = []
    for entry in network["validators"]:
        index = entry["index"]
        config_path = out / f"node-{index}.yaml"
        assert entry["config"] == str(config_path)
        assert stat.S_IMODE(config_path.stat().st_mode) == 0o600  # it holds the admin token
        resolved = load_node_config(config_path).resolve({})
        assert resolved.index == index
        assert resolved.chain_id == genesis.chain_id
        assert resolved.keys.bls.public.hex() == genesis.validators[index].bls_public_key
        assert resolved.grpc_listen == entry["grpc"]
        assert resolved.ops_listen == entry["ops"]
        assert resolved.admin_token == token
        assert resolved.data_dir == out / "data" / f"node-{index}"
        assert str(resolved.data_dir) == entry["data_dir"]
        assert resolved.era == genesis.hash().hex()[:16]
        others = {e["index"]: e["grpc"] for e in network["validators"] if e["index"] != index}
        assert resolved.peers == others
        for address in (entry["grpc"], entry["ops"]):
            host, port = split_host_port(address)
            assert host == "127.0.0.1"
            ports.append(port)
    assert len(set(ports)) == 8  # grpc and ops, all distinct
    assert all(bindable("127.0.0.1", port) for port in ports)  # and free


def test_the_genesis_is_deterministic_for_a_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("a", "b"):
        assert run(capsys, "genesis", *FLAGS, "--out", str(tmp_path / name))[0] == 0
    first = (tmp_path / "a" / "genesis.json").read_bytes()
    assert first == (tmp_path / "b" / "genesis.json").read_bytes()
    other = [*FLAGS[:-1], "other-seed"]
    assert run(capsys, "genesis", *other, "--out", str(tmp_path / "c"))[0] == 0
    assert (tmp_path / "c" / "genesis.json").read_bytes() != first
    # the token is random per network
    tokens = {(tmp_path / n / "admin-token").read_text() for n in ("a", "b", "c")}
    assert len(tokens) == 3


def test_flags_reach_the_genesis(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "genesis", *FLAGS, "--stake", "uniform:10:20", "--mode", "fast", "--epoch-length", "20",
        "--block-interval-ms", "250", "--chain-id", "my-devnet", "--log-level", "debug",
        "--accounts", "0", "--out", str(tmp_path),
    ]  # fmt: skip
    assert run(capsys, *argv)[0] == 0
    genesis = load_genesis(tmp_path / "genesis.json")
    assert genesis.chain_id == "my-devnet"
    assert genesis.consensus.mode == "fast"
    assert genesis.consensus.epoch_length == 20
    assert genesis.consensus.block_interval_ms == 250
    assert all(10 <= v.stake <= 20 for v in genesis.validators)
    assert genesis.accounts == []
    assert load_node_config(tmp_path / "node-2.yaml").resolve({}).log_level == "debug"


def test_the_block_interval_is_part_of_the_default_chain_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "genesis", *FLAGS, "--out", str(tmp_path / "a"))
    run(capsys, "genesis", *FLAGS, "--block-interval-ms", "150", "--out", str(tmp_path / "b"))
    a = load_genesis(tmp_path / "a" / "genesis.json")
    b = load_genesis(tmp_path / "b" / "genesis.json")
    assert a.chain_id.startswith("aitbc-testnet-")
    assert b.chain_id.startswith("aitbc-testnet-")
    assert a.chain_id != b.chain_id


def test_json_prints_network_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run(capsys, "genesis", *FLAGS, "--json", "--out", str(tmp_path))
    assert code == 0
    assert json.loads(stdout) == json.loads((tmp_path / "network.json").read_text())


def test_base_port_lays_out_grpc_then_ops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _free_run(8)
    code, _, err = run(capsys, "genesis", *FLAGS, "--base-port", str(base), "--out", str(tmp_path))
    assert code == 0, err
    network = json.loads((tmp_path / "network.json").read_text())
    grpc = [split_host_port(v["grpc"])[1] for v in network["validators"]]
    ops = [split_host_port(v["ops"])[1] for v in network["validators"]]
    assert grpc == [base, base + 1, base + 2, base + 3]
    assert ops == [base + 4, base + 5, base + 6, base + 7]


def _free_run(length: int) -> int:
    """A base port with ``length`` free ports after it (found by trying)."""
    for base in range(31_000, 60_000, 97):
        if all(bindable("127.0.0.1", port) for port in range(base, base + length)):
            return base
    raise AssertionError("no run of free ports found")


def test_a_base_port_in_use_is_refused_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        code, _, err = run(
            capsys, "genesis", *FLAGS, "--base-port", str(busy), "--out", str(tmp_path)
        )
    assert code == 2
    assert f"--base-port {busy}: port {busy} on 127.0.0.1 is not free" in err
    assert not (tmp_path / "genesis.json").exists()


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--validators", "0", "--authorities", "1", "--seed", "s"], "--validators"),
        (["--validators", "four", "--authorities", "1", "--seed", "s"], "--validators"),
        ([*FLAGS, "--stake", "pareto"], "--stake"),
        ([*FLAGS, "--stake", "uniform:9:1"], "--stake"),
        ([*FLAGS, "--mode", "turbo"], "--mode"),
        ([*FLAGS, "--epoch-length", "5"], "--epoch-length"),
        ([*FLAGS, "--base-port", "70000"], "--base-port"),
        ([*FLAGS, "--block-interval-ms", "0"], "--block-interval-ms"),
        (["--validators", "4", "--authorities", "3"], "--seed"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["genesis", *argv, "--out", str(tmp_path)])
    assert exited.value.code == 2
    assert named in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--validators", "4", "--authorities", "5", "--seed", "s"], "--authorities 5: use 1..4"),
        ([*FLAGS, "--chain-id", "bad chain"], "--chain-id 'bad chain'"),
        # TEST-NET-1: not an address of this machine (no DNS lookup needed)
        ([*FLAGS, "--host", "192.0.2.1"], "--host 192.0.2.1: cannot bind a port on it"),
        ([*FLAGS, "--base-port", "65534"], "--base-port 65534: 8 ports from it end at 65541"),
        (["--validators", "4", "--authorities", "3", "--seed", ""], "--seed is empty"),
    ],
)
def test_semantic_errors_exit_2_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, "genesis", *argv, "--out", str(tmp_path / "net"))
    assert code == 2
    assert message in err


def test_out_must_be_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    code, _, err = run(capsys, "genesis", *FLAGS, "--out", str(target))
    assert code == 2
    assert "is a file, not a folder" in err


def test_regenerating_changes_the_era_so_old_data_is_wiped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "genesis", *FLAGS, "--out", str(tmp_path))
    first = load_node_config(tmp_path / "node-0.yaml").resolve({}).era
    run(capsys, "genesis", *FLAGS[:-1], "new-seed", "--out", str(tmp_path))
    second = load_node_config(tmp_path / "node-0.yaml").resolve({}).era
    assert first != second
