"""Loadgen metrics (own registry, served over HTTP) and the probe's bookkeeping and log."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from loadgen.errors import LoadgenError
from loadgen.metrics import E2E_LATENCY_BUCKETS, METRIC_NAMES, LoadgenMetrics
from loadgen.probe import PendingProbe, ProbeLog, ProbeTracker, read_probe_log


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_metrics_live_in_their_own_registry() -> None:
    first, second = LoadgenMetrics(), LoadgenMetrics()  # no clash: no global registry
    first.offered.inc(10)
    assert second.registry.get_sample_value("aitbc_loadgen_offered_txs_total") == 0
    assert first.registry.get_sample_value("aitbc_loadgen_offered_txs_total") == 10


def test_latency_buckets_span_5ms_to_60s() -> None:
    assert E2E_LATENCY_BUCKETS[0] == 0.005
    assert E2E_LATENCY_BUCKETS[-1] == 60.0
    assert list(E2E_LATENCY_BUCKETS) == sorted(E2E_LATENCY_BUCKETS)
    metrics = LoadgenMetrics()
    metrics.e2e_latency.observe(0.004)
    metrics.e2e_latency.observe(59)
    get = metrics.registry.get_sample_value
    assert get("aitbc_loadgen_e2e_latency_seconds_bucket", {"le": "0.005"}) == 1
    assert get("aitbc_loadgen_e2e_latency_seconds_bucket", {"le": "45.0"}) == 1
    assert get("aitbc_loadgen_e2e_latency_seconds_bucket", {"le": "60.0"}) == 2


def test_metrics_endpoint_serves_every_metric() -> None:
    metrics = LoadgenMetrics(CollectorRegistry())
    metrics.describe_run({"run_id": "r1"})
    metrics.record_rejections({"stale_nonce": 2, "rpc_unavailable": 0})
    metrics.probes.labels(outcome="committed").inc()
    port = _free_port()
    server = metrics.serve(port, address="127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
    for name in METRIC_NAMES:
        assert name in text, name
    assert 'aitbc_loadgen_rejected_txs_total{reason="stale_nonce"} 2.0' in text
    assert "rpc_unavailable" not in text
    assert 'aitbc_loadgen_info{run_id="r1"} 1.0' in text


def test_a_taken_port_names_the_variable() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(LoadgenError, match=rf"^AITBC_LOADGEN_METRICS_PORT={port}"):
            LoadgenMetrics().serve(port, address="127.0.0.1")


def _probe(tx: bytes, at: float) -> PendingProbe:
    return PendingProbe(tx_id=tx, target="v0", nonce=0, submitted_at=1e9 + at, submitted_mono=at)


def test_probe_tracker_resolves_commits_and_timeouts() -> None:
    tracker = ProbeTracker("run", timeout_s=30)
    tracker.submitted(_probe(b"a" * 32, 10.0))
    tracker.submitted(_probe(b"b" * 32, 11.0))
    assert tracker.committed([b"x" * 32], 5, 1e9 + 10.2, 10.2) == []
    [record] = tracker.committed([b"x" * 32, b"a" * 32], 6, 1e9 + 10.5, 10.5)
    assert record.outcome == "committed"
    assert record.height == 6
    assert record.latency_s == pytest.approx(0.5)
    assert record.tx_id == (b"a" * 32).hex()
    assert tracker.expire(41.0) == []  # exactly 30 s is not yet late
    [late] = tracker.expire(41.01)
    assert late.outcome == "timeout" and late.committed_at is None
    assert tracker.pending_count == 0
    failed = tracker.failed(_probe(b"c" * 32, 1.0), "rejected", "stale_nonce")
    assert failed.outcome == "rejected" and failed.reason == "stale_nonce"


def test_probe_log_is_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "probe.jsonl"
    log = ProbeLog(path)
    tracker = ProbeTracker("run-7")
    tracker.submitted(_probe(b"a" * 32, 1.0))
    record = tracker.committed([b"a" * 32], 3, 1e9 + 2.0, 2.0)[0]
    log.write(record)
    log.write(tracker.failed(_probe(b"b" * 32, 1.0), "rpc_error", "UNAVAILABLE: down"))
    log.close()
    records = read_probe_log(path)
    assert records[0] == record
    assert records[0].run_id == "run-7"
    assert records[1].outcome == "rpc_error"
    with pytest.raises(LoadgenError, match="closed"):
        log.write(record)


def test_probe_log_in_an_unwritable_place_names_the_variable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LoadgenError, match=r"^AITBC_PROBE_LOG="):
        ProbeLog(blocker / "probe.jsonl")


def test_totals_and_the_summary_file(tmp_path: Path) -> None:
    from loadgen.summary import LoadgenSummary, read_summary, write_summary

    metrics = LoadgenMetrics()
    metrics.offered.inc(100)
    metrics.sent.inc(90)
    metrics.acked.inc(80)
    metrics.record_rejections({"rpc_unavailable": 10})
    metrics.probes.labels(outcome="timeout").inc()
    metrics.e2e_latency.observe(0.25)
    totals = metrics.totals()
    assert (totals.offered, totals.sent, totals.acked) == (100, 90, 80)
    assert totals.rejected == {"rpc_unavailable": 10}
    assert totals.probes == {"timeout": 1}
    assert (totals.e2e_latency_count, totals.e2e_latency_sum_s) == (1, 0.25)
    summary = LoadgenSummary(run_id="r", written_at=1.0, settings={"tps": "5"}, totals=totals)
    path = tmp_path / "out" / "summary.json"
    write_summary(path, summary)
    assert read_summary(path) == summary
    with pytest.raises(LoadgenError, match="not a summary"):
        path.write_text("{}")
        read_summary(path)
