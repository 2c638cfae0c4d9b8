"""The local platform end to end, stage by stage through the real CLI: ``up devnet-smoke``,
``status --json``, a minority partition seen in Prometheus' ``aitbc_fault_active``, a load
burst and a short Locust load that commit, kill and restart of a validator that catches up,
and ``down`` leaving no process of the run alive. Real validators, real Prometheus, real
Locust; the tests of this module share one testnet and run in file order."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from orchestrator.measure.promql import VALIDATOR_JOB
from orchestrator.platforms.local.processes import process_alive
from orchestrator.platforms.local.state import ProcessRecord, RunState
from orchestrator.platforms.run_dirs import STATE_FILE

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1200)]

RUN_ID = "e2e-smoke"
BOUND_S = 180.0
"""The bound on every wait here: conditions are met in seconds on an idle machine; a busy one
(two cores, other test suites) may take many times longer, and that must not fail a test."""
SEEN: dict[tuple[int, int], ProcessRecord] = {}
"""Every process record the run showed at any time (pid, start ticks) -> record."""


def remember(root: Path) -> RunState:
    state = RunState.model_validate_json((root / RUN_ID / STATE_FILE).read_text())
    records = [v.process for v in state.validators]
    records += [state.prometheus.process, state.load.process]
    for record in records:
        if record is not None:
            SEEN[(record.pid, record.start_ticks)] = record
    return state


def status(cli: Any, root: Path) -> dict[str, Any]:
    result = cli.run("status", "--run-dir", str(root), "--run-id", RUN_ID, "--json")
    assert result.code == 0, result.output
    remember(root)
    document = result.json()
    assert isinstance(document, dict)
    return document


def heights(cli: Any, root: Path) -> list[int | None]:
    return [v.get("height") for v in status(cli, root)["validators"]]


def prom_query(url: str, promql: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=60) as reply:
        document = json.loads(reply.read())
    assert document["status"] == "success", document
    result = document["data"]["result"]
    assert isinstance(result, list)
    return result


def prom_value(url: str, promql: str) -> float | None:
    result = prom_query(url, promql)
    return float(result[0]["value"][1]) if result else None


def wait_for(condition: Any, timeout_s: float = BOUND_S, interval_s: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval_s)


@pytest.fixture(scope="module")
def smoke(cli: Any, module_run_root: Path) -> dict[str, Any]:
    """``up devnet-smoke`` once for the module: the run root, its output, Prometheus' URL."""
    root = module_run_root
    result = cli.run("up", "devnet-smoke", "--run-dir", str(root), "--run-id", RUN_ID)
    assert result.code == 0, result.output
    state = remember(root)
    return {
        "root": root,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "prometheus": state.prometheus.url,
        "state": state,
    }


def test_up_reports_the_run_and_status_shows_rising_heights(
    cli: Any, smoke: dict[str, Any]
) -> None:
    root, state = smoke["root"], smoke["state"]
    out = smoke["stdout"]
    assert f"run {RUN_ID}: 4 validators ready" in out
    assert str(root / RUN_ID) in out and smoke["prometheus"] in out
    for validator in state.validators:
        assert f"grpc {validator.grpc}" in out and f"ops {validator.ops}" in out
    assert "ready after" in smoke["stderr"]  # the progress lines

    first = status(cli, root)
    assert first["run_id"] == RUN_ID and first["platform"] == "local" and not first["stopped"]
    assert len(first["validators"]) == 4
    assert all(v["running"] and v["ready"] and v["mode"] == "balanced" for v in first["validators"])
    assert first["prometheus"]["ready"] is True
    with urllib.request.urlopen(f"{first['prometheus']['url']}/-/ready", timeout=60) as reply:
        assert reply.status == 200
    before = [v["height"] for v in first["validators"]]
    later = wait_for(
        lambda: (h := heights(cli, root)) and all(a > b for a, b in zip(h, before, strict=True))
    )
    assert later, f"heights did not rise from {before}"
    # Prometheus scrapes every validator, labelled by index, under the validator job.
    scraped = prom_query(smoke["prometheus"], f'up{{job="{VALIDATOR_JOB}"}} == 1')  # at once
    assert sorted(int(s["metric"]["validator"]) for s in scraped) == [0, 1, 2, 3]


def test_partition_is_visible_in_prometheus(cli: Any, smoke: dict[str, Any]) -> None:
    root, url = smoke["root"], smoke["prometheus"]
    result = cli.run(
        "fault", "partition", "--target", "minority-third", "--duration", "10s",
        "--run-dir", str(root), "--run-id", RUN_ID,
    )  # fmt: skip
    assert result.code == 0, result.output
    assert "applied: partition minority-third -> ids [" in result.stdout
    assert "cleared: partition" in result.stdout
    # one partition fault on every validator at once (the cut one drops 3 peers, the others
    # drop it), seen in the 10 s it lasted; afterwards none
    active = 'sum(aitbc_fault_active{kind="partition"})'
    assert wait_for(lambda: prom_value(url, f"max_over_time(({active})[5m:1s])") == 4), prom_query(
        url, 'max_over_time(aitbc_fault_active{kind="partition"}[5m])'
    )
    assert wait_for(lambda: prom_value(url, active) == 0)
    assert status(cli, root)["faults"] == []


def test_ctrl_c_during_a_fault_clears_it(cli: Any, smoke: dict[str, Any]) -> None:
    root = smoke["root"]
    argv = cli.argv(
        "fault", "delay", "--target", "half", "--delay-ms", "20", "--duration", "10m",
        "--run-dir", str(root), "--run-id", RUN_ID,
    )  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: len(status(cli, root)["faults"]) == 2)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert "cleared: delay" in stdout and "Traceback" not in stderr
    assert status(cli, root)["faults"] == []


def test_a_burst_commits(cli: Any, smoke: dict[str, Any]) -> None:
    result = cli.run(
        "load", "--burst", "400", "--json", "--run-dir", str(smoke["root"]), "--run-id", RUN_ID
    )
    assert result.code == 0, result.output
    outcome = result.json()
    assert outcome["accepted"] == 400 and outcome["rejected"] == {}
    assert outcome["committed"] == 400 and outcome["missing"] == 0
    assert len(outcome["per_target"]) == 4  # routed by account over every validator


def test_a_locust_load_commits_what_it_acknowledged(cli: Any, smoke: dict[str, Any]) -> None:
    root = smoke["root"]
    result = cli.run(
        "load", "--tps", "150", "--duration", "8s", "--json",
        "--run-dir", str(root), "--run-id", RUN_ID,
    )  # fmt: skip
    assert result.code == 0, result.output
    totals = result.json()["totals"]
    assert totals["acked"] > 0.8 * totals["offered"] and totals["rejected"] == {}, totals
    assert totals["probes"].get("committed", 0) >= 3, totals
    load_dir = root / RUN_ID / "load"
    for name in ("locust_stats.csv", "locust.json", "summary.json", "probe.jsonl"):
        assert (load_dir / name).is_file(), name
    # Prometheus scraped the load generator through its file-SD target (gone stale since).
    acked = prom_value(
        smoke["prometheus"],
        'max(max_over_time(aitbc_loadgen_acked_txs_total{job="aitbc-loadgen"}[2m]))',
    )
    assert acked is not None and acked > 0
    logs = "".join((root / RUN_ID / "logs" / f"node-{i}.log").read_text() for i in range(4))
    assert "skipped" not in logs  # every account's nonces arrived in order


def test_kill_and_restart_a_validator_that_catches_up(cli: Any, smoke: dict[str, Any]) -> None:
    root = smoke["root"]
    args = ("--run-dir", str(root), "--run-id", RUN_ID)
    before = remember(root)
    victim = before.validators[2].process
    assert victim is not None
    result = cli.run("fault", "kill", "--target", "ids 2", *args)
    assert result.code == 0, result.output
    assert not process_alive(victim)
    down = status(cli, root)
    assert down["killed"] == [2] and down["validators"][2]["pid"] is None
    others = [v["height"] for v in down["validators"] if v["index"] != 2]
    assert wait_for(  # the other three keep committing
        lambda: min(h for i, h in enumerate(heights(cli, root)) if i != 2) > max(others)
    )
    result = cli.run("fault", "restart", *args)
    assert result.code == 0, result.output
    after = remember(root)
    assert after.validators[2].process is not None
    assert after.validators[2].process.pid != victim.pid and after.validators[2].restarts == 1

    def caught_up() -> bool:
        now = [h if h is not None else -1 for h in heights(cli, root)]
        return now[2] >= max(now) - 2

    assert wait_for(caught_up), heights(cli, root)


def test_down_leaves_no_process_of_the_run_alive(cli: Any, smoke: dict[str, Any]) -> None:
    root = smoke["root"]
    remember(root)
    assert len(SEEN) >= 6  # 4 validators, Prometheus, Locust, the restarted validator
    result = cli.run("down", "--json", "--run-dir", str(root), "--run-id", RUN_ID)
    assert result.code == 0, result.output
    stopped = result.json()["stopped"]
    assert {item["name"] for item in stopped} == {
        "validator-0", "validator-1", "validator-2", "validator-3", "prometheus",
    }  # fmt: skip
    alive = [
        f"pid {record.pid}: {record.argv[:3]}" for record in SEEN.values() if process_alive(record)
    ]
    assert alive == []
    history = remember(root).history  # every process the run ever started
    assert {(p.process.pid, p.process.start_ticks) for p in history} >= set(SEEN)
    assert cli.alive_processes(root) == []
    assert (root / RUN_ID / "net" / "genesis.json").is_file()  # the run directory is kept
    assert (root / RUN_ID / "logs" / "node-0.log").is_file()
    assert status(cli, root)["stopped"] is True
    again = cli.run("down", "--run-dir", str(root), "--run-id", RUN_ID)
    assert again.code == 0 and "had nothing running" in again.stdout


# ----------------------------------------------------------------------------- refusals


def test_up_without_prometheus_exits_3_with_the_install_hint(
    cli: Any, run_root: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = cli.run(
        "up", "devnet-smoke", "--run-dir", str(run_root), "--run-id", "no-prom",
        env={"PATH": str(empty), "HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.code == 3, result.output
    assert "prometheus binary is not on PATH" in result.stderr
    assert "install it: `make install` (Debian package prometheus) or apt-get install" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not (run_root / "no-prom" / STATE_FILE).exists()  # nothing was started


def test_up_refuses_a_taken_base_port(cli: Any, run_root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli.run(
            "up", "devnet-smoke", "--run-dir", str(run_root), "--run-id", "busy",
            "--base-port", str(port),
        )  # fmt: skip
    assert result.code == 3, result.output
    assert f"--base-port {port}: port {port} on 127.0.0.1 is taken" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (run_root / "busy" / STATE_FILE).exists()
