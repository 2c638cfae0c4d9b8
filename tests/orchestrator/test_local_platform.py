"""The local platform's parts that need no testnet: refusals before anything starts (a taken
port, a used run directory, no prometheus binary), the state file, pid ownership checks with
real processes, the two-way partition, the load generator's environment and the Prometheus
config (checked by promtool). Validators, Prometheus and Locust for real: tests/e2e."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from orchestrator_support import write_run_state

from orchestrator.errors import PlatformError
from orchestrator.external.prometheus_server import (
    INSTALL_HINT,
    PrometheusLayout,
    ScrapeTarget,
    find_prometheus,
    write_config,
    write_targets,
)
from orchestrator.faults.node_faults import node_specs
from orchestrator.measure.promql import LOADGEN_JOB, VALIDATOR_JOB
from orchestrator.platforms import PLATFORMS, get_platform
from orchestrator.platforms.capabilities import capabilities_of
from orchestrator.platforms.local import LocalPlatform
from orchestrator.platforms.local.load import local_loadgen_environment
from orchestrator.platforms.local.processes import process_alive
from orchestrator.platforms.local.state import (
    ProcessRecord,
    RunState,
)
from orchestrator.platforms.run_dirs import STATE_FILE, latest_run
from orchestrator.scenario.loader import load_scenario
from orchestrator.scenario.plan import Plan, PlannedFault, resolve_plan
from orchestrator.scenario.voting_power import PowerFractions
from orchestrator.stages.load import replace_load


def smoke_plan(*sets: str, run_id: str = "t1") -> Plan:
    return resolve_plan(load_scenario("devnet-smoke", sets), platform="local", run_id=run_id)


def fake_state(directory: Path, validators: int = 4, **changes: object) -> RunState:
    """A state.json as deploy writes it, for a testnet that is not running."""
    return write_run_state(directory, validators, plan={}, **changes)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process of our own (its own process group), killed by pid afterwards."""
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def record_of(process: subprocess.Popen[bytes]) -> ProcessRecord:
    text = Path(f"/proc/{process.pid}/stat").read_text()
    ticks = int(text[text.rfind(")") + 2 :].split()[19])
    return ProcessRecord(
        pid=process.pid, start_ticks=ticks, argv=["sleep"], log="-", started_at=time.time()
    )


# ----------------------------------------------------------------------------- registry


def test_local_is_registered_with_the_capabilities_it_has(tmp_path: Path) -> None:
    platform = get_platform("local", tmp_path / "r")
    assert isinstance(platform, LocalPlatform) and platform.name == "local"
    assert set(capabilities_of(platform)) == set(PLATFORMS["local"].capabilities)


# ----------------------------------------------------------------------------- refusals


def test_taken_base_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        platform = LocalPlatform(tmp_path / "run", base_port=port - 3)
        # port, or one below it that another program on this busy machine holds
        taken_here = rf"--base-port {port - 3}: port \d+ on 127\.0\.0\.1 is taken"
        with pytest.raises(PlatformError, match=taken_here) as info:
            platform.deploy(smoke_plan())
    assert info.value.exit_code == 3
    assert "choose another --base-port" in str(info.value)
    assert not (tmp_path / "run").exists()


def test_base_port_range_past_65535_is_refused(tmp_path: Path) -> None:
    platform = LocalPlatform(tmp_path / "run", base_port=65530)
    with pytest.raises(PlatformError, match=r"--base-port 65530: the run needs ports 65530\.\."):
        platform.deploy(smoke_plan())


def test_a_used_run_directory_is_refused_and_not_stopped(tmp_path: Path) -> None:
    directory = tmp_path / "used"
    fake_state(directory)
    before = (directory / STATE_FILE).read_text()
    platform = LocalPlatform(directory)
    with pytest.raises(PlatformError, match="already used by a run"):
        platform.deploy(smoke_plan())
    platform.destroy()  # nothing deployed by this object: the other run is left alone
    assert (directory / STATE_FILE).read_text() == before


def test_missing_prometheus_binary_names_the_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PlatformError) as info:
        find_prometheus()
    assert INSTALL_HINT in str(info.value) and info.value.exit_code == 3
    with pytest.raises(PlatformError, match="prometheus binary is not on PATH"):
        LocalPlatform(tmp_path / "run").deploy(smoke_plan())
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- state


def test_attach_reads_the_state_and_resolves_the_plan(tmp_path: Path) -> None:
    fake_state(tmp_path / "r1")
    platform = LocalPlatform.attach(tmp_path / "r1")
    assert [e.index for e in platform.endpoints()] == [0, 1, 2, 3]
    assert platform.prometheus_url() == "http://127.0.0.1:1"
    assert platform.plan().run_id == "r1" and platform.plan().name == "devnet-smoke"
    assert platform.validator_pids() == {0: None, 1: None, 2: None, 3: None}
    assert not platform.load_running()


def test_attach_to_a_folder_without_state_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match="is not a run directory"):
        LocalPlatform.attach(tmp_path)
    (tmp_path / STATE_FILE).write_text("{not json")
    with pytest.raises(PlatformError, match="cannot be read"):
        LocalPlatform.attach(tmp_path)


def test_latest_run_is_the_newest_created(tmp_path: Path) -> None:
    assert latest_run(tmp_path / "nothing") is None
    fake_state(tmp_path / "old", created=100.0)
    fake_state(tmp_path / "new", created=200.0)
    (tmp_path / "not-a-run").mkdir()
    assert latest_run(tmp_path) == tmp_path / "new"


# ----------------------------------------------------------------------------- processes


def test_process_alive_checks_the_start_time(sleeper: subprocess.Popen[bytes]) -> None:
    record = record_of(sleeper)
    assert process_alive(record)
    assert not process_alive(record.model_copy(update={"start_ticks": record.start_ticks + 1}))
    assert not process_alive(None)


def test_stop_processes_stops_ours_and_leaves_a_reused_pid_alone(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        ours = record_of(sleeper)
        reused = record_of(other).model_copy(update={"start_ticks": 1})  # "same pid, other one"
        state = fake_state(tmp_path / "r")
        state.validators[0].process = ours
        state.validators[1].process = reused
        (tmp_path / "r" / STATE_FILE).write_text(state.model_dump_json())
        platform = LocalPlatform.attach(tmp_path / "r")
        stopped = {item.name: item.how for item in platform.stop_processes()}
        assert stopped == {"validator-0": "SIGTERM", "validator-1": "not ours"}
        assert sleeper.wait(timeout=120) == -15
        assert other.poll() is None  # never signalled
        after = RunState.model_validate_json((tmp_path / "r" / STATE_FILE).read_text())
        assert after.stopped_at is not None
        assert all(v.process is None for v in after.validators)
    finally:
        other.kill()
        other.wait(timeout=10)


def test_kill_of_a_validator_that_is_not_running_is_a_no_op(tmp_path: Path) -> None:
    fake_state(tmp_path / "r")
    platform = LocalPlatform.attach(tmp_path / "r")
    platform.kill(1)
    assert platform.validator_pids()[1] is None
    with pytest.raises(PlatformError, match="validator 7 does not exist"):
        platform.kill(7)


# ----------------------------------------------------------------------------- faults


def planned(
    kind: str, ids: tuple[int, ...], end: float | None = 10.0, **params: object
) -> PlannedFault:
    return PlannedFault(
        index=0,
        kind=kind,
        target=str(list(ids)),
        ids=ids,
        start_s=0.0,
        end_s=end,
        params=params,
        fractions=PowerFractions(0, 0, 0),
    )


def test_partition_cuts_both_ways() -> None:
    specs = dict(node_specs(planned("partition", (1, 3)), 5))
    assert specs == {
        1: {"kind": "partition", "peers": [0, 2, 4], "duration_s": 40.0},
        3: {"kind": "partition", "peers": [0, 2, 4], "duration_s": 40.0},
        0: {"kind": "partition", "peers": [1, 3], "duration_s": 40.0},
        2: {"kind": "partition", "peers": [1, 3], "duration_s": 40.0},
        4: {"kind": "partition", "peers": [1, 3], "duration_s": 40.0},
    }
    delay = node_specs(planned("delay", (2,), None, delay_ms=50, jitter_ms=5), 5)
    assert delay == [(2, {"kind": "delay", "delay_ms": 50.0, "jitter_ms": 5.0})]
    loss = node_specs(planned("loss", (0, 4), None, rate=0.3), 5)
    assert loss == [(0, {"kind": "loss", "rate": 0.3}), (4, {"kind": "loss", "rate": 0.3})]


def test_collect_artifacts_copies_results_but_not_secrets_or_chain_data(tmp_path: Path) -> None:
    directory = tmp_path / "r"
    fake_state(directory)
    for relative, text in {
        "logs/node-0.log": "log",
        "load/summary.json": "{}",
        "net/genesis.json": "{}",
        "net/node-0.yaml": "cfg",
        "net/admin-token": "secret",
        "net/data/node-0/chain.sqlite": "chain",
        "prometheus/prometheus.yml": "global: {}",
        "prometheus/targets/validators.json": "[]",
        "prometheus/data/wal/0": "tsdb",
    }.items():
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (directory / relative).write_text(text)
    dest = tmp_path / "artifacts"
    LocalPlatform.attach(directory).collect_artifacts(dest)
    copied = sorted(str(path.relative_to(dest)) for path in dest.rglob("*") if path.is_file())
    assert copied == [
        "load/summary.json",
        "logs/node-0.log",
        "net/genesis.json",
        "net/node-0.yaml",
        "prometheus/prometheus.yml",
        "prometheus/targets/validators.json",
        STATE_FILE,
    ]


# ----------------------------------------------------------------------------- load


def test_loadgen_environment_follows_the_plan(tmp_path: Path) -> None:
    state = fake_state(tmp_path / "r")
    env = local_loadgen_environment(state, smoke_plan().load)
    assert env["AITBC_TARGETS"] == ",".join(v.grpc for v in state.validators)
    assert env["AITBC_TPS"] == "300" and env["AITBC_BATCH_SIZE"] == "50"
    assert env["AITBC_ACCOUNTS"] == "64" and env["AITBC_TX_SIZE"] == "200"
    assert env["AITBC_SHAPE"] == "constant" and json.loads(env["AITBC_SHAPE_PARAMS"]) == {}
    assert env["AITBC_PROBE_INTERVAL_S"] == "1"
    assert env["AITBC_SUMMARY"].endswith("load/summary.json")
    assert env["AITBC_LOADGEN_METRICS_PORT"] == "9646" and env["AITBC_RUN_ID"] == "r"
    assert "AITBC_ENTRY_VALIDATORS" not in env  # every validator takes transactions
    entries = local_loadgen_environment(state, smoke_plan("load.entry_validators=2").load)
    assert entries["AITBC_ENTRY_VALIDATORS"] == "2"
    stepped = smoke_plan(
        "load.shape=step", "load.steps=[{tps: 10, duration: 20s}, {tps: 20, duration: 40s}]"
    )
    steps = json.loads(local_loadgen_environment(state, stepped.load)["AITBC_SHAPE_PARAMS"])
    assert steps == {
        "steps": [{"tps": 10.0, "duration_s": 20.0}, {"tps": 20.0, "duration_s": 40.0}]
    }
    quiet = replace_load(smoke_plan("load.probe.enabled=false"), tps=42.0)
    env = local_loadgen_environment(state, quiet.load)
    assert env["AITBC_PROBE_INTERVAL_S"] == "0" and env["AITBC_TPS"] == "42"


# ----------------------------------------------------------------------------- prometheus


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian prometheus) missing")
def test_prometheus_config_is_valid_for_promtool(tmp_path: Path) -> None:
    layout = PrometheusLayout(tmp_path / "prometheus")
    write_config(layout, run_id="r1", validator_job=VALIDATOR_JOB, loadgen_job=LOADGEN_JOB)
    write_targets(
        layout.validators_file,
        [ScrapeTarget("127.0.0.1:9000", {"validator": "0", "job": VALIDATOR_JOB})],
    )
    text = layout.config.read_text()
    assert "scrape_interval: 1s" in text and "evaluation_interval: 1s" in text
    assert "job_name: aitbc-validators" in text and "job_name: aitbc-loadgen" in text
    checked = subprocess.run(
        ["promtool", "check", "config", str(layout.config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    targets = json.loads(layout.validators_file.read_text())
    assert targets == [
        {"targets": ["127.0.0.1:9000"], "labels": {"validator": "0", "job": "aitbc-validators"}}
    ]
    assert json.loads(layout.loadgen_file.read_text()) == []
