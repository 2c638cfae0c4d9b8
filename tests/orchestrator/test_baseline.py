"""baseline.py and `aitbc-testnet report --baseline` on report.json files (no processes)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.errors import UsageError
from orchestrator.report.baseline import (
    compare,
    compare_metric,
    format_comparison,
    parse_regression,
)
from orchestrator.report.model import (
    CriterionResult,
    E2eLatencyMs,
    FinalityMs,
    Measurements,
    Report,
    SafetyReport,
    TpsMeasurement,
    write_report,
)


def report(
    run_id: str,
    tps: float | None,
    p99: float | None = 2000.0,
    passed: bool = True,
) -> Report:
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    return Report(
        run_id=run_id,
        scenario="devnet-smoke",
        platform="local",
        started=moment,
        ended=moment,
        measurements=Measurements(
            tps=TpsMeasurement(mean=tps),
            finality_ms=FinalityMs(p50=800.0, p90=1200.0, p99=p99),
            e2e_latency_ms=E2eLatencyMs(p50=900.0, p99=2500.0),
        ),
        safety=SafetyReport(ok=True),
        criteria=[
            CriterionResult(name="min_tps", threshold=100.0, value=tps, passed=passed),
        ],
        passed=passed,
    )


@pytest.mark.parametrize(
    ("text", "value"), [("10%", 0.10), ("2.5%", 0.025), ("0.1", 0.1), ("0", 0.0), ("150%", 1.5)]
)
def test_parse_regression(text: str, value: float) -> None:
    assert parse_regression(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["ten", "15", "-5%", "%", ""])
def test_parse_regression_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="percentage such as 10%"):
        parse_regression(text)


def test_tps_drop_beyond_the_threshold_regresses() -> None:
    comparison = compare(report("now", 250.0), report("base", 300.0), 0.10)
    assert comparison.regressed
    (regression,) = comparison.regressions
    assert regression.name == "tps.mean"
    assert regression.change == pytest.approx(-1 / 6)
    assert "16.7% lower" in regression.explanation


def test_changes_within_the_threshold_or_better_do_not_regress() -> None:
    assert not compare(report("now", 275.0), report("base", 300.0), 0.10).regressed
    assert not compare(report("now", 400.0, p99=1000.0), report("base", 300.0), 0.10).regressed


def test_latency_increase_regresses_latency_decrease_does_not() -> None:
    worse = compare_metric("finality_ms.p99", "ms", 2300.0, 2000.0, False, 0.10)
    assert worse.regressed and worse.change == pytest.approx(0.15)
    better = compare_metric("finality_ms.p99", "ms", 1000.0, 2000.0, False, 0.10)
    assert not better.regressed


def test_missing_values() -> None:
    lost = compare(report("now", None), report("base", 300.0), 0.10)
    assert [m.name for m in lost.regressions] == ["tps.mean"]
    assert "this run has no value" in lost.regressions[0].explanation
    new = compare(report("now", 300.0), report("base", None), 0.10)
    assert not new.regressed
    assert "not compared" in new.metrics[0].explanation
    zero = compare_metric("tps.mean", "tx/s", 5.0, 0.0, True, 0.1)
    assert not zero.regressed


def test_format_comparison_lists_every_metric() -> None:
    text = format_comparison(compare(report("now", 250.0), report("base", 300.0), 0.10))
    assert "baseline base -> now (max regression 10%)" in text
    for name in ("tps.mean", "finality_ms.p50", "finality_ms.p90", "finality_ms.p99",
                 "e2e_latency_ms.p50", "e2e_latency_ms.p99"):  # fmt: skip
        assert name in text
    assert "REGRESSED" in text


def test_report_command_flags_a_tps_regression(tmp_path: Path, runner: CliRunner) -> None:
    write_report(report("base", 300.0), tmp_path / "base")
    write_report(report("slow", 240.0), tmp_path / "slow")
    write_report(report("same", 290.0), tmp_path / "same")

    result = runner.invoke(
        app, ["report", str(tmp_path / "slow"), "--baseline", str(tmp_path / "base"),
              "--max-regression", "10%"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "tps.mean" in result.output and "REGRESSED" in result.output
    html = (tmp_path / "slow" / "report.html").read_text()
    assert "Baseline comparison" in html and "REGRESSED" in html

    result = runner.invoke(
        app, ["report", str(tmp_path / "same"), "--baseline", str(tmp_path / "base")]
    )
    assert result.exit_code == 0, result.output
    assert "REGRESSED" not in result.output

    result = runner.invoke(
        app, ["report", str(tmp_path / "same"), "--baseline", str(tmp_path / "base"),
              "--max-regression", "2%"],
    )  # fmt: skip
    assert result.exit_code == 1


def test_report_command_exits_1_for_a_failed_run_and_2_without_report(
    tmp_path: Path, runner: CliRunner
) -> None:
    write_report(report("failed", 10.0, passed=False), tmp_path / "failed")
    result = runner.invoke(app, ["report", str(tmp_path / "failed")])
    assert result.exit_code == 1
    assert "FAILED" in result.output
    result = runner.invoke(app, ["report", str(tmp_path / "nothing-here")])
    assert result.exit_code == 2
    assert "no report.json" in result.output
    result = runner.invoke(app, ["report", str(tmp_path / "failed"), "--max-regression", "lots"])
    assert result.exit_code == 2
