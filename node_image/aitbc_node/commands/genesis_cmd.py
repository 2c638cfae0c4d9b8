"""``aitbc-node genesis``: a local testnet's genesis, one config per validator, and network.json.

``aitbc-node genesis --validators 4 --authorities 4 --seed devnet --out ./net`` writes::

    net/genesis.json      make_testnet_genesis(...) (same flags, same file)
    net/node-<i>.yaml     validator i: key {seed, index: i}, listen ports, peers, data dir
    net/admin-token       the fault API's bearer token (random, shared by all nodes; mode 0600)
    net/network.json      {chain_id, genesis, validators: [{index, grpc, ops, authority, stake,
                          config, data_dir}], admin_token_file}: read by the orchestrator

Without ``--base-port``, every gRPC and ops port is one the OS handed out as free (bound to port
0, then released), all distinct; with it, validator i listens on BASE+i (gRPC) and BASE+N+i (ops).
A port may be taken by another program between this command and ``aitbc-node run``.
Each config's ``era`` is the genesis hash prefix: regenerating into the same folder makes every
node wipe its old chain data on the next start. ``make_local_testnet`` is the library entry.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aitbc_node.config import LOG_LEVELS
from aitbc_node.errors import ConfigError
from aitbc_node.genesis import CHAIN_ID_PATTERN, Genesis, make_testnet_genesis, write_genesis

NETWORK_FILE = "network.json"
GENESIS_FILE = "genesis.json"
ADMIN_TOKEN_FILE = "admin-token"
_DEFAULT_CHAIN_PREFIX = "aitbc-testnet"
_PORT_ATTEMPTS = 50


# -- the library part -----------------------------------------------------------------------
@dataclass(frozen=True)
class LocalNode:
    index: int
    grpc: str
    ops: str
    authority: bool
    stake: int
    config: Path
    data_dir: Path


@dataclass(frozen=True)
class LocalTestnet:
    """What ``make_local_testnet`` wrote."""

    out_dir: Path
    genesis: Genesis
    genesis_path: Path
    network_path: Path
    admin_token_path: Path
    nodes: tuple[LocalNode, ...]


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _family(host: str) -> tuple[socket.AddressFamily, Any]:
    try:
        info = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise ConfigError(
            f"--host {host!r} does not resolve ({error}): give an IP address such as 127.0.0.1"
        ) from None
    family, _, _, _, sockaddr = info[0]
    return family, sockaddr


def free_ports(host: str, count: int) -> list[int]:
    """``count`` distinct ports that the OS reports free on ``host`` (bind to port 0)."""
    family, sockaddr = _family(host)
    ports: list[int] = []
    seen: set[int] = set()
    attempts = 0
    while len(ports) < count:
        attempts += 1
        if attempts > count + _PORT_ATTEMPTS:
            raise ConfigError(
                f"--host {host}: the OS keeps handing out ports already chosen ({len(ports)} of "
                f"{count} found): pass --base-port to pick a port range"
            )
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.bind((sockaddr[0], 0))
                port = int(probe.getsockname()[1])
        except OSError as error:
            raise ConfigError(
                f"--host {host}: cannot bind a port on it ({error.strerror}): use an address "
                "of this machine such as 127.0.0.1"
            ) from None
        if port not in seen:
            seen.add(port)
            ports.append(port)
    return ports


def ports_from_base(host: str, base_port: int, count: int) -> list[int]:
    """``base_port .. base_port+count-1``, each checked free on ``host``."""
    last = base_port + count - 1
    if base_port < 1 or last > 65535:
        raise ConfigError(
            f"--base-port {base_port}: {count} ports from it end at {last}, outside 1..65535: "
            "choose a lower base port"
        )
    family, sockaddr = _family(host)
    for port in range(base_port, last + 1):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.bind((sockaddr[0], port))
        except OSError as error:
            raise ConfigError(
                f"--base-port {base_port}: port {port} on {host} is not free ({error.strerror}): "
                "choose another base port, or leave --base-port out to get free ports"
            ) from None
    return list(range(base_port, last + 1))


def _genesis(
    *,
    validators: int,
    authorities: int,
    seed: str,
    stake: str,
    mode: str,
    accounts: int,
    epoch_length: int,
    block_interval_ms: int | None,
    chain_id: str | None,
) -> Genesis:
    genesis = make_testnet_genesis(
        validators=validators,
        authorities=authorities,
        seed=seed,
        mode=mode,
        stake=stake,
        accounts=accounts,
        epoch_length=epoch_length,
        chain_id=chain_id if chain_id is not None else _DEFAULT_CHAIN_PREFIX,
    )
    if block_interval_ms is not None:
        document = genesis.model_dump(mode="json")
        document["consensus"]["block_interval_ms"] = block_interval_ms
        genesis = Genesis.model_validate(document)
    if chain_id is None:  # as make_testnet_genesis names it, with the block interval hashed in
        genesis = genesis.model_copy(
            update={"chain_id": f"{_DEFAULT_CHAIN_PREFIX}-{genesis.hash().hex()[:12]}"}
        )
    return genesis


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 (temp file, then rename)."""
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(descriptor, 0o600)
            os.write(descriptor, text.encode())
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise ConfigError(f"--out: cannot write {path} ({error.strerror})") from None


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text)


def _node_yaml(
    genesis: Genesis,
    seed: str,
    node: LocalNode,
    peers: Sequence[LocalNode],
    admin_token: str,
    era: str,
    log_level: str,
) -> str:
    lines = [
        f"# Validator {node.index} of {genesis.chain_id}, written by `aitbc-node genesis`.",
        f"# Start it with: aitbc-node run --config {node.config.name}",
        "# Relative paths resolve against this file's folder.",
        f"chain_id: {_q(genesis.chain_id)}",
        f"genesis: {GENESIS_FILE}",
        f"key: {{seed: {_q(seed)}, index: {node.index}}}",
        f"listen: {{grpc: {_q(node.grpc)}, ops: {_q(node.ops)}}}",
    ]
    others = [peer for peer in peers if peer.index != node.index]
    if others:
        lines.append("peers:")
        lines.extend(f"  - {{index: {peer.index}, address: {_q(peer.grpc)}}}" for peer in others)
    else:
        lines.append("peers: []")
    lines += [
        f"data_dir: {_q(f'data/node-{node.index}')}",
        f"era: {_q(era)}",
        f"admin_token: {_q(admin_token)}",
        f"log_level: {log_level}",
    ]
    return "\n".join(lines) + "\n"


def make_local_testnet(
    out_dir: str | os.PathLike[str],
    *,
    validators: int,
    authorities: int,
    seed: str,
    stake: str = "equal",
    mode: str = "balanced",
    accounts: int = 64,
    epoch_length: int = 100,
    block_interval_ms: int | None = None,
    host: str = "127.0.0.1",
    base_port: int | None = None,
    chain_id: str | None = None,
    log_level: str = "info",
) -> LocalTestnet:
    """Write a local testnet into ``out_dir`` (see the module docstring). Raises
    ``ConfigError`` naming the flag (``--validators`` ...) that is wrong."""
    if validators < 1:
        raise ConfigError(f"--validators {validators}: a testnet needs at least 1 validator")
    if not 1 <= authorities <= validators:
        raise ConfigError(
            f"--authorities {authorities}: use 1..{validators} (at most --validators)"
        )
    if not seed:
        raise ConfigError("--seed is empty: give any non-empty text, e.g. --seed devnet")
    if accounts < 0:
        raise ConfigError(f"--accounts {accounts}: use 0 or more test accounts")
    if epoch_length < 10:
        raise ConfigError(f"--epoch-length {epoch_length}: use 10 or more blocks per epoch")
    if block_interval_ms is not None and block_interval_ms < 1:
        raise ConfigError(f"--block-interval-ms {block_interval_ms}: use 1 or more")
    if chain_id is not None and not re.match(CHAIN_ID_PATTERN, chain_id):
        raise ConfigError(
            f"--chain-id {chain_id!r}: use 1-64 letters, digits, '.', '_' or '-', starting "
            "with a letter or digit"
        )
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"--log-level {log_level!r}: use one of {', '.join(LOG_LEVELS)}")
    folder = Path(out_dir).absolute()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {out_dir}: is a file, not a folder: choose a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"--out {out_dir}: cannot create it ({error.strerror})") from None

    genesis = _genesis(
        validators=validators,
        authorities=authorities,
        seed=seed,
        stake=stake,
        mode=mode,
        accounts=accounts,
        epoch_length=epoch_length,
        block_interval_ms=block_interval_ms,
        chain_id=chain_id,
    )
    if base_port is None:
        ports = free_ports(host, 2 * validators)
    else:
        ports = ports_from_base(host, base_port, 2 * validators)
    nodes = tuple(
        LocalNode(
            index=validator.index,
            grpc=_address(host, ports[validator.index]),
            ops=_address(host, ports[validators + validator.index]),
            authority=validator.authority,
            stake=validator.stake,
            config=folder / f"node-{validator.index}.yaml",
            data_dir=folder / "data" / f"node-{validator.index}",
        )
        for validator in genesis.validators
    )
    genesis_path = folder / GENESIS_FILE
    write_genesis(genesis, genesis_path)
    admin_token = secrets.token_urlsafe(32)
    token_path = folder / ADMIN_TOKEN_FILE
    _write_private(token_path, admin_token + "\n")
    era = genesis.hash().hex()[:16]
    for node in nodes:
        text = _node_yaml(genesis, seed, node, nodes, admin_token, era, log_level)
        _write_private(node.config, text)
    network: dict[str, Any] = {
        "chain_id": genesis.chain_id,
        "genesis": str(genesis_path),
        "validators": [
            {
                "index": node.index,
                "grpc": node.grpc,
                "ops": node.ops,
                "authority": node.authority,
                "stake": node.stake,
                "config": str(node.config),
                "data_dir": str(node.data_dir),
            }
            for node in nodes
        ],
        "admin_token_file": str(token_path),
    }
    network_path = folder / NETWORK_FILE
    try:
        network_path.write_text(json.dumps(network, indent=2) + "\n")
    except OSError as error:
        raise ConfigError(f"--out: cannot write {network_path} ({error.strerror})") from None
    return LocalTestnet(
        out_dir=folder,
        genesis=genesis,
        genesis_path=genesis_path,
        network_path=network_path,
        admin_token_path=token_path,
        nodes=nodes,
    )


# -- the command ----------------------------------------------------------------------------
def _int_flag(flag: str, minimum: int, maximum: int | None = None) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} {text!r}: not an integer") from None
        if value < minimum or (maximum is not None and value > maximum):
            upper = f"..{maximum}" if maximum is not None else " or more"
            raise argparse.ArgumentTypeError(f"{flag} {value}: use {minimum}{upper}")
        return value

    return parse


def _stake_flag(text: str) -> str:
    if text in ("equal", "zipf"):
        return text
    match = re.fullmatch(r"uniform:(\d+):(\d+)", text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"--stake {text!r}: use equal, zipf or uniform:LO:HI (e.g. uniform:1000:5000)"
        )
    if int(match.group(1)) > int(match.group(2)):
        raise argparse.ArgumentTypeError(f"--stake {text!r}: LO is above HI")
    return text


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``genesis`` to the ``aitbc-node`` subcommands (no-op when it is already there)."""
    if "genesis" in sub.choices:
        return
    p = sub.add_parser(
        "genesis",
        help="write a local testnet: genesis.json, one node-<i>.yaml per validator, network.json",
        description=(
            "Write a deterministic testnet genesis (same flags, same genesis.json) and, for a "
            "network on --host, one config per validator with free ports, explicit peers and "
            "a shared admin token. Example: aitbc-node genesis --validators 4 --authorities 4 "
            "--seed devnet --out ./net && aitbc-node run --config ./net/node-0.yaml"
        ),
    )
    p.add_argument("--validators", type=_int_flag("--validators", 1, 100_000), required=True)
    p.add_argument("--authorities", type=_int_flag("--authorities", 1), required=True)
    p.add_argument("--seed", required=True, help="key seed: anyone who knows it holds the keys")
    p.add_argument(
        "--stake", type=_stake_flag, default="equal", help="equal | zipf | uniform:LO:HI"
    )
    p.add_argument("--mode", default="balanced", choices=["fast", "balanced", "secure", "auto"])
    p.add_argument("--accounts", type=_int_flag("--accounts", 0), default=64, help="test accounts")
    p.add_argument("--epoch-length", type=_int_flag("--epoch-length", 10), default=100)
    p.add_argument(
        "--block-interval-ms",
        type=_int_flag("--block-interval-ms", 1),
        default=None,
        help="default: the mode's target (fast 100, balanced 500, secure 2000)",
    )
    p.add_argument("--chain-id", default=None, help="default: aitbc-testnet-<genesis hash>")
    p.add_argument("--host", default="127.0.0.1", help="address every node listens on")
    p.add_argument(
        "--base-port",
        type=_int_flag("--base-port", 1, 65535),
        default=None,
        help="validator i: gRPC BASE+i, ops BASE+N+i (default: free ports from the OS)",
    )
    p.add_argument("--log-level", default="info", choices=list(LOG_LEVELS))
    p.add_argument("--out", required=True, type=Path, help="folder to write into")
    p.add_argument("--json", action="store_true", help="print network.json instead of a summary")
    p.set_defaults(handler=_cmd_genesis)


def _cmd_genesis(args: argparse.Namespace) -> int:
    testnet = make_local_testnet(
        args.out,
        validators=args.validators,
        authorities=args.authorities,
        seed=args.seed,
        stake=args.stake,
        mode=args.mode,
        accounts=args.accounts,
        epoch_length=args.epoch_length,
        block_interval_ms=args.block_interval_ms,
        host=args.host,
        base_port=args.base_port,
        chain_id=args.chain_id,
        log_level=args.log_level,
    )
    if args.json:
        print(testnet.network_path.read_text(), end="")
        return 0
    count = len(testnet.nodes)
    print(
        f"wrote a {count}-validator testnet ({testnet.genesis.chain_id}, "
        f"{testnet.genesis.authority_count} authorities, mode {testnet.genesis.consensus.mode}) "
        f"to {testnet.out_dir}: {GENESIS_FILE}, node-0.yaml..node-{count - 1}.yaml, "
        f"{NETWORK_FILE}, {ADMIN_TOKEN_FILE}"
    )
    for node in testnet.nodes:
        print(f"  validator {node.index}: grpc {node.grpc} ops {node.ops}")
    print(f"start one with: aitbc-node run --config {testnet.nodes[0].config}")
    return 0
