"""The load generator's settings, read from environment variables.

Every variable is listed in ``ENVIRONMENT`` (name, default, meaning) and in loadgen/README.md.
``load_settings(os.environ)`` checks them all, loads the genesis and derives nothing that can
still fail later: a bad value raises ``LoadgenConfigError`` whose message starts with the
variable's name, before any load is sent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aitbc_node.errors import ConfigError, DecodeError
from aitbc_node.genesis import Genesis, load_genesis

from loadgen.accounts import load_account_indices, probe_account_index, split_accounts
from loadgen.batches import padding_memo
from loadgen.errors import LoadgenConfigError
from loadgen.shapes import LoadShape, build_shape, parse_shape_params


@dataclass(frozen=True)
class EnvVar:
    name: str
    default: str
    meaning: str


ENVIRONMENT: tuple[EnvVar, ...] = (
    EnvVar("AITBC_TARGETS", "(required)", "comma-separated host:port of the validators' gRPC"),
    EnvVar(
        "AITBC_ENTRY_VALIDATORS",
        "all",
        "how many targets (evenly spaced) receive the transactions; the rest take over a "
        "failed one's accounts",
    ),
    EnvVar("AITBC_GENESIS", "(required)", "path to the testnet's genesis.json"),
    EnvVar("AITBC_TPS", "100", "offered tx/s of all users together (constant; spike's base)"),
    EnvVar("AITBC_BATCH_SIZE", "50", "transactions per SubmitTransactions call (1..5000)"),
    EnvVar("AITBC_TX_SIZE", "0", "wire bytes per transaction, padded with the memo; 0: smallest"),
    EnvVar("AITBC_ACCOUNTS", "all", "how many genesis accounts the load uses (probe's excluded)"),
    EnvVar("AITBC_FIRST_ACCOUNT", "0", "index of the first genesis account the load uses"),
    EnvVar("AITBC_WORKERS", "1", "Locust worker processes sharing the load (divides the rate)"),
    EnvVar("AITBC_WORKER_INDEX", "0", "this worker's index, 0..AITBC_WORKERS-1"),
    EnvVar("AITBC_SHAPE", "constant", "constant | step | ramp | spike"),
    EnvVar("AITBC_SHAPE_PARAMS", "{}", "JSON parameters of the shape (see shapes.py)"),
    EnvVar("AITBC_PROBE_INTERVAL_S", "1", "seconds between latency probes; 0: no probe"),
    EnvVar("AITBC_PROBE_TIMEOUT_S", "30", "a probe not committed within this fails"),
    EnvVar("AITBC_PROBE_LOG", "(none)", "path of the probe log (JSON lines)"),
    EnvVar("AITBC_SUMMARY", "(none)", "path of the JSON summary written when the test stops"),
    EnvVar("AITBC_LOADGEN_METRICS_PORT", "9646", "Prometheus metrics port; 0: off"),
    EnvVar("AITBC_RPC_TIMEOUT_S", "5", "timeout of every gRPC call, seconds"),
    EnvVar("AITBC_RUN_ID", "adhoc", "run id recorded in metrics and the probe log"),
)
MAX_BATCH_SIZE = 5000
_RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_HOST_PATTERN = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,252}))$")


@dataclass(frozen=True)
class LoadgenSettings:
    """Checked settings of one load-generator process."""

    targets: tuple[str, ...]
    #: The targets the accounts are routed to at the start (``AITBC_ENTRY_VALIDATORS``).
    entry_targets: tuple[str, ...]
    genesis_path: Path
    genesis: Genesis
    tps: float
    batch_size: int
    tx_size: int
    load_accounts: range
    workers: int
    worker_index: int
    shape: LoadShape
    probe_interval_s: float
    probe_timeout_s: float
    probe_log: Path | None
    summary_path: Path | None
    metrics_port: int
    rpc_timeout_s: float
    run_id: str

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id

    @property
    def rate_share(self) -> float:
        """This worker's share of the offered rate."""
        return 1.0 / self.workers

    @property
    def worker_accounts(self) -> list[int]:
        """The genesis account indices this worker owns."""
        return split_accounts(self.load_accounts, self.worker_index, self.workers)

    @property
    def probe_enabled(self) -> bool:
        return self.probe_interval_s > 0

    @property
    def probe_account(self) -> int:
        return probe_account_index(self.genesis)

    @property
    def memo_tag(self) -> bytes:
        return f"aitbc-loadgen/{self.run_id}/".encode()

    def describe(self) -> dict[str, str]:
        """The settings as metric info labels."""
        return {
            "run_id": self.run_id,
            "chain_id": self.chain_id,
            "worker_index": str(self.worker_index),
            "workers": str(self.workers),
            "shape": self.shape.name,
            "tps": f"{self.tps:g}",
            "batch_size": str(self.batch_size),
            "tx_size": str(self.tx_size),
            "accounts": str(len(self.load_accounts)),
            "targets": str(len(self.targets)),
        }


# -- parsing helpers -------------------------------------------------------------------------
def _raw(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def _integer(
    env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int | None = None
) -> int:
    raw = _raw(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise LoadgenConfigError(f"{name}={raw!r} is not an integer") from None
    upper = "" if maximum is None else f" and <= {maximum}"
    if value < minimum or (maximum is not None and value > maximum):
        raise LoadgenConfigError(
            f"{name}={value} is out of range: use an integer >= {minimum}{upper}"
        )
    return value


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = _raw(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise LoadgenConfigError(f"{name}={raw!r} is not a number") from None
    if not math.isfinite(value) or value < minimum:
        raise LoadgenConfigError(f"{name}={raw!r} is out of range: use a number >= {minimum:g}")
    return value


def parse_targets(raw: str | None, *, name: str = "AITBC_TARGETS") -> tuple[str, ...]:
    """``host:port`` entries of a comma-separated list (IPv6 hosts in brackets)."""
    if raw is None or not raw.strip():
        raise LoadgenConfigError(
            f"{name} is not set: give the validators' gRPC addresses, e.g. "
            "127.0.0.1:50051,127.0.0.1:50052"
        )
    targets = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        host, separator, port_text = entry.rpartition(":")
        if not separator or not _HOST_PATTERN.match(host) or not port_text.isdigit():
            raise LoadgenConfigError(
                f"{name} entry {entry!r} is not host:port (e.g. 127.0.0.1:50051 or [::1]:50051)"
            )
        if not 1 <= int(port_text) <= 65535:
            raise LoadgenConfigError(f"{name} entry {entry!r} has port {port_text}: use 1..65535")
        targets.append(entry)
    if not targets:
        raise LoadgenConfigError(f"{name}={raw!r} lists no host:port")
    if len(set(targets)) != len(targets):
        raise LoadgenConfigError(f"{name}={raw!r} repeats a target: list each validator once")
    return tuple(targets)


def _count_or_all(env: Mapping[str, str], name: str) -> int | None:
    """A count >= 1 from ``name``, or None when it is unset or ``all``."""
    raw = _raw(env, name)
    if raw is None or raw.lower() == "all":
        return None
    return _integer(env, name, 0, 1)


def spread_targets(targets: Sequence[str], count: int) -> tuple[str, ...]:
    """``count`` of ``targets`` spaced evenly through the list (all of them when ``count``
    reaches their number). Few entry validators make few, full batches: spread over 100
    validators, 50 tx/s became ~50 one-transaction batches a second, each sent to 99 peers."""
    if count >= len(targets):
        return tuple(targets)
    return tuple(targets[(i * len(targets)) // count] for i in range(count))


def _genesis(env: Mapping[str, str]) -> tuple[Path, Genesis]:
    raw = _raw(env, "AITBC_GENESIS")
    if raw is None:
        raise LoadgenConfigError(
            "AITBC_GENESIS is not set: give the path of the testnet's genesis.json"
        )
    path = Path(raw)
    try:
        return path, load_genesis(path)
    except (ConfigError, DecodeError) as error:
        raise LoadgenConfigError(f"AITBC_GENESIS={raw}: {error}") from None


# -- the settings ----------------------------------------------------------------------------
def load_settings(env: Mapping[str, str]) -> LoadgenSettings:
    """Read and check every variable of ``ENVIRONMENT`` from ``env`` (e.g. ``os.environ``)."""
    targets = parse_targets(env.get("AITBC_TARGETS"))
    entries = _count_or_all(env, "AITBC_ENTRY_VALIDATORS") or len(targets)
    tps = _number(env, "AITBC_TPS", 100.0, 0.0)
    batch_size = _integer(env, "AITBC_BATCH_SIZE", 50, 1, MAX_BATCH_SIZE)
    tx_size = _integer(env, "AITBC_TX_SIZE", 0, 0)
    workers = _integer(env, "AITBC_WORKERS", 1, 1)
    worker_index = _integer(env, "AITBC_WORKER_INDEX", 0, 0)
    if worker_index >= workers:
        raise LoadgenConfigError(
            f"AITBC_WORKER_INDEX={worker_index} is out of range with AITBC_WORKERS={workers}: "
            f"use 0..{workers - 1}"
        )
    shape_kind = (_raw(env, "AITBC_SHAPE") or "constant").lower()
    shape_params = parse_shape_params(env.get("AITBC_SHAPE_PARAMS", ""))
    shape = build_shape(shape_kind, shape_params, tps)
    probe_interval_s = _number(env, "AITBC_PROBE_INTERVAL_S", 1.0, 0.0)
    if 0 < probe_interval_s < 0.05:
        raise LoadgenConfigError(
            f"AITBC_PROBE_INTERVAL_S={probe_interval_s:g} is too short: the probe is a "
            "low-rate measurement; use 0 (off) or >= 0.05"
        )
    probe_timeout_s = _number(env, "AITBC_PROBE_TIMEOUT_S", 30.0, 0.1)
    rpc_timeout_s = _number(env, "AITBC_RPC_TIMEOUT_S", 5.0, 0.01)
    metrics_port = _integer(env, "AITBC_LOADGEN_METRICS_PORT", 9646, 0, 65535)
    probe_log_raw = _raw(env, "AITBC_PROBE_LOG")
    summary_raw = _raw(env, "AITBC_SUMMARY")
    run_id = _raw(env, "AITBC_RUN_ID") or "adhoc"
    if not _RUN_ID_PATTERN.match(run_id):
        raise LoadgenConfigError(
            f"AITBC_RUN_ID={run_id!r} is not a run id: use letters, digits and . _ : - "
            "(at most 128, starting with a letter or digit)"
        )
    first_account = _integer(env, "AITBC_FIRST_ACCOUNT", 0, 0)
    account_count = _count_or_all(env, "AITBC_ACCOUNTS")
    genesis_path, genesis = _genesis(env)
    load_accounts = load_account_indices(genesis, first_account, account_count)
    if len(load_accounts) < workers:
        raise LoadgenConfigError(
            f"AITBC_ACCOUNTS={len(load_accounts)} is fewer than AITBC_WORKERS={workers}: every "
            "worker needs its own accounts; raise AITBC_ACCOUNTS"
        )
    if genesis.key_seed is None:
        raise LoadgenConfigError(
            f"AITBC_GENESIS={genesis_path}: genesis {genesis.chain_id!r} has no key_seed, so "
            "the test accounts' keys cannot be derived: use a testnet genesis"
        )
    padding_memo(genesis.chain_id, tx_size)  # raises naming AITBC_TX_SIZE
    return LoadgenSettings(
        targets=targets,
        entry_targets=spread_targets(targets, entries),
        genesis_path=genesis_path,
        genesis=genesis,
        tps=tps,
        batch_size=batch_size,
        tx_size=tx_size,
        load_accounts=load_accounts,
        workers=workers,
        worker_index=worker_index,
        shape=shape,
        probe_interval_s=probe_interval_s,
        probe_timeout_s=probe_timeout_s,
        probe_log=Path(probe_log_raw) if probe_log_raw else None,
        summary_path=Path(summary_raw) if summary_raw else None,
        metrics_port=metrics_port,
        rpc_timeout_s=rpc_timeout_s,
        run_id=run_id,
    )
