"""Settings from the environment: defaults, and errors that name the variable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aitbc_node.genesis import Genesis, write_genesis

from loadgen.config import ENVIRONMENT, load_settings, parse_targets
from loadgen.errors import LoadgenConfigError
from loadgen.shapes import ConstantShape, RampShape

LOADGEN_DIR = Path(__file__).resolve().parents[2] / "loadgen"


def _env(genesis_path: Path, **overrides: str) -> dict[str, str]:
    env = {"AITBC_TARGETS": "127.0.0.1:50051,127.0.0.1:50052", "AITBC_GENESIS": str(genesis_path)}
    env.update(overrides)
    return env


def test_defaults(genesis_path: Path, genesis: Genesis) -> None:
    settings = load_settings(_env(genesis_path))
    assert settings.targets == ("127.0.0.1:50051", "127.0.0.1:50052")
    assert settings.chain_id == genesis.chain_id
    assert settings.tps == 100
    assert settings.batch_size == 50
    assert settings.tx_size == 0
    assert settings.shape == ConstantShape(100)
    assert settings.load_accounts == range(0, len(genesis.accounts) - 1)
    assert settings.probe_account == len(genesis.accounts) - 1
    assert settings.probe_account not in settings.load_accounts
    assert (settings.workers, settings.worker_index, settings.rate_share) == (1, 0, 1.0)
    assert settings.probe_interval_s == 1.0 and settings.probe_enabled
    assert settings.probe_timeout_s == 30.0
    assert settings.metrics_port == 9646
    assert settings.rpc_timeout_s == 5.0
    assert settings.probe_log is None
    assert settings.summary_path is None
    assert settings.run_id == "adhoc"


def test_every_setting(genesis_path: Path, tmp_path: Path) -> None:
    settings = load_settings(
        _env(
            genesis_path,
            AITBC_TPS="250.5",
            AITBC_BATCH_SIZE="20",
            AITBC_TX_SIZE="300",
            AITBC_ACCOUNTS="9",
            AITBC_FIRST_ACCOUNT="3",
            AITBC_WORKERS="3",
            AITBC_WORKER_INDEX="2",
            AITBC_SHAPE="ramp",
            AITBC_SHAPE_PARAMS='{"from_tps": 0, "to_tps": 90, "duration_s": 30}',
            AITBC_PROBE_INTERVAL_S="0",
            AITBC_PROBE_TIMEOUT_S="12",
            AITBC_PROBE_LOG=str(tmp_path / "probe.jsonl"),
            AITBC_SUMMARY=str(tmp_path / "summary.json"),
            AITBC_LOADGEN_METRICS_PORT="0",
            AITBC_RPC_TIMEOUT_S="1.5",
            AITBC_RUN_ID="nightly-2024.06.01",
        )
    )
    assert settings.shape == RampShape(0, 90, 30)
    assert settings.load_accounts == range(3, 12)
    assert settings.worker_accounts == [5, 8, 11]
    assert settings.rate_share == pytest.approx(1 / 3)
    assert not settings.probe_enabled
    assert settings.probe_log == tmp_path / "probe.jsonl"
    assert settings.summary_path == tmp_path / "summary.json"
    assert settings.metrics_port == 0
    assert settings.describe()["run_id"] == "nightly-2024.06.01"


BAD_VALUES: list[tuple[str, str]] = [
    ("AITBC_TARGETS", "localhost"),
    ("AITBC_TARGETS", "127.0.0.1:0"),
    ("AITBC_TARGETS", "127.0.0.1:99999"),
    ("AITBC_TARGETS", "a b:50051"),
    ("AITBC_TARGETS", "h:1,h:1"),
    ("AITBC_TARGETS", " , "),
    ("AITBC_TPS", "fast"),
    ("AITBC_TPS", "-1"),
    ("AITBC_TPS", "nan"),
    ("AITBC_BATCH_SIZE", "0"),
    ("AITBC_BATCH_SIZE", "10.5"),
    ("AITBC_BATCH_SIZE", "100000"),
    ("AITBC_TX_SIZE", "10"),
    ("AITBC_TX_SIZE", "5000"),
    ("AITBC_TX_SIZE", "-3"),
    ("AITBC_ENTRY_VALIDATORS", "0"),
    ("AITBC_ENTRY_VALIDATORS", "some"),
    ("AITBC_ACCOUNTS", "17"),
    ("AITBC_ACCOUNTS", "0"),
    ("AITBC_ACCOUNTS", "many"),
    ("AITBC_FIRST_ACCOUNT", "16"),
    ("AITBC_WORKERS", "0"),
    ("AITBC_WORKER_INDEX", "1"),
    ("AITBC_SHAPE", "sawtooth"),
    ("AITBC_SHAPE_PARAMS", "{not json"),
    ("AITBC_PROBE_INTERVAL_S", "0.001"),
    ("AITBC_PROBE_INTERVAL_S", "-1"),
    ("AITBC_PROBE_TIMEOUT_S", "0"),
    ("AITBC_LOADGEN_METRICS_PORT", "70000"),
    ("AITBC_RPC_TIMEOUT_S", "0"),
    ("AITBC_RUN_ID", "bad id"),
    ("AITBC_GENESIS", "/nonexistent/genesis.json"),
]


@pytest.mark.parametrize(("variable", "value"), BAD_VALUES)
def test_bad_values_name_the_variable(genesis_path: Path, variable: str, value: str) -> None:
    with pytest.raises(LoadgenConfigError) as raised:
        load_settings(_env(genesis_path, **{variable: value}))
    assert str(raised.value).startswith(variable), str(raised.value)


def test_too_few_accounts_for_the_workers(genesis_path: Path) -> None:
    with pytest.raises(LoadgenConfigError, match=r"^AITBC_ACCOUNTS=2 is fewer than AITBC_WORKERS"):
        load_settings(_env(genesis_path, AITBC_ACCOUNTS="2", AITBC_WORKERS="3"))


@pytest.mark.parametrize("variable", ["AITBC_TARGETS", "AITBC_GENESIS"])
def test_required_variables(genesis_path: Path, variable: str) -> None:
    env = _env(genesis_path)
    del env[variable]
    with pytest.raises(LoadgenConfigError, match=rf"^{variable} is not set"):
        load_settings(env)


def test_genesis_that_is_not_json(tmp_path: Path, genesis_path: Path) -> None:
    broken = tmp_path / "genesis.json"
    broken.write_text("{")
    with pytest.raises(LoadgenConfigError, match=r"^AITBC_GENESIS=.*not valid JSON"):
        load_settings(_env(genesis_path, AITBC_GENESIS=str(broken)))


def test_genesis_without_key_seed(tmp_path: Path, genesis: Genesis) -> None:
    path = tmp_path / "sealed.json"
    write_genesis(genesis.model_copy(update={"key_seed": None}), path)
    with pytest.raises(LoadgenConfigError, match=r"^AITBC_GENESIS=.*key_seed"):
        load_settings(_env(path))


def test_genesis_with_a_single_account(tmp_path: Path, genesis: Genesis) -> None:
    path = tmp_path / "one.json"
    write_genesis(genesis.model_copy(update={"accounts": genesis.accounts[:1]}), path)
    with pytest.raises(LoadgenConfigError, match=r"^AITBC_GENESIS: .*at least 2"):
        load_settings(_env(path))


def test_entry_validators_are_spread_through_the_targets(genesis_path: Path) -> None:
    targets = ",".join(f"127.0.0.1:{50000 + i}" for i in range(10))
    settings = load_settings(_env(genesis_path, AITBC_TARGETS=targets))
    assert settings.entry_targets == settings.targets
    settings = load_settings(_env(genesis_path, AITBC_TARGETS=targets, AITBC_ENTRY_VALIDATORS="3"))
    assert settings.entry_targets == ("127.0.0.1:50000", "127.0.0.1:50003", "127.0.0.1:50006")
    assert len(settings.targets) == 10  # the failover pool stays whole
    settings = load_settings(_env(genesis_path, AITBC_TARGETS=targets, AITBC_ENTRY_VALIDATORS="12"))
    assert settings.entry_targets == settings.targets


def test_ipv6_targets() -> None:
    assert parse_targets("[::1]:50051, localhost:7") == ("[::1]:50051", "localhost:7")


def test_every_variable_is_documented() -> None:
    readme = (LOADGEN_DIR / "README.md").read_text()
    locustfile_doc = (LOADGEN_DIR / "locustfile.py").read_text().split('"""')[1]
    for variable in ENVIRONMENT:
        assert variable.name in readme, variable.name
        assert variable.name in locustfile_doc, variable.name
    documented = set(re.findall(r"AITBC_[A-Z_]+", readme))
    assert documented <= {variable.name for variable in ENVIRONMENT}


def test_shape_params_in_the_environment_are_json(genesis_path: Path) -> None:
    steps = {"steps": [{"tps": 10, "duration_s": 1}, {"tps": 20, "duration_s": 1}]}
    settings = load_settings(
        _env(genesis_path, AITBC_SHAPE="step", AITBC_SHAPE_PARAMS=json.dumps(steps))
    )
    assert settings.shape.peak_tps == 20
