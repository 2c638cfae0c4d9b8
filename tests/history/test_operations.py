"""The history's library operations end to end on report.json files: add, list, show, check
(the nightly gate: a new regression with its commit range), and the trend page."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from history_support import make_report, noisy

from orchestrator.errors import UsageError
from orchestrator.history import (
    HistoryStore,
    HistoryUsageError,
    add_report,
    check,
    list_series,
    show_metric,
    trend_page,
)
from orchestrator.report.model import write_report


def fill(store: HistoryStore, tps: list[float], p99: list[float] | None = None) -> None:
    for number, value in enumerate(tps):
        latency = 1200.0 if p99 is None else p99[number]
        store.add(make_report(number, tps=value, p99=latency))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    opened = HistoryStore(tmp_path / "history.sqlite")
    yield opened
    opened.close()


def test_add_reads_report_json_from_an_output_folder(store: HistoryStore, tmp_path: Path) -> None:
    write_report(make_report(1), tmp_path / "out")
    result = add_report(store, tmp_path / "out")
    assert result.added and result.record.report_path == str(tmp_path / "out" / "report.json")
    with pytest.raises(UsageError, match=r"no report\.json at"):
        add_report(store, tmp_path / "nowhere")


def test_check_names_a_new_tps_regression_and_its_commit_range(store: HistoryStore) -> None:
    rng = random.Random(1)
    fill(store, noisy(rng, 25, 300.0) + noisy(rng, 4, 255.0))
    result = check(store)
    assert result.regressed
    (regression,) = result.new_regressions
    assert regression.metric.name == "tps.mean"
    assert regression.change.index == 25
    assert regression.last_before.run_id == "devnet-smoke-024"
    assert regression.first_after.run_id == "devnet-smoke-025"
    assert regression.commit_range == "c02400000000..c02500000000"
    text = regression.describe()
    assert "tps.mean of devnet-smoke on local" in text and "higher is better" in text
    assert "between commit c02400000000..c02500000000" in text


def test_a_latency_rise_regresses_a_throughput_rise_does_not(store: HistoryStore) -> None:
    rng = random.Random(2)
    tps = noisy(rng, 20, 300.0) + noisy(rng, 5, 360.0)  # faster: a change, not a regression
    p99 = noisy(rng, 20, 1200.0) + noisy(rng, 5, 1500.0)  # slower: a regression
    fill(store, tps, p99)
    result = check(store)
    assert {r.metric.name for r in result.new_regressions} == {
        "finality_ms.p99",
        "e2e_latency_ms.p99",
    }
    (tps_history,) = [h for h in result.histories if h.metric.name == "tps.mean"]
    assert [change.index for change in tps_history.change_points] == [20]
    assert tps_history.regressions == ()


def test_an_old_regression_is_not_new(store: HistoryStore) -> None:
    rng = random.Random(3)
    fill(store, noisy(rng, 15, 300.0) + noisy(rng, 15, 250.0))
    result = check(store, recent_runs=5)
    assert not result.regressed
    assert [r.change.index for r in result.older_regressions] == [15]
    assert check(store, recent_runs=15).regressed


def test_a_quiet_history_passes(store: HistoryStore) -> None:
    fill(store, noisy(random.Random(4), 30, 300.0))
    result = check(store)
    assert not result.regressed and not result.older_regressions
    assert len(result.histories) >= 6


def test_show_gives_the_metric_of_every_series(store: HistoryStore) -> None:
    fill(store, [300.0] * 8)
    store.add(make_report(1, platform="sim"))
    histories = show_metric(store, "tps.mean")
    assert sorted(h.key.platform for h in histories) == ["local", "sim"]
    (local,) = show_metric(store, "tps.mean", platform="local")
    assert local.values == (300.0,) * 8 and local.change_points == ()
    assert [s.key.platform for s in list_series(store, scenario="devnet-smoke")] == ["local", "sim"]


def test_unknown_metric_empty_history_and_bad_options_are_usage_errors(
    store: HistoryStore,
) -> None:
    with pytest.raises(HistoryUsageError, match="has no runs: add reports"):
        check(store)
    store.add(make_report(1))
    with pytest.raises(HistoryUsageError, match="metric 'tps' is not kept") as caught:
        show_metric(store, "tps")
    assert "tps.mean" in str(caught.value) and caught.value.exit_code == 2
    with pytest.raises(HistoryUsageError, match="has no runs of scenario nightly"):
        check(store, scenario="nightly")
    with pytest.raises(HistoryUsageError, match="--recent 0"):
        check(store, recent_runs=0)


def test_the_trend_page_plots_every_metric_and_marks_the_regression(
    store: HistoryStore, tmp_path: Path
) -> None:
    rng = random.Random(1)
    fill(store, noisy(rng, 25, 300.0) + noisy(rng, 4, 255.0))
    page = trend_page(store, tmp_path / "trend")
    assert page == tmp_path / "trend" / "trend.html"
    html = page.read_text()
    assert html.count("<svg") >= 6
    assert 'class="fault"' in html  # the regression's shaded range
    assert "c02400000000..c02500000000" in html
    assert "tps.mean of devnet-smoke on local" in html
    assert "<td>devnet-smoke-028</td>" in html
    single = trend_page(store, tmp_path / "one.html", platform="local")
    assert single == tmp_path / "one.html" and single.is_file()
