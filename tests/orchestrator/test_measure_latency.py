"""measure/latency.py: exact end-to-end quantiles of a window from the load generator's samples
files (written by its own writer), the node histogram beside them with its bucket bounds, and
the explanation of every difference; and how a report shows them."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loadgen.latency import LatencyCounts
from loadgen.latency_file import LatencyFileHeader, LatencySampleWriter, samples_path_for
from loadgen.metrics import LoadgenTotals
from loadgen.summary import LoadgenSummary, write_summary
from orchestrator.measure.latency import (
    ExactWindow,
    compare_latency,
    exact_window_latency,
    samples_files,
)
from orchestrator.report.model import (
    ExactLatencyMs,
    Measurements,
    Report,
    SafetyReport,
)
from orchestrator.report.render import render_html, render_markdown

EPOCH = 1_700_000_000.0
# 10 observations (seconds): 4 <= 0.5, 4 in (0.5, 1.0], 2 in (1.0, 1.5]
NODE_BUCKETS = [(0.5, 4.0), (1.0, 8.0), (1.5, 10.0), (math.inf, 10.0)]


def write_process(folder: Path, worker: int, samples: list[tuple[float, float]]) -> Path:
    """A load process's summary and samples file: ``samples`` are (submitted offset s,
    latency s) from EPOCH, through the load generator's writer."""
    summary = folder / f"summary-{worker}.json"
    header = LatencyFileHeader(run_id="r", worker_index=worker, epoch_unix=EPOCH, epoch_mono=0.0)
    writer = LatencySampleWriter(samples_path_for(summary), header)
    for offset, latency in samples:
        writer.add(offset, latency)
    writer.close()
    totals = LoadgenTotals(
        offered=len(samples), sent=len(samples), acked=len(samples) + 1, missed=0, resent=0,
        backoffs=0, rejected={}, probes={}, e2e_latency_count=0, e2e_latency_sum_s=0.0,
    )  # fmt: skip
    books = LatencyCounts(acked=len(samples) + 1, committed=len(samples), uncommitted=1)
    write_summary(
        summary,
        LoadgenSummary(run_id="r", written_at=EPOCH, settings={}, totals=totals, latency=books),
    )
    return samples_path_for(summary)


def test_exact_latency_of_a_window_over_every_process(tmp_path: Path) -> None:
    write_process(tmp_path, 0, [(1.0, 9.0), (10.0, 0.2), (11.0, 0.4)])
    write_process(tmp_path, 1, [(12.0, 0.6), (13.0, 0.8), (30.0, 5.0)])
    assert len(samples_files(tmp_path)) == 2
    found = exact_window_latency(tmp_path, EPOCH + 5, EPOCH + 20)
    assert found.unavailable is None and found.exact is not None
    exact = found.exact
    assert (exact.count, exact.files, exact.uncommitted) == (4, 2, 2)  # 1.0 and 30.0 are out
    assert exact.p50 == pytest.approx(500.0, abs=0.01)
    assert exact.max == pytest.approx(800.0, abs=0.01)
    assert exact.mean == pytest.approx(500.0, abs=0.01)


def test_no_samples_says_why(tmp_path: Path) -> None:
    missing = exact_window_latency(tmp_path / "load", EPOCH, EPOCH + 10)
    assert missing.exact is None and missing.unavailable is not None
    assert "*.latency.bin" in missing.unavailable and "kubernetes" in missing.unavailable
    write_process(tmp_path, 0, [(100.0, 0.2)])
    empty = exact_window_latency(tmp_path, EPOCH, EPOCH + 10)
    assert empty.exact is None and "no transaction submitted in the measured window" in str(
        empty.unavailable
    )
    (tmp_path / "summary-0.latency.bin").write_bytes(b"not a samples file\n")
    broken = exact_window_latency(tmp_path, EPOCH, EPOCH + 10)
    assert broken.exact is None and "cannot be read" in str(broken.unavailable)


def exact_of(p50: float, p90: float, p99: float) -> ExactWindow:
    return ExactWindow(ExactLatencyMs(count=100, p50=p50, p90=p90, p99=p99), None)


def test_an_exact_value_inside_the_bucket_differs_by_the_interpolation() -> None:
    comparison = compare_latency(exact_of(700.0, 1200.0, 1490.0), NODE_BUCKETS, faults=False)
    median, p90, p99 = comparison.quantiles
    assert median.node is not None
    assert (median.node.bucket_lower, median.node.bucket_upper) == (500.0, 1000.0)
    assert median.node.estimate == pytest.approx(625.0)
    assert median.within_bucket is True
    assert "lies in the node histogram's bucket (500, 1000] ms" in median.explanation
    assert "interpolation (-75.0 ms), not the network" in median.explanation
    assert p90.within_bucket is True and p99.within_bucket is True


def test_an_exact_value_outside_the_bucket_says_which_span_differs() -> None:
    comparison = compare_latency(exact_of(300.0, 1200.0, 4000.0), NODE_BUCKETS, faults=True)
    median, _, p99 = comparison.quantiles
    assert median.within_bucket is False and "below the node bucket" in median.explanation
    assert "every validator's commit" in median.explanation
    assert p99.within_bucket is False and "above the node bucket (1000, 1500] ms" in (
        p99.explanation
    )
    assert "submit call" in p99.explanation and "waits for the heal" in p99.explanation
    assert "here faults cut validators off" in median.explanation
    calm = compare_latency(exact_of(300.0, 1200.0, 4000.0), NODE_BUCKETS, faults=False)
    assert "heal" not in calm.quantiles[2].explanation
    assert "faults" not in calm.quantiles[0].explanation


def test_past_the_last_bucket_and_missing_sides() -> None:
    beyond = [(0.5, 0.0), (math.inf, 10.0)]
    (median, *_) = compare_latency(exact_of(900.0, 900.0, 900.0), beyond, faults=False).quantiles
    assert median.node is not None and median.node.bucket_upper is None
    assert median.within_bucket is True and "above 500 ms (past the last bucket)" in (
        median.explanation
    )
    no_node = compare_latency(exact_of(1.0, 2.0, 3.0), [], faults=False)
    assert all(row.node is None and row.within_bucket is None for row in no_node.quantiles)
    assert "observed no finality" in no_node.quantiles[0].explanation
    no_exact = compare_latency(ExactWindow(None, "gone"), NODE_BUCKETS, faults=False)
    assert no_exact.exact_unavailable == "gone"
    assert all(row.exact_ms is None and "(gone)" in row.explanation for row in no_exact.quantiles)


def test_a_report_shows_exact_beside_node_with_the_bucket_bounds() -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    latency = compare_latency(exact_of(700.0, 1200.0, 4000.0), NODE_BUCKETS, faults=False)
    report = Report(
        run_id="r",
        scenario="s",
        platform="local",
        started=moment,
        ended=moment,
        measurements=Measurements(latency=latency),
        safety=SafetyReport(ok=True),
        passed=True,
    )
    markdown = render_markdown(report)
    assert "## Latency: exact end to end beside the node histograms" in markdown
    assert "| p50 | 700 | 625 | (500, 1000] |" in markdown
    assert "| p99 | 4000 | 1475 | (1000, 1500] |" in markdown
    html = render_html(report)
    assert '<table id="latency">' in html and "<td>(500, 1000]</td>" in html
    gap = latency.model_copy(update={"exact": None, "exact_unavailable": "no samples here"})
    report = report.model_copy(update={"measurements": Measurements(latency=gap)})
    assert "No exact latency: no samples here." in render_markdown(report)
