"""orchestrator/scale: the sweep's points (counts, authorities, simulated), its rows from
campaign reports, its verdict, its files and plots, a sweep through the real simulator, and the
validator CPU/memory figures of measure/resources."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.errors import PlatformError, UsageError
from orchestrator.measure.resources import resource_usage
from orchestrator.platforms import get_platform
from orchestrator.report.model import (
    FinalityMs,
    Measurements,
    Report,
    ResourceUsage,
    SafetyReport,
    TpsMeasurement,
)
from orchestrator.scale.model import ScaleReport, ScaleRow, row_from_report
from orchestrator.scale.plan import (
    MIN_VALIDATORS,
    ScalePoint,
    parse_validator_counts,
    scale_points,
    scaled_authorities,
)
from orchestrator.scale.render import PLOTS, charts, plot_series, write_scale_outputs
from orchestrator.scale.sweep import PlannedPoint, Sweep
from orchestrator.scenario.loader import load_scenario
from orchestrator.scenario.plan import resolve_plan

MIB = 1024 * 1024
MOMENT = datetime(2026, 1, 1, 12, tzinfo=UTC)


# ----------------------------------------------------------------------------- the points


def test_counts_are_sorted_and_distinct() -> None:
    assert parse_validator_counts("64, 4,16,4") == (4, 16, 64)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("3", "3 validators is out of range"),
        ("4,1001", "1001 validators is out of range"),
        ("4,,16", "'' is not a whole number"),
        ("four", "'four' is not a whole number"),
    ],
)
def test_bad_counts_name_the_flag(text: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_validator_counts(text)
    assert str(caught.value).startswith(f"--validators {text!r}: ")
    assert says in str(caught.value)
    assert caught.value.exit_code == 2


def test_authorities_keep_the_scenarios_proportion() -> None:
    # the devnet: 21 of 100
    assert [scaled_authorities(n, 100, 21) for n in (4, 16, 32, 64, 100, 1000)] == [
        4,
        4,
        7,
        13,
        21,
        210,
    ]
    # every validator an authority stays so
    assert [scaled_authorities(n, 4, 4) for n in (4, 16, 100)] == [4, 16, 100]
    # never more authorities than validators, never fewer than a 3f+1 quorum's 4
    assert scaled_authorities(MIN_VALIDATORS, 100, 1) == MIN_VALIDATORS


def test_counts_above_the_bound_are_simulated() -> None:
    points = scale_points(
        (100, 4, 1000), base_validators=100, base_authorities=21, simulate_above=100
    )
    assert points == (
        ScalePoint(4, 4, simulated=False),
        ScalePoint(100, 21, simulated=False),
        ScalePoint(1000, 210, simulated=True),
    )
    assert points[2].overrides() == ("network.validators=1000", "network.authorities=210")
    none = scale_points((4, 8), base_validators=4, base_authorities=4, simulate_above=None)
    assert not any(p.simulated for p in none)
    everything = scale_points((4, 8), base_validators=4, base_authorities=4, simulate_above=0)
    assert all(p.simulated for p in everything)


def test_each_points_overrides_give_a_valid_plan() -> None:
    for point in scale_points(
        (4, 16, 64, 100), base_validators=100, base_authorities=21, simulate_above=None
    ):
        plan = resolve_plan(load_scenario("devnet", point.overrides()), platform="local")
        assert (plan.network.validators, plan.network.authorities) == (
            point.validators,
            point.authorities,
        )
        assert plan.faults[0].ids, "the minority-third partition resolves at every N"


# ----------------------------------------------------------------------------- resources


def test_resource_figures_from_per_validator_samples() -> None:
    usage = resource_usage(
        {"0": 0.2, "1": 0.4},
        {"0": 100 * MIB, "1": 120 * MIB},
        {"0": 110 * MIB, "1": 150 * MIB},
        window_s=60,
        blocks=30,
    )
    assert usage is not None
    assert usage.validators == 2
    assert usage.cpu_cores_mean == pytest.approx(0.3)
    assert usage.cpu_cores_max == pytest.approx(0.4)
    assert usage.cpu_cores_total == pytest.approx(0.6)
    assert usage.cpu_ms_per_block == pytest.approx(0.3 * 60 * 1000 / 30)  # 600 ms
    assert usage.rss_mib_mean == pytest.approx(110)
    assert usage.rss_mib_max == pytest.approx(150)


def test_no_process_metrics_is_none_and_no_blocks_no_per_block_figure() -> None:
    assert resource_usage({}, {}, {}, window_s=60, blocks=30) is None
    usage = resource_usage({"0": 0.5}, {}, {}, window_s=60, blocks=0)
    assert usage is not None and usage.cpu_ms_per_block is None and usage.rss_mib_mean is None


# ----------------------------------------------------------------------------- rows, verdict


def campaign_report(*, simulated: bool, passed: bool, safe: bool = True) -> Report:
    return Report(
        run_id="devnet-scale-n16",
        scenario="devnet",
        platform="sim" if simulated else "local",
        simulated=simulated,
        started=MOMENT,
        ended=MOMENT,
        measurements=Measurements(
            tps=TpsMeasurement(mean=None if simulated else 48.5, offered=50.0),
            finality_ms=FinalityMs(p50=2100, p99=6400),
            block_interval_ms=2050,
            timeouts=3,
            resources=ResourceUsage(
                validators=16, cpu_ms_per_block=80.5, cpu_cores_mean=0.04, rss_mib_mean=95.0
            ),
        ),
        safety=SafetyReport(ok=safe),
        passed=passed,
    )


def test_a_row_carries_the_campaigns_figures() -> None:
    row = row_from_report(
        campaign_report(simulated=False, passed=True),
        validators=16,
        authorities=4,
        report_path="n-16/report.json",
        wall_s=95.1234,
    )
    assert row == ScaleRow(
        validators=16,
        authorities=4,
        simulated=False,
        platform="local",
        report="n-16/report.json",
        passed=True,
        safe=True,
        wall_s=95.123,
        tps=48.5,
        offered_tps=50.0,
        finality_p50_ms=2100,
        finality_p99_ms=6400,
        cpu_ms_per_block=80.5,
        cpu_cores_per_validator=0.04,
        rss_mib_per_validator=95.0,
        block_interval_ms=2050,
        timeouts=3,
    )


def sweep_report(*rows: ScaleRow) -> ScaleReport:
    return ScaleReport(
        scenario="devnet",
        platform="local",
        simulate_above=16,
        started=MOMENT,
        ended=MOMENT,
        rows=list(rows),
    )


def row(validators: int, **changes: object) -> ScaleRow:
    base = row_from_report(
        campaign_report(simulated=validators > 16, passed=True),
        validators=validators,
        authorities=4,
        report_path=f"n-{validators}/report.json",
        wall_s=1.0,
    )
    return base.model_copy(update=changes)


def test_verdict_real_counts_by_criteria_simulated_ones_by_safety() -> None:
    # a simulated count fails TPS criteria (the simulator measures no TPS): not the sweep's
    assert sweep_report(row(4), row(64, passed=False)).passed is True
    assert sweep_report(row(4), row(64, passed=False, safe=False)).passed is False
    assert sweep_report(row(4, passed=False), row(64)).passed is False
    failed = row(4, passed=None, error="could not start")
    assert sweep_report(failed).passed is False
    assert failed.verdict == "error: could not start"
    assert [row(4).verdict, row(64).verdict, row(64, safe=False).verdict] == [
        "passed",
        "safe",
        "UNSAFE",
    ]


def test_plots_keep_real_and_simulated_apart(tmp_path: Path) -> None:
    report = sweep_report(row(4), row(16), row(64), row(100))
    finality = next(plot for plot in PLOTS if plot.name == "finality")
    labels = [series.label for series in plot_series(report.rows, finality)]
    assert labels == ["p50 (real)", "p50 (simulated)", "p99 (real)", "p99 (simulated)"]
    svgs = charts(report)
    assert sorted(svgs) == ["cpu", "finality", "rss", "tps"]
    assert "committed (real)" in svgs["tps"]
    assert "committed (simulated)" not in svgs["tps"]  # the simulator measures no TPS
    files = write_scale_outputs(report, tmp_path / "out")
    assert json.loads(files.json.read_text())["rows"][3]["simulated"] is True
    html = files.html.read_text()
    assert len(re.findall(r"<svg ", html)) == 4
    assert html.count('<span class="simulated">SIMULATED</span>') == 3  # 2 rows + the note
    markdown = files.markdown.read_text()
    assert "| 64 | 4 | **SIMULATED** |" in markdown
    assert "| 4 | 4 | real (local) | passed |" in markdown
    assert "| 64 | 4 | **SIMULATED** | safe |" in markdown


# ----------------------------------------------------------------------------- a sweep


def test_a_sweep_in_the_simulator_and_a_count_that_cannot_run(tmp_path: Path) -> None:
    """Two counts through the real simulator, and one whose platform fails (recorded, the
    sweep goes on)."""
    base = load_scenario("devnet-smoke", ["sim.blocks=30"])
    points = scale_points((4, 7, 10), base_validators=4, base_authorities=4, simulate_above=0)
    planned = [
        PlannedPoint(
            p,
            resolve_plan(
                load_scenario("devnet-smoke", ["sim.blocks=30", *p.overrides()]),
                platform="sim",
                run_id=f"sweep-n{p.validators}",
            ),
        )
        for p in points
    ]

    def platform_for(point: ScalePoint, directory: Path) -> object:
        if point.validators == 7:
            raise PlatformError("7 validators: the machine gave up")
        return get_platform("sim", directory)

    outcome = Sweep(
        scenario=base.name,
        description=base.description,
        platform="sim",
        simulate_above=0,
        points=planned,
        platform_for=platform_for,
        out_dir=tmp_path / "out",
        run_root=tmp_path / "runs",
    ).run()
    rows = outcome.report.rows
    assert [r.validators for r in rows] == [4, 7, 10]
    assert rows[1].error == "7 validators: the machine gave up" and rows[1].report is None
    assert outcome.infrastructure_failed is True
    for simulated in (rows[0], rows[2]):
        assert simulated.simulated is True and simulated.safe is True
        assert simulated.finality_p50_ms is not None and simulated.finality_p50_ms > 0
        assert simulated.cpu_ms_per_block is not None and simulated.cpu_ms_per_block > 0
        assert simulated.tps is None and simulated.rss_mib_per_validator is None
        assert (tmp_path / "out" / f"n-{simulated.validators}" / "report.json").is_file()
    assert (tmp_path / "out" / "scale.html").is_file()


def test_scale_refuses_a_platform_it_cannot_sweep(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["scale", "devnet", "--validators", "4", "--platform", "kubernetes", "--out",
         str(tmp_path / "out"), "--run-dir", str(tmp_path / "runs")],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "--platform kubernetes: scale runs on local or sim" in result.output
    assert not (tmp_path / "runs").exists()
