"""PromQL builders and the pure parts of the measurer and the Prometheus client.

The builders' semantics are checked against a real Prometheus in test_measure_prometheus.py;
here: their exact text (the rules from FIELD-NOTES: max not sum, sum by (le), windows >= 4x the
scrape interval, whole milliseconds) and the parsing of the HTTP API's answers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from orchestrator.errors import UsageError
from orchestrator.external import prometheus as prom_client
from orchestrator.measure import promql as pq
from orchestrator.measure.measurer import (
    MAX_POINTS,
    Measurer,
    RunTimes,
    agree,
    fault_intervals,
    group_faults,
    tps_from_blocks,
)

SEL = '{validator!=""}'


def test_durations_are_whole_milliseconds() -> None:
    assert pq.duration(45) == "45000ms"
    assert pq.duration(0.0004) == "1ms"
    assert pq.duration(12.3456) == "12346ms"
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive number of seconds"):
            pq.duration(bad)


def test_rate_windows_by_platform() -> None:
    assert pq.scrape_interval_s("local") == 1.0
    assert pq.rate_window_s("local") == 5.0  # >= 4 x 1 s, at least 5 s
    assert pq.rate_window_s("kubernetes") == 40.0  # 4 x the chart's 10 s
    assert pq.rate_window_s("kubernetes") >= 4 * pq.scrape_interval_s("kubernetes")


def test_local_scrapes_slow_down_with_many_validators() -> None:
    """At most ~20 validator scrapes a second on the local platform (each costs a validator
    ~9 ms of CPU): 1 s up to 20 validators, 5 s at 100; the rate window follows."""
    counts = (4, 20, 21, 32, 64, 100, 1000)
    assert [pq.scrape_interval_s("local", n) for n in counts] == [1, 1, 2, 2, 4, 5, 50]
    assert [pq.rate_window_s("local", n) for n in (4, 32, 100)] == [5, 8, 20]
    assert pq.scrape_interval_s("kubernetes", 1000) == pq.scrape_interval_s("kubernetes")


def test_committed_tps_is_max_of_rate_never_sum() -> None:
    assert pq.committed_tps(45) == f"max(rate(aitbc_txs_committed_total{SEL}[45000ms]))"
    assert "sum" not in pq.committed_tps(45)
    assert pq.committed_tps_by_validator(5).startswith("max by (validator) (rate(")


def test_quantiles_sum_buckets_by_le() -> None:
    assert pq.finality_quantile(0.99, 45) == (
        "quantile(0.5, histogram_quantile(0.99, sum by (le, validator) "
        f"(increase(aitbc_tx_finality_seconds_bucket{SEL}[45000ms]))))"
    )
    assert pq.e2e_quantile(0.5, 10) == (
        "histogram_quantile(0.5, sum by (le) "
        "(increase(aitbc_loadgen_e2e_latency_seconds_bucket[10000ms])))"
    )
    assert pq.mempool_txs() == f"sum(aitbc_mempool_txs{SEL})"
    assert pq.mempool_txs_by_validator() == f"max by (validator) (aitbc_mempool_txs{SEL})"
    assert pq.finality_buckets(45) == (
        f"sum by (le) (increase(aitbc_tx_finality_seconds_bucket{SEL}[45000ms]))"
    )
    for bad in (0, 1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            pq.finality_quantile(bad, 10)


def test_other_builders() -> None:
    assert pq.loadgen_increase("aitbc_loadgen_offered_txs_total", 45) == (
        "sum(increase(aitbc_loadgen_offered_txs_total[45000ms]))"
    )
    assert pq.height_of(2) == 'aitbc_block_height{validator="2"}'
    assert pq.height_sample_time(2) == f"timestamp({pq.height_of(2)})"
    assert pq.process_restarts(90) == (
        f"max by (validator) (changes(process_start_time_seconds{SEL}[90000ms]))"
    )
    assert pq.blocks_committed(45).startswith("max(increase(aitbc_blocks_committed_total")
    assert pq.slashing_events(90).startswith("max(max_over_time(aitbc_slashing_events_total")
    assert pq.fault_active() == f"max by (validator, kind) (aitbc_fault_active{SEL})"


def test_parse_vector_and_matrix_turn_strings_into_floats() -> None:
    vector = prom_client.parse_vector(
        [
            {"metric": {"validator": "0"}, "value": [1700000000.5, "300.25"]},
            {"metric": {"validator": "1"}, "value": [1700000000.5, "NaN"]},
            {"metric": {}, "value": [1700000000.5, "+Inf"]},
        ]
    )
    assert [(s.labels.get("validator"), s.value) for s in vector] == [
        ("0", 300.25),
        ("1", None),
        (None, None),
    ]
    assert vector[0].timestamp == 1700000000.5
    (series,) = prom_client.parse_matrix(
        [{"metric": {"validator": "3"}, "values": [[1, "1"], [2, "NaN"], [3, "3.5"]]}]
    )
    assert series.labels == {"validator": "3"}
    assert series.points == ((1.0, 1.0), (3.0, 3.5))


@dataclass(frozen=True)
class Block:
    height: int
    tx_ids: tuple[bytes, ...]


def test_tps_from_blocks_counts_the_exact_height_range() -> None:
    blocks = [Block(h, tuple(b"%d" % i for i in range(h))) for h in range(1, 11)]
    rate, count = tps_from_blocks(blocks, 3, 6, 2.0)  # heights 4, 5, 6
    assert count == 4 + 5 + 6
    assert rate == pytest.approx(7.5)
    assert tps_from_blocks(blocks, 3, 12, 2.0) == (None, 0)  # 11, 12 were not read
    assert tps_from_blocks(blocks, 3, 6, 0.0) == (None, 0)


def test_agreement_within_two_percent() -> None:
    assert agree(300.0, 305.9) is True
    assert agree(300.0, 307.0) is False
    assert agree(None, 300.0) is None
    assert agree(0.0, 0.0) is True


def test_run_times_window() -> None:
    times = RunTimes(run_start=0, load_start=10, load_end=70, run_end=80, warmup_s=10, cooldown_s=5)
    assert (times.measure_start, times.measure_end, times.window_s) == (20, 65, 45)


def test_fault_intervals_and_grouping() -> None:
    def series(validator: str, values: list[tuple[float, float]]) -> prom_client.RangeSeries:
        return prom_client.RangeSeries({"validator": validator, "kind": "partition"}, tuple(values))

    on_off = [(float(t), 1.0 if 20 <= t < 30 else 0.0) for t in range(40)]
    killed = [(float(t), 1.0 if t >= 21 else 0.0) for t in range(25)]  # stops reporting at 24
    still = [(float(t), 1.0 if t >= 35 else 0.0) for t in range(40)]
    intervals = fault_intervals(
        [series("0", on_off), series("1", killed), series("2", still)], 1.0, series_end=39.0
    )
    assert sorted(intervals) == [
        ("partition", 0, 20.0, 30.0),
        ("partition", 1, 21.0, 24.0),
        ("partition", 2, 35.0, None),
    ]
    faults = group_faults(intervals, tolerance_s=2.5)
    assert [(f.ids, f.start, f.end) for f in faults] == [((0, 1), 20.0, 30.0), ((2,), 35.0, None)]


def test_an_empty_measured_window_is_refused() -> None:
    empty = RunTimes(run_start=0, load_start=0, load_end=10, run_end=12, warmup_s=6, cooldown_s=4)
    with pytest.raises(UsageError, match="measured window is empty"):
        Measurer(prom_client.PromQuery("http://127.0.0.1:9", retries=0), empty, "local")


def test_long_runs_use_a_coarser_step() -> None:
    day = RunTimes(run_start=0, load_start=0, load_end=86_400, run_end=86_410, warmup_s=0,
                   cooldown_s=0)  # fmt: skip
    measurer = Measurer(prom_client.PromQuery("http://127.0.0.1:9", retries=0), day, "local")
    assert measurer.step_s == 9
    assert 86_410 / measurer.step_s <= MAX_POINTS
