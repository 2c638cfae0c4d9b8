"""Locust for real: ``python -m locust -f loadgen/locustfile.py --headless`` as a subprocess
against the node double on 127.0.0.1 (two servers over one chain)."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aitbc_node.genesis import Genesis
from loadgen_node_double import NodeDoubleCluster
from prometheus_client.parser import text_string_to_metric_families

from loadgen.accounts import split_accounts
from loadgen.latency_file import read_latency_samples, samples_path_for
from loadgen.metrics import METRIC_NAMES
from loadgen.probe import read_probe_log
from loadgen.quantiles import exact_latency
from loadgen.summary import read_summary

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO / "loadgen" / "locustfile.py"
PROBE_ACCOUNTS = 1

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LocustRun:
    process: subprocess.Popen[bytes]
    csv_prefix: Path
    log_path: Path

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def stats(self) -> dict[str, dict[str, str]]:
        with open(f"{self.csv_prefix}_stats.csv", newline="") as handle:
            return {row["Name"]: row for row in csv.DictReader(handle)}

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


StartLocust = Callable[..., LocustRun]


@pytest.fixture
def start_locust(tmp_path: Path) -> Iterator[StartLocust]:
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str], users: int, run_time: str, *extra: str) -> LocustRun:
        csv_prefix = tmp_path / f"locust{len(started)}"
        log_path = tmp_path / f"locust{len(started)}.log"
        command = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "-u", str(users), "-r", str(users), "--run-time", run_time,
            "--csv", str(csv_prefix), "--only-summary", "--stop-timeout", "2", *extra,
        ]  # fmt: skip
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                cwd=tmp_path,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        return LocustRun(process, csv_prefix, log_path)

    yield start
    for process in started:  # by pid, whatever happened
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def _wait_for_metrics(port: int, run: LocustRun, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if run.process.poll() is not None:
            pytest.fail(f"locust exited early ({run.process.returncode}):\n{run.output()}")
        try:
            _scrape(port)
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    pytest.fail(f"no metrics on port {port} within {deadline_s} s:\n{run.output()}")


def test_locust_offers_the_rate_probes_and_serves_metrics(
    start_locust: StartLocust,
    node_cluster: NodeDoubleCluster,
    genesis_path: Path,
    genesis: Genesis,
    tmp_path: Path,
) -> None:
    chain = node_cluster.chain
    chain.exhausted_calls = 2  # two RESOURCE_EXHAUSTED answers: back-off and resend
    port = _free_port()
    probe_log = tmp_path / "probe.jsonl"
    env = {
        "AITBC_TARGETS": ",".join(node_cluster.targets),
        "AITBC_GENESIS": str(genesis_path),
        "AITBC_TPS": "400",
        "AITBC_BATCH_SIZE": "20",
        "AITBC_TX_SIZE": "200",
        "AITBC_PROBE_INTERVAL_S": "0.5",
        "AITBC_PROBE_LOG": str(probe_log),
        "AITBC_LOADGEN_METRICS_PORT": str(port),
        "AITBC_RUN_ID": "locust-test",
        "AITBC_SUMMARY": str(tmp_path / "summary.json"),
    }
    run = start_locust(env, 8, "8s", "--exit-code-on-error", "0")
    _wait_for_metrics(port, run, deadline_s=20)
    time.sleep(5.5)
    metrics = _scrape(port)
    assert run.wait(timeout=40) == 0, run.output()

    # The metrics endpoint served every loadgen metric, and its books balance.
    for name in METRIC_NAMES:
        assert any(key.startswith(name) for key in metrics), name
    offered = metrics["aitbc_loadgen_offered_txs_total"]
    sent = metrics["aitbc_loadgen_sent_txs_total"]
    acked = metrics["aitbc_loadgen_acked_txs_total"]
    rejected = {
        key: value
        for key, value in metrics.items()
        if key.startswith("aitbc_loadgen_rejected_txs_total")
    }
    assert sent == acked + sum(rejected.values())
    assert rejected == {"aitbc_loadgen_rejected_txs_total{reason=rpc_resource_exhausted}": 40}
    assert metrics["aitbc_loadgen_backoffs_total"] == 2
    assert metrics["aitbc_loadgen_resent_txs_total"] == 40
    assert offered >= 1500
    assert acked >= 0.85 * offered, metrics
    assert metrics["aitbc_loadgen_target_tps"] == 400
    assert metrics["aitbc_loadgen_e2e_latency_seconds_count"] >= 5

    # The final summary: the same books, closed when the test stopped.
    summary = read_summary(tmp_path / "summary.json")
    totals = summary.totals
    assert summary.run_id == "locust-test" and summary.settings["tps"] == "400"
    assert totals.sent == totals.acked + sum(totals.rejected.values())
    assert totals.rejected == {"rpc_resource_exhausted": 40}
    assert totals.resent == 40 and totals.backoffs == 2
    unaccounted = totals.offered - (totals.sent - totals.resent + totals.missed)
    assert 0 <= unaccounted <= 7 * 20  # at most one batch in flight per load user at the stop
    probe_address = genesis.accounts[-1].address_bytes
    with chain.lock:
        load_at_node = sum(1 for sender, _ in chain.nonce_owner if sender != probe_address)
    assert totals.acked <= load_at_node <= totals.acked + 7 * 20
    assert totals.probes.get("committed", 0) >= 8

    # Achieved rate at the validators (steady window) within 15 % of the offered 400 tx/s.
    with chain.lock:
        accepted_at = list(chain.accepted_at)
        by_target = dict(chain.accepted_by_target)
        rejected_at_node = dict(chain.rejected)
    first = accepted_at[0]
    in_window = sum(1 for moment in accepted_at if first + 1.0 <= moment < first + 6.0)
    assert in_window / 5.0 == pytest.approx(400, rel=0.15)
    assert rejected_at_node == {}  # no nonce ever reused, no bad signature, no duplicate
    load_share = [count for target, count in by_target.items()]
    assert len(load_share) == 2 and min(load_share) >= 0.35 * sum(load_share)

    # Every transaction has the requested wire size (the double decoded them all).
    assert chain.accepted_total() >= 2500

    # Probes were answered through the commit stream, logged and reported to Locust.
    records = read_probe_log(probe_log)
    committed = [record for record in records if record.outcome == "committed"]
    assert len(committed) >= 8
    assert len(committed) == len(records), [r for r in records if r.outcome != "committed"]
    assert all(r.latency_s is not None and 0 < r.latency_s < 2 for r in committed)
    assert all(r.run_id == "locust-test" and r.height for r in committed)
    assert [r.nonce for r in committed] == list(range(len(committed)))
    stats = run.stats()
    assert int(stats["probe"]["Request Count"]) >= 8
    assert stats["probe"]["Failure Count"] == "0"
    assert stats["SubmitTransactions"]["Failure Count"] == "2"
    assert int(stats["SubmitTransactions"]["Request Count"]) >= 120


def test_locust_worker_share_and_step_shape(
    start_locust: StartLocust,
    node_cluster: NodeDoubleCluster,
    genesis_path: Path,
    genesis: Genesis,
    tmp_path: Path,
) -> None:
    steps = {"steps": [{"tps": 200, "duration_s": 2}, {"tps": 600, "duration_s": 2}]}
    steps["steps"].append({"tps": 0, "duration_s": 60})
    env = {
        "AITBC_TARGETS": ",".join(node_cluster.targets),
        "AITBC_GENESIS": str(genesis_path),
        "AITBC_BATCH_SIZE": "20",
        "AITBC_SHAPE": "step",
        "AITBC_SHAPE_PARAMS": json.dumps(steps),
        "AITBC_WORKERS": "2",
        "AITBC_WORKER_INDEX": "1",
        "AITBC_ACCOUNTS": "10",
        "AITBC_PROBE_INTERVAL_S": "0",
        "AITBC_LOADGEN_METRICS_PORT": "0",
        "AITBC_SUMMARY": str(tmp_path / "summary.json"),
    }
    run = start_locust(env, 5, "6s")
    assert run.wait(timeout=40) == 0, run.output()
    chain = node_cluster.chain
    with chain.lock:
        accepted_at = sorted(chain.accepted_at)
        senders = {sender for sender, _nonce in chain.nonce_owner}
    # This worker's half of (2 s x 200 + 2 s x 600) = 800 transactions, then nothing; whatever
    # a busy machine kept it from sending is counted as missed, never silently dropped.
    totals = read_summary(tmp_path / "summary.json").totals
    assert totals.offered == 800
    assert totals.sent - totals.resent + totals.missed == 800
    assert totals.acked == len(accepted_at) == totals.sent
    assert totals.missed <= 0.5 * 800, totals
    if totals.missed == 0:  # the machine kept up: the rate followed the steps
        first = accepted_at[0]
        slow = sum(1 for moment in accepted_at if first + 0.5 <= moment < first + 1.5)
        fast = sum(1 for moment in accepted_at if first + 2.5 <= moment < first + 3.5)
        assert slow == pytest.approx(100, rel=0.25)
        assert fast == pytest.approx(300, rel=0.2)
    mine = {genesis.accounts[i].address_bytes for i in split_accounts(range(10), 1, 2)}
    assert senders <= mine and len(senders) == 5  # this worker's accounts, all in use
    stats = run.stats()
    assert "probe" not in stats  # AITBC_PROBE_INTERVAL_S=0: no probe user
    assert stats["SubmitTransactions"]["Failure Count"] == "0"


def test_locust_records_the_latency_of_every_acknowledged_transaction(
    start_locust: StartLocust, node_cluster: NodeDoubleCluster, genesis_path: Path, tmp_path: Path
) -> None:
    chain = node_cluster.chain
    chain.lose_every = 50  # accepted, never committed: acked but uncommitted
    summary_path = tmp_path / "load" / "summary.json"
    env = {
        "AITBC_TARGETS": ",".join(node_cluster.targets),
        "AITBC_GENESIS": str(genesis_path),
        "AITBC_TPS": "300",
        "AITBC_BATCH_SIZE": "20",
        "AITBC_PROBE_INTERVAL_S": "0",
        "AITBC_PROBE_TIMEOUT_S": "3",
        "AITBC_LOADGEN_METRICS_PORT": "0",
        "AITBC_RUN_ID": "exact-latency",
        "AITBC_SUMMARY": str(summary_path),
    }
    run = start_locust(env, 4, "6s")
    assert run.wait(timeout=60) == 0, run.output()
    summary = read_summary(summary_path)
    latency = summary.latency
    assert latency is not None, run.output()
    # Every acknowledged transaction is accounted for: a sample, or acked but uncommitted.
    assert latency.acked == summary.totals.acked > 1000
    assert latency.untracked == 0 and latency.pending == 0
    assert latency.committed + latency.uncommitted == latency.acked
    with chain.lock:
        lost = len(chain.lost_ids)
    in_flight_at_stop = 4 * 20
    assert max(1, lost - in_flight_at_stop) <= latency.uncommitted <= lost
    # The samples file beside the summary holds one sample per committed transaction.
    path = samples_path_for(summary_path)
    assert latency.samples_file == path.name
    samples = read_latency_samples(path)
    assert len(samples) == latency.committed
    assert samples.header.run_id == "exact-latency"
    assert all(0 < value < 2.0 for value in samples.latency_s)  # blocks every 0.1 s
    started = summary.written_at - 30
    assert all(started < moment <= summary.written_at for moment in samples.submitted_at)
    exact = exact_latency([path])
    p50, p99 = exact.quantile(0.5), exact.quantile(0.99)
    assert p50 is not None and p99 is not None and exact.max_s is not None
    assert 0 < p50 <= p99 <= exact.max_s < 2.0
    check = summary.self_check
    assert check is not None and check.offered == summary.totals.offered
    assert check.saturated == check.verdict.startswith("load generator saturated")


def test_locust_says_when_the_load_generator_is_saturated(
    start_locust: StartLocust, node_cluster: NodeDoubleCluster, genesis_path: Path, tmp_path: Path
) -> None:
    env = {
        "AITBC_TARGETS": ",".join(node_cluster.targets),
        "AITBC_GENESIS": str(genesis_path),
        "AITBC_TPS": "20000",  # one transaction per call: far beyond two users on this machine
        "AITBC_BATCH_SIZE": "1",
        "AITBC_PROBE_INTERVAL_S": "0",
        "AITBC_LOADGEN_METRICS_PORT": "0",
        "AITBC_SUMMARY": str(tmp_path / "summary.json"),
    }
    # On a busy machine the users may still be signing ahead when the run time ends: the
    # schedule then counts from the test's start, so the check holds either way.
    run = start_locust(env, 2, "4s")
    assert run.wait(timeout=90) == 0, run.output()
    summary = read_summary(tmp_path / "summary.json")
    check = summary.self_check
    assert check is not None
    assert check.offered == summary.totals.offered > 0, check
    assert check.saturated, check
    assert check.verdict.startswith("load generator saturated: behind schedule: sent ")
    assert check.shortfall_ratio is not None and check.shortfall_ratio > 0.05
    assert check.cpu_mean is not None and check.measured_s > 1


def test_locust_refuses_bad_settings_before_sending(
    start_locust: StartLocust, genesis_path: Path
) -> None:
    env = {
        "AITBC_TARGETS": "127.0.0.1:9",
        "AITBC_GENESIS": str(genesis_path),
        "AITBC_SHAPE": "ramp",
        "AITBC_SHAPE_PARAMS": '{"from_tps": 1}',
        "AITBC_LOADGEN_METRICS_PORT": "0",
    }
    run = start_locust(env, 1, "5s")
    assert run.wait(timeout=30) == 2
    output = run.output()
    assert "configuration error: AITBC_SHAPE_PARAMS=" in output
    assert "duration_s" in output


def test_locust_refuses_a_taken_metrics_port(start_locust: StartLocust, genesis_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            "AITBC_TARGETS": "127.0.0.1:9",
            "AITBC_GENESIS": str(genesis_path),
            "AITBC_LOADGEN_METRICS_PORT": str(port),
        }
        run = start_locust(env, 1, "5s")
        assert run.wait(timeout=30) == 2
    assert f"configuration error: AITBC_LOADGEN_METRICS_PORT={port}" in run.output()
