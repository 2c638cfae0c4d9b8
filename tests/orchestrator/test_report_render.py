"""report/render.py, junit.py and model.py: rendering, plots, JUnit, reading reports back."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.errors import UsageError
from orchestrator.report.junit import junit_element
from orchestrator.report.model import (
    SCHEMA_VERSION,
    CriterionResult,
    FaultResult,
    FinalityMs,
    Measurements,
    Report,
    SafetyReport,
    SafetyViolation,
    Series,
    TimeSeries,
    TpsMeasurement,
    Window,
    find_report,
    read_report,
    write_report,
)
from orchestrator.report.render import (
    Shade,
    line_chart,
    nice_step,
    render_markdown,
    ticks,
    write_outputs,
)

CRITERIA = [
    CriterionResult(name="min_tps", threshold=180.0, value=305.6, passed=True, unit="tx/s",
                    explanation="305.6 tx/s >= 180 tx/s"),
    CriterionResult(name="max_finality_p99_ms", threshold=3000.0, value=19484.7, passed=False,
                    unit="ms", explanation="19484.7 ms > 3000 ms"),
    CriterionResult(name="safety", threshold=True, value=True, passed=True,
                    explanation="no violation"),
    CriterionResult(name="max_recovery_s", threshold=30.0, value=9.4, passed=True, unit="s",
                    explanation="slowest: fault 0 (partition [1]) 9.4 s <= 30 s"),
    CriterionResult(name="max_restarts", threshold=0.0, value=None, passed=False,
                    unit="restarts", explanation="not measured: no | data"),
]  # fmt: skip


def sample_report(**changes: object) -> Report:
    moment = datetime(2025, 1, 1, 12, tzinfo=UTC)
    base = Report(
        run_id="devnet-smoke-20250101-120000",
        scenario="devnet-smoke",
        description="4 validators <b>& a partition</b>",
        platform="local",
        params={"load": {"duration_s": 60.0}},
        git_commit="abc123",
        started=moment,
        ended=moment,
        load_started=1_700_000_000.0,
        measured_window=Window(start=10, end=55),
        measurements=Measurements(
            window_s=45,
            tps=TpsMeasurement(mean=305.6, offered=300, from_blocks=305.5, blocks_agree=True),
            finality_ms=FinalityMs(p50=1261, p90=14871, p99=19484.7),
        ),
        faults=[
            FaultResult(
                index=0,
                kind="partition",
                target="minority-third",
                ids=[1],
                start=20,
                end=30,
                applied_verified=True,
                cleared_verified=True,
                recovery_s=9.444,
                recovered=True,
            ),
        ],
        safety=SafetyReport(ok=True, checked_height=103, validators=[0, 1, 2, 3]),
        criteria=CRITERIA,
        passed=False,
        series=TimeSeries(
            tps=[
                Series(label="committed", points=[(t, 300.0) for t in range(0, 60)]),
                Series(label="offered", points=[(t, 300.0) for t in range(0, 60)]),
            ],
            finality_ms=[Series(label="p99", points=[(t, 1000.0 + t) for t in range(60)])],
            height=[
                Series(label=f"validator {v}", points=[(t, 2.0 * t) for t in range(60)])
                for v in range(4)
            ],
        ),
    )
    return base.model_copy(update=changes)


def test_write_outputs_writes_four_files(tmp_path: Path) -> None:
    files = write_outputs(sample_report(), tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "junit.xml", "report.html", "report.json", "report.md",
    ]  # fmt: skip
    assert files.html.read_text().startswith("<!DOCTYPE html>")


def test_html_has_the_three_svg_plots_with_the_fault_window(tmp_path: Path) -> None:
    html = write_outputs(sample_report(), tmp_path).html.read_text()
    svgs = re.findall(r"<svg .*?</svg>", html, re.S)
    assert len(svgs) == 3
    for svg in svgs:
        assert 'class="fault"' in svg  # the partition window is shaded on every plot
        assert "<polyline" in svg
        assert 'class="mark"' in svg  # the measured window
        ET.fromstring(svg)  # well-formed XML
    assert "Transactions per second" in svgs[0] and "committed" in svgs[0]
    assert "p99" in svgs[1]
    assert all(f"validator {v}" in svgs[2] for v in range(4))
    # user text is escaped, never markup
    assert "<b>& a partition</b>" not in html
    assert "&lt;b&gt;&amp; a partition&lt;/b&gt;" in html
    assert 'class="recovery">9.444<' in html


def test_markdown_names_every_criterion_with_value_and_result() -> None:
    text = render_markdown(sample_report())
    assert text.startswith("# devnet-smoke: FAILED")
    for criterion in CRITERIA:
        row = next(line for line in text.splitlines() if line.startswith(f"| {criterion.name} |"))
        assert ("pass" if criterion.passed else "**FAIL**") in row
    assert "| max_finality_p99_ms | 3000 ms | 19485 ms | **FAIL** |" in text
    assert "Failed: `max_finality_p99_ms` (value 19485, threshold 3000)" in text
    assert "no \\| data" in text  # a | inside a cell is escaped
    assert "| 0 | partition | minority-third | [1] | 20 | 30 | yes | yes | 9.444 |" in text
    assert "305.5 (agree within 2 %)" in text
    assert "No violation: heights 1..103 identical on validators [0, 1, 2, 3]" in text


def test_simulated_report_is_labelled() -> None:
    text = render_markdown(sample_report(simulated=True, platform="sim"))
    assert text.startswith("# devnet-smoke: FAILED (SIMULATED)")
    assert "simulated: numbers come from the deterministic simulator" in text


def test_safety_violations_are_listed() -> None:
    unsafe = SafetyReport(
        ok=False,
        violations=[SafetyViolation(kind="divergence", height=7, message="height 7: differs")],
    )
    text = render_markdown(sample_report(safety=unsafe))
    assert "**1 violation(s):**" in text
    assert "- divergence at height 7: height 7: differs" in text


def test_junit_one_testcase_per_criterion_and_one_for_safety() -> None:
    root = junit_element(sample_report())
    suite = root.find("testsuite")
    assert suite is not None
    cases = {str(case.get("name")): case for case in suite.iter("testcase")}
    assert sorted(cases) == sorted(
        ["min_tps", "max_finality_p99_ms", "max_recovery_s", "max_restarts", "safety"]
    )
    assert suite.get("tests") == "5" and suite.get("failures") == "2"
    failure = cases["max_finality_p99_ms"].find("failure")
    assert failure is not None and "value 19484.7 ms, threshold 3000.0 ms" in failure.get(
        "message", ""
    )
    assert cases["safety"].find("failure") is None
    assert cases["min_tps"].find("failure") is None


def test_junit_safety_fails_when_required_and_skips_when_not() -> None:
    unsafe = SafetyReport(ok=False, violations=[SafetyViolation(kind="liveness", message="x")])
    root = junit_element(sample_report(safety=unsafe))
    case = next(c for c in root.iter("testcase") if c.get("name") == "safety")
    assert case.find("failure") is not None
    not_required = [c for c in CRITERIA if c.name != "safety"]
    root = junit_element(sample_report(safety=unsafe, criteria=not_required))
    case = next(c for c in root.iter("testcase") if c.get("name") == "safety")
    assert case.find("failure") is None and case.find("skipped") is not None


def test_report_json_round_trip_and_lookup(tmp_path: Path) -> None:
    original = sample_report()
    path = write_report(original, tmp_path / "run" / "report")
    document = json.loads(path.read_text())
    assert document["schema_version"] == SCHEMA_VERSION
    for key in ("scenario", "platform", "params", "git_commit", "image_tag", "started", "ended",
                "measurements", "faults", "safety", "criteria", "passed", "series"):  # fmt: skip
        assert key in document
    assert set(document["measurements"]["tps"]) >= {"mean", "offered", "achieved_ratio",
                                                    "from_blocks"}  # fmt: skip
    assert set(document["faults"][0]) >= {"kind", "target", "start", "end", "recovery_s"}
    assert set(document["criteria"][0]) >= {"name", "threshold", "value", "passed"}
    assert read_report(tmp_path / "run") == original  # a run directory: looks in report/
    assert read_report(path) == original
    assert find_report(tmp_path / "run" / "report") == path


def test_read_report_rejects_other_schemas(tmp_path: Path) -> None:
    path = write_report(sample_report(), tmp_path)
    document = json.loads(path.read_text())
    document["schema_version"] = 99
    path.write_text(json.dumps(document))
    with pytest.raises(UsageError, match="schema_version 99"):
        read_report(tmp_path)
    path.write_text("{not json")
    with pytest.raises(UsageError, match="cannot read a JSON report"):
        read_report(tmp_path)
    with pytest.raises(UsageError, match=r"no report\.json"):
        read_report(tmp_path / "missing")


def test_line_chart_breaks_lines_at_missing_samples() -> None:
    points = [(float(t), 1.0) for t in range(10)] + [(float(t), 2.0) for t in range(20, 30)]
    svg = line_chart("h", [Series(label="v2", points=points)], x_label="s", y_label="h")
    assert svg.count("<polyline") == 2


def test_line_chart_without_data_says_so() -> None:
    svg = line_chart("empty", [Series(label="x")], x_label="s", y_label="y",
                     shades=[Shade(1, 2, "partition [1]")])  # fmt: skip
    assert "no data" in svg
    ET.fromstring(svg)


def test_ticks_are_round_numbers() -> None:
    assert nice_step(100) == 20
    assert nice_step(7) == 2
    assert ticks(0, 100) == [0, 20, 40, 60, 80, 100]
    assert ticks(0, 0.9)[1] == pytest.approx(0.2)
