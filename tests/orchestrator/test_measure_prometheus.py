"""The measurer, the PromQL and the Prometheus client against a real Prometheus server holding
a synthetic run.

The run is written as OpenMetrics, turned into a TSDB block by ``promtool tsdb
create-blocks-from openmetrics`` and served by a real ``prometheus`` (killed by pid after the
module). Every expected number below follows from the synthetic series, so the PromQL (max not
sum, increase windows, histogram_quantile over sum by le, restarts, fault windows) is checked
against Prometheus' own evaluation, not a mock.

The synthetic run (t = seconds after T0; load starts at t=0):
* 4 validators, 2 blocks/s of 150 transactions each (300 tx/s), heights from 1 at t=0;
* validator 1 is partitioned over [20, 30): its height freezes, then is within 2 blocks at
  t=32;
* validator 2 is killed at 30 and restarted at 40 (no samples in between; counters restart
  from 0, a new process start time); it is back within 2 blocks at t=44;
* Prometheus runs with a 1.5 s lookback: a series without samples vanishes as a real scrape's
  staleness marker makes it (backfilled data has no staleness markers);
* validator 3 restarts unplanned at t=60 (new process start time, no gap);
* every validator reports aitbc_fault_active{kind="partition"} = 1 over [20, 30);
* finality: per second 294 transactions in (0.75, 1] s and 6 in (3, 5] s;
* the load generator offers 300 tx/s, 290 acknowledged; e2e latency: 1 probe/s in (1, 1.5] s;
* one slashing committed at t=50 (the evidence against validator 3 for epoch 1 is in blocks 101
  and 103: a replay); 2 timeouts at t=25 and t=26 on validator 0;
* validator 3 equivocates over [45, 55): 2 attack actions a second; validators 0-2 each refuse
  one stale message a second meanwhile; its attack counters miss the scrapes over [54, 60) (a
  busy attacker: the window's end is read at the next sample);
* the load generator's ``up`` is 0 after t=70 (it must not count as a validator down);
* every validator process uses 0.25 CPU cores (validator 2's counter restarts at 0) and holds
  100 + 10 * v MiB resident, validator 3 200 MiB at t=50.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from orchestrator.external import prometheus as prom_client
from orchestrator.measure import promql as pq
from orchestrator.measure.byzantine import ByzantineWindow, measure_byzantine
from orchestrator.measure.latency import ExactWindow, node_buckets
from orchestrator.measure.measurer import Measurer, RunTimes, observed_faults
from orchestrator.measure.safety import recovery_time
from orchestrator.report.model import ByzantineReport, ExactLatencyMs

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None,
    reason="prometheus/promtool not on PATH: `make install` (Debian package prometheus)",
)

START_BOUND_S = 180.0
"""A bound on Prometheus starting (seconds on an idle machine, more on a busy one)."""
T0 = (int(time.time()) // 3600 - 4) * 3600  # an hour boundary well in the past
END = 80
FINALITY_BUCKETS = (0.5, 0.75, 1.0, 3.0, 5.0, 10.0)
E2E_BUCKETS = (0.5, 1.0, 1.5, 2.0, 5.0)


@dataclass(frozen=True)
class FakeBlock:
    height: int
    tx_ids: tuple[bytes, ...]
    evidence: tuple[tuple[int, int], ...] = ()


def height(validator: int, t: int) -> int | None:
    """Committed height of ``validator`` at t (None: no sample, the process is down)."""
    normal = 1 + 2 * t
    if validator == 1 and 20 <= t < 33:
        return 1 + 2 * 20 if t < 30 else 1 + 2 * 20 + (t - 29) * 8
    if validator == 2:
        if 30 <= t < 40:
            return None
        if 40 <= t < 44:
            return 1 + 2 * 30 + (t - 39) * 5
    return normal


def openmetrics() -> str:
    lines: list[str] = []

    def family(name: str, kind: str) -> None:
        lines.append(f"# TYPE {name} {kind}")

    def sample(name: str, labels: dict[str, str], value: float, t: int) -> None:
        text = ",".join(f'{key}="{val}"' for key, val in labels.items())
        lines.append(f"{name}{{{text}}} {value} {T0 + t}")

    def validator_labels(v: int, **extra: str) -> dict[str, str]:
        return {"job": pq.VALIDATOR_JOB, "validator": str(v), **extra}

    family("aitbc_block_height", "gauge")
    for v in range(4):
        for t in range(END):
            h = height(v, t)
            if h is not None:
                sample("aitbc_block_height", validator_labels(v), h, t)
    family("aitbc_txs_committed_total", "counter")
    family_blocks = []
    for v in range(4):
        for t in range(END):
            h = height(v, t)
            if h is None:
                continue
            base = 0 if not (v == 2 and t >= 40) else 1 + 2 * 30  # counter restarts at 0
            sample("aitbc_txs_committed_total", validator_labels(v), 150 * (h - base), t)
            family_blocks.append((v, t, h - base))
    family("aitbc_blocks_committed_total", "counter")
    for v, t, blocks in family_blocks:
        sample("aitbc_blocks_committed_total", validator_labels(v), blocks, t)
    family("process_start_time_seconds", "gauge")
    for v in range(4):
        for t in range(END):
            if height(v, t) is None:
                continue
            started = T0 - 100.0
            if (v == 2 and t >= 40) or (v == 3 and t >= 60):
                started = T0 + (40.0 if v == 2 else 60.0)
            sample("process_start_time_seconds", validator_labels(v), started, t)
    family("process_cpu_seconds_total", "counter")
    family("process_resident_memory_bytes", "gauge")
    for v in range(4):
        for t in range(END):
            if height(v, t) is None:
                continue
            since = 40 if v == 2 and t >= 40 else 0
            sample("process_cpu_seconds_total", validator_labels(v), 0.25 * (t - since), t)
            rss = (200 if v == 3 and t == 50 else 100 + 10 * v) * 1024 * 1024
            sample("process_resident_memory_bytes", validator_labels(v), rss, t)
    family("up", "gauge")
    for v in range(4):
        for t in range(END):
            sample("up", validator_labels(v), 0 if height(v, t) is None else 1, t)
    for t in range(END):  # the load generator is gone after the load: not a validator down
        sample("up", {"job": pq.LOADGEN_JOB}, 1 if t < 70 else 0, t)
    family("aitbc_fault_active", "gauge")
    for v in range(4):
        for t in range(END):
            if height(v, t) is not None:
                active = 1 if 20 <= t < 30 else 0
                sample("aitbc_fault_active", validator_labels(v, kind="partition"), active, t)
    family("aitbc_slashing_events_total", "counter")
    family("aitbc_timeouts_total", "counter")
    family("aitbc_consensus_mode", "gauge")
    for v in range(4):
        for t in range(END):
            if height(v, t) is not None:
                sample("aitbc_slashing_events_total", validator_labels(v), int(t >= 50), t)
    for t in range(END):
        sample("aitbc_timeouts_total", validator_labels(0), min(2, max(0, t - 24)), t)
    for t in range(END):
        sample("aitbc_consensus_mode", validator_labels(0), 1, t)
    family("aitbc_tx_finality_seconds", "histogram")
    for t in range(END):
        fast, slow = 294 * (t + 1), 6 * (t + 1)
        for le in FINALITY_BUCKETS:
            count = (fast if le >= 1.0 else 0) + (slow if le >= 5.0 else 0)
            sample("aitbc_tx_finality_seconds_bucket", validator_labels(0, le=f"{le}"), count, t)
        sample("aitbc_tx_finality_seconds_bucket", validator_labels(0, le="+Inf"), fast + slow, t)
        sample("aitbc_tx_finality_seconds_count", validator_labels(0), fast + slow, t)
        sample("aitbc_tx_finality_seconds_sum", validator_labels(0), fast * 0.9 + slow * 4, t)
    loadgen = {"job": pq.LOADGEN_JOB}
    family("aitbc_loadgen_offered_txs_total", "counter")
    for t in range(70):
        sample("aitbc_loadgen_offered_txs_total", loadgen, 300 * t, t)
    family("aitbc_loadgen_acked_txs_total", "counter")
    for t in range(70):
        sample("aitbc_loadgen_acked_txs_total", loadgen, 290 * t, t)
    family("aitbc_loadgen_e2e_latency_seconds", "histogram")
    for t in range(70):
        for le in E2E_BUCKETS:
            count = t if le >= 1.5 else 0
            sample("aitbc_loadgen_e2e_latency_seconds_bucket", {**loadgen, "le": f"{le}"}, count, t)
        sample("aitbc_loadgen_e2e_latency_seconds_bucket", {**loadgen, "le": "+Inf"}, t, t)
        sample("aitbc_loadgen_e2e_latency_seconds_count", loadgen, t, t)
        sample("aitbc_loadgen_e2e_latency_seconds_sum", loadgen, 1.2 * t, t)
    family("aitbc_byzantine_actions_total", "counter")
    family("aitbc_byzantine_rejected_total", "counter")
    for v in range(4):
        for t in range(END):
            if height(v, t) is None:
                continue
            acted = 2 * min(10, max(0, t - 45)) if v == 3 else 0
            refused = min(10, max(0, t - 45)) if v != 3 else 0
            for behaviour, value in (("equivocate", acted), ("flood", 0)):
                if v == 3 and 54 <= t < 60:
                    continue  # missed scrapes
                labels = validator_labels(v, behaviour=behaviour)
                sample("aitbc_byzantine_actions_total", labels, value, t)
            for reason, value in (("stale_message", refused), ("bad_vote_signature", 0)):
                labels = validator_labels(v, reason=reason)
                sample("aitbc_byzantine_rejected_total", labels, value, t)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def blocks() -> list[FakeBlock]:
    top = 1 + 2 * END
    evidence = {101: ((3, 1),), 103: ((3, 1),)}
    return [
        FakeBlock(h, tuple(f"{h}-{i}".encode() for i in range(150)), evidence.get(h, ()))
        for h in range(1, top + 1)
    ]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("synthetic-prometheus")
    source = folder / "run.om"
    source.write_text(openmetrics())
    data = folder / "data"
    assert PROMTOOL is not None and PROMETHEUS is not None
    subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True,
        capture_output=True,
        timeout=START_BOUND_S,
    )
    config = folder / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\n")
    port = _free_port()
    log = (folder / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=100y",
            "--query.lookback-delta=1500ms",  # as if stale: no scrape markers in backfill
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with prom_client.PromQuery(url, retries=0, timeout_s=2) as prom:
            deadline = time.monotonic() + START_BOUND_S
            while not prom.ready():
                assert process.poll() is None, (folder / "prometheus.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "prometheus did not start within the bound"
                time.sleep(0.1)
        yield url
    finally:
        process.kill()
        process.wait()
        log.close()


@pytest.fixture
def prom(prometheus_url: str) -> Iterator[prom_client.PromQuery]:
    with prom_client.PromQuery(prometheus_url, retries=0, timeout_s=5) as client:
        yield client


TIMES = RunTimes(
    run_start=T0, load_start=T0, load_end=T0 + 70, run_end=T0 + 79, warmup_s=10, cooldown_s=5
)


def test_committed_tps_is_max_over_validators_not_sum(prom: prom_client.PromQuery) -> None:
    at = T0 + 65
    assert prom.scalar(pq.committed_tps(55), at) == pytest.approx(300, rel=1e-6)
    summed = prom.scalar(
        f"sum(rate(aitbc_txs_committed_total{{job='{pq.VALIDATOR_JOB}'}}[55s]))", at
    )
    assert summed is not None and summed > 900  # what `sum` would have claimed


def test_measurements_of_the_synthetic_run(prom: prom_client.PromQuery) -> None:
    result = Measurer(prom, TIMES, "local").measure(
        blocks=blocks(), load=None, probes=None, planned_restarts={2: 1}
    )
    m = result.measurements
    assert m.window_s == 55
    assert m.tps.mean == pytest.approx(300, rel=1e-6)
    assert m.tps.offered == pytest.approx(300, rel=1e-6)
    assert m.tps.acked == pytest.approx(290, rel=1e-6)
    assert m.tps.achieved_ratio == pytest.approx(1.0, rel=1e-6)
    assert m.tps.from_blocks == pytest.approx(300, rel=1e-6)
    assert m.tps.blocks_agree is True
    assert "transactions in blocks" in m.tps.cross_check
    # 98 % of transactions in (0.75, 1] s, 2 % in (3, 5] s: histogram_quantile interpolates.
    assert m.finality_ms.p50 is not None and 750 < m.finality_ms.p50 <= 1000
    assert m.finality_ms.p90 is not None and 750 < m.finality_ms.p90 <= 1000
    assert m.finality_ms.p99 is not None and 3000 < m.finality_ms.p99 <= 5000
    assert m.e2e_latency_ms.p99 is not None and 1000 < m.e2e_latency_ms.p99 <= 1500
    assert m.e2e_latency_ms.samples == 55
    assert m.block_interval_ms == pytest.approx(500, rel=1e-6)
    assert m.timeouts == 2
    assert m.mode == "balanced"
    assert m.slashing_events == 1
    assert m.restarts == 1  # validator 3; validator 2's restart was planned
    assert any("validator 3 restarted 1 time(s) unplanned" in note for note in m.notes)
    assert m.final_heights == {"0": 1 + 2 * 79, "1": 1 + 2 * 79, "2": 1 + 2 * 79, "3": 1 + 2 * 79}


def test_exact_latency_beside_the_node_histogram(prom: prom_client.PromQuery) -> None:
    buckets = dict(node_buckets(prom, 55, T0 + 65))
    assert buckets[1.0] == pytest.approx(294 * 55, rel=1e-6)  # validator 0's observations
    assert buckets[float("inf")] == pytest.approx(300 * 55, rel=1e-6)
    exact = ExactWindow(ExactLatencyMs(count=16_500, p50=900.0, p90=980.0, p99=4200.0), None)
    m = (
        Measurer(prom, TIMES, "local")
        .measure(blocks=None, load=None, probes=None, planned_restarts={}, exact=exact)
        .measurements
    )
    assert (m.e2e_latency_ms.p50, m.e2e_latency_ms.p99) == (900.0, 4200.0)
    assert m.e2e_latency_ms.samples == 16_500 and m.e2e_latency_ms.source.startswith("exact")
    assert m.latency is not None
    median, _, p99 = m.latency.quantiles
    assert median.node is not None and p99.node is not None
    assert (median.node.bucket_lower, median.node.bucket_upper) == (750.0, 1000.0)
    assert (p99.node.bucket_lower, p99.node.bucket_upper) == (3000.0, 5000.0)
    assert median.within_bucket is True and p99.within_bucket is True
    assert m.finality_ms.p50 is not None  # the criteria's node figure stays beside it


def test_validator_cpu_and_memory(prom: prom_client.PromQuery) -> None:
    resources = (
        Measurer(prom, TIMES, "local")
        .measure(blocks=None, load=None, probes=None, planned_restarts={2: 1})
        .measurements.resources
    )
    assert resources is not None
    assert resources.validators == 4
    # 0.25 cores each; validator 2 was down 10 s of the 55 s window (less CPU time in it).
    assert resources.cpu_cores_max == pytest.approx(0.25, rel=0.02)
    assert resources.cpu_cores_mean is not None and 0.19 < resources.cpu_cores_mean < 0.25
    assert resources.cpu_cores_total == pytest.approx(4 * resources.cpu_cores_mean)
    # 2 blocks/s: the mean validator's CPU seconds over 55 s / 110 blocks.
    assert resources.cpu_ms_per_block == pytest.approx(resources.cpu_cores_mean * 500, rel=0.03)
    assert resources.rss_mib_mean == pytest.approx(115, rel=0.01)  # 100, 110, 120, 130 MiB
    assert resources.rss_mib_max == pytest.approx(200)


def test_series_for_the_plots(prom: prom_client.PromQuery) -> None:
    result = Measurer(prom, TIMES, "local").measure(
        blocks=None, load=None, probes=None, planned_restarts={}
    )
    labels = {series.label for series in result.series.tps}
    assert labels == {"committed", "offered"}
    committed = next(s for s in result.series.tps if s.label == "committed")
    steady = [v for t, v in committed.points if 10 <= t <= 19]
    assert steady and all(v == pytest.approx(300, rel=1e-6) for v in steady)
    assert {s.label for s in result.series.finality_ms} == {"p50", "p90", "p99"}
    assert [s.label for s in result.series.height] == [f"validator {v}" for v in range(4)]
    down = next(s for s in result.series.height if s.label == "validator 2")
    assert not [t for t, _ in down.points if 31 <= t <= 39]  # no samples while killed
    assert result.measurements.tps.from_blocks is None
    assert "could not be read" in result.measurements.tps.cross_check


def test_recovery_times_from_the_height_series(prom: prom_client.PromQuery) -> None:
    heights = Measurer(prom, TIMES, "local").heights()
    assert sorted(heights) == [0, 1, 2, 3]
    assert recovery_time(heights, [1], T0 + 30) == pytest.approx(2.0)
    assert recovery_time(heights, [2], T0 + 40) == pytest.approx(4.0)
    assert recovery_time(heights, [0], T0 + 10) == pytest.approx(1.0)  # nothing to catch up


def test_byzantine_section_of_the_synthetic_run(prom: prom_client.PromQuery) -> None:
    heights = Measurer(prom, TIMES, "local").heights()

    def section(behaviour: str | None) -> ByzantineReport | None:
        return measure_byzantine(
            prom,
            [ByzantineWindow(0, behaviour, (3,), 45.0, 55.0, cleared_at=T0 + 55)],
            load_start=T0,
            run_end=T0 + 79,
            validators=4,
            heights=heights,
            blocks=blocks(),
            final_heights={str(v): 1 + 2 * 79 for v in range(4)},
            restarted=[2],
        )

    found = section("equivocate")
    assert found is not None
    (fault,) = found.faults
    assert (fault.behaviour, fault.attackers, fault.honest) == ("equivocate", [3], [0, 1, 2])
    assert fault.actions == 20  # read at t=60: no sample at the window's end (t=57)
    assert fault.rejected == {"stale_message": 30}
    assert fault.longest_stall_s == pytest.approx(1.0)  # two blocks a second, sampled each s
    assert fault.slashing == "required"
    assert [(e.validator, e.epoch, e.height, e.included) for e in fault.slashed] == [(3, 1, 101, 2)]
    assert found.slashings_counted == {"0": 1, "1": 1, "3": 1}  # 2 restarted: not compared
    assert found.slashings_expected == {"0": 1, "1": 1, "3": 1}
    assert any("validators 2 restarted" in note for note in found.notes)
    # a fault seen only in aitbc_fault_active: named after the counters that moved
    (observed,) = (section(None) or ByzantineReport()).faults
    assert observed.behaviour == "equivocate" and observed.actions == 20
    assert measure_byzantine(
        prom, [], load_start=T0, run_end=T0 + 79, validators=4, heights=heights, blocks=None,
        final_heights={},
    ) is None  # fmt: skip


def test_faults_observed_in_fault_active(prom: prom_client.PromQuery) -> None:
    faults = observed_faults(prom, T0, T0 + 79, 1.0)
    assert len(faults) == 1
    (fault,) = faults
    assert fault.kind == "partition"
    assert fault.ids == (0, 1, 2, 3)
    assert fault.start == T0 + 20
    assert fault.end == T0 + 30


def test_missing_data_is_none_not_zero(prom: prom_client.PromQuery) -> None:
    before = RunTimes(
        run_start=T0 - 900, load_start=T0 - 900, load_end=T0 - 820, run_end=T0 - 810,
        warmup_s=10, cooldown_s=5,
    )  # fmt: skip
    m = (
        Measurer(prom, before, "local")
        .measure(blocks=None, load=None, probes=None, planned_restarts={})
        .measurements
    )
    assert m.tps.mean is None
    assert m.finality_ms.p99 is None
    assert m.e2e_latency_ms.p99 is None
    assert m.restarts is None
    assert m.block_interval_ms is None


def test_query_errors_name_the_query_and_server(prom: prom_client.PromQuery) -> None:
    with pytest.raises(prom_client.PrometheusQueryError, match=r"max\(rate\(\("):
        prom.instant("max(rate((", T0)
    with prom_client.PromQuery(f"http://127.0.0.1:{_free_port()}", retries=0, timeout_s=1) as dead:
        with pytest.raises(
            prom_client.PrometheusQueryError, match="check that the run's Prometheus"
        ):
            dead.scalar("up", T0)
        assert dead.ready() is False
