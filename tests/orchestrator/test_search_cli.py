"""``aitbc-testnet search``: bad input (exit 2, before anything is deployed), the search on the
simulator through the CLI (real simulations), what an interrupted search keeps, and the
rendered report (the knee marked on the latency-throughput curve)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from orchestrator_support import needs_simulator
from search_support import ModelNetwork, search, settings
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.errors import PlatformError
from orchestrator.external.simulator import SimRunResult
from orchestrator.platforms import get_platform
from orchestrator.platforms.capabilities import Simulator
from orchestrator.scenario.loader import load_scenario
from orchestrator.scenario.plan import Plan, resolve_plan
from orchestrator.search.model import (
    Limit,
    SearchReport,
    SearchSettings,
    Verdict,
    read_search,
)
from orchestrator.search.render import write_search_outputs
from orchestrator.search.runner import search_simulated

SIM_FAST = ("--set", "sim.blocks=40")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--step", "5s", "--warmup", "4s", "--cooldown", "1s"], "leave nothing of --step 5s"),
        (["--max-tps", "10"], "--max-tps 10 is below the start rate 300"),
        (["--step", "ten"], "--step: "),
        (["--max-duration", "0s"], "--max-duration 0s: give a positive duration"),
        (["--trials", "0"], "Invalid value for '--trials'"),
    ],
    ids=["no-window", "max-below-start", "bad-step", "no-budget", "no-trials"],
)
def test_bad_input_exits_2_before_deploying(
    runner: CliRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(
        app, ["search", "devnet-smoke", "--run-dir", str(tmp_path / "runs"), *args]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()  # nothing was deployed


def test_a_scenario_without_a_latency_criterion_needs_an_slo(
    runner: CliRunner, write_scenario: Callable[[str], Path], tmp_path: Path
) -> None:
    path = write_scenario(
        """\
        name: tiny
        network: {validators: 4, authorities: 4}
        load: {duration: 30s, warmup: 5s, cooldown: 5s}
        """
    )
    result = runner.invoke(app, ["search", str(path), "--run-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert "--slo-p99-ms: scenario tiny sets neither criteria.max_e2e_p99_ms" in result.output


@needs_simulator
def test_the_search_on_the_simulator_ramps_to_max_tps_with_repeated_trials(
    runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["search", "devnet-smoke", "--platform", "sim", "--trials", "2", "--max-tps", "1200",
         "--run-dir", str(tmp_path / "runs"), "--out", str(out), *SIM_FAST],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "devnet-smoke (SIMULATED): every rate passed up to --max-tps 1200" in result.output
    report = read_search(out)
    assert report.simulated and report.platform == "sim"
    assert report.result.limited_by is Limit.MAX_RATE and report.result.knee_tps == 1200
    assert [p.rate for p in report.result.points] == [300, 600, 1200]
    for point in report.result.points:
        assert point.verdict is Verdict.PASS and len(point.trials) == 2
        assert point.achieved_ratio is not None and point.achieved_ratio.mean >= 0.95
        assert point.p99_ms is not None and point.p99_ms.low is not None  # an interval
        assert [t.notes[0].split(",")[0] for t in point.trials] == ["seed 1", "seed 2"]
    assert any("SIMULATED" in note for note in report.notes)
    assert any("not a capacity" in note for note in report.notes)
    html = (out / "search.html").read_text()
    assert html.count("<svg ") == 2 and "knee 1200 tx/s" in html
    assert "| 1200 (knee) | ramp | pass |" in (out / "search.md").read_text()


@needs_simulator
def test_no_passing_rate_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["search", "devnet-smoke", "--platform", "sim", "--trials", "1", "--slo-p99-ms", "100",
         "--max-points", "2", "--run-dir", str(tmp_path / "runs"), "--out", str(out),
         *SIM_FAST],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    report = read_search(out)
    assert [(p.rate, p.phase.value) for p in report.result.points] == [
        (300, "ramp"),
        (150, "down"),
    ]
    assert report.result.knee_tps is None
    assert "no rate passed down to 150 tx/s" in report.result.conclusion
    assert "budget ran out" in report.result.conclusion


class BrokenSimulator(Simulator):
    """A simulator whose runs fail (a crashed simulation)."""

    name = "sim"

    def image_tag(self) -> str:
        return "sim"

    def budget_s(self, plan: Plan) -> float:
        return 60.0

    def run(self, plan: Plan, timeout_s: float) -> SimRunResult:
        raise PlatformError("the simulator crashed on purpose")


@needs_simulator
def test_an_interrupted_search_keeps_what_it_measured(tmp_path: Path) -> None:
    plan = resolve_plan(load_scenario("devnet-smoke", ["sim.blocks=40"]), platform="sim")
    chosen = SearchSettings(
        start_tps=300, max_tps=1200, slo_p99_ms=5000, trials=2, max_duration_s=600,
        step_s=20, warmup_s=5, cooldown_s=2,
    )  # fmt: skip

    def simulator(number: int) -> Simulator:
        if number == 0:
            made = get_platform("sim", tmp_path / "sim-000")
            assert isinstance(made, Simulator)
            return made
        return BrokenSimulator()

    with pytest.raises(PlatformError, match="crashed on purpose"):
        search_simulated(plan, simulator, chosen, tmp_path / "out")
    report = read_search(tmp_path / "out")
    assert report.result.limited_by is Limit.INTERRUPTED
    (unfinished,) = report.result.points
    assert unfinished.verdict is Verdict.INCOMPLETE and len(unfinished.trials) == 1
    assert "interrupted after 1 rate(s) (the simulator crashed on purpose)" in (
        report.result.conclusion
    )


def test_the_report_marks_the_knee_on_the_curves(tmp_path: Path) -> None:
    result = search(ModelNetwork(capacity=1000.0)).run()
    report = SearchReport(
        run_id="r1",
        scenario="devnet-smoke",
        platform="local",
        started="2026-01-01T00:00:00Z",
        ended="2026-01-01T01:00:00Z",
        settings=settings(),
        result=result,
    )
    files = write_search_outputs(report, tmp_path)
    assert read_search(files.json) == report
    document = json.loads(files.json.read_text())
    assert sum(len(p["trials"]) for p in document["result"]["points"]) == 3 * len(result.points)
    html = files.html.read_text()
    assert html.count("<svg ") == 2
    assert html.count('class="mark"') == 2 and "knee 725 tx/s" in html
    assert html.count('class="series"') >= 4  # p50, p99, the SLO; achieved, offered
    assert '<tr class="knee">' in html
    markdown = files.markdown.read_text()
    assert "knee at 725 tx/s; 750 tx/s failed: p99" in markdown
    assert "| 725 (knee) | bisect | pass |" in markdown
    assert "| 800 | ramp | fail |" in markdown
