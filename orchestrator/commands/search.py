"""``aitbc-testnet search``: the capacity search of a scenario's network (``orchestrator.search``)
on a live platform (deployed once) or in the simulator; writes search.json, search.md and
search.html.

Exit codes: 0 the search found the highest passing rate (or every rate passed up to
--max-tps), 1 no rate passed, 2 bad input, 3 infrastructure failure, 130 Ctrl-C (what was
measured is written first).
"""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from orchestrator.commands.options import (
    DEFAULT_RUN_DIR,
    BasePortOption,
    KeepOption,
    OutOption,
    PlatformName,
    PlatformOption,
    ReadyTimeoutOption,
    RunDirOption,
    RunIdOption,
    ScenarioArgument,
    SetOption,
    load_plan,
    platform_options,
)
from orchestrator.commands.output import echo_progress
from orchestrator.errors import UsageError
from orchestrator.platforms import get_platform
from orchestrator.platforms.capabilities import Simulator
from orchestrator.scenario.durations import parse_duration
from orchestrator.scenario.plan import Plan
from orchestrator.search.model import SearchSettings
from orchestrator.search.runner import SearchOutcome, search_live, search_simulated
from orchestrator.stages.up import DEFAULT_READY_TIMEOUT_S

INTERRUPTED_EXIT = 130
DEFAULT_RANGE = 32.0
"""--max-tps defaults to this many times --start-tps (five doublings)."""


def _seconds(flag: str, text: str, *, positive: bool) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise UsageError(f"{flag}: {error}") from None
    if positive and seconds <= 0:
        raise UsageError(f"{flag} {text}: give a positive duration such as 20s")
    return seconds


def _slo(plan: Plan, given: float | None) -> float:
    if given is not None:
        return given
    criteria = plan.criteria
    found = criteria.max_e2e_p99_ms or criteria.max_finality_p99_ms
    if found is None:
        raise UsageError(
            f"--slo-p99-ms: scenario {plan.name} sets neither criteria.max_e2e_p99_ms nor "
            "criteria.max_finality_p99_ms: give the p99 a passing rate must stay under, e.g. "
            "--slo-p99-ms 2000"
        )
    return found


def _outcome_lines(outcome: SearchOutcome) -> list[str]:
    report, files = outcome.report, outcome.files
    result = report.result
    label = " (SIMULATED)" if report.simulated else ""
    lines = [f"{report.scenario}{label}: {result.conclusion}"]
    knee = result.knee
    if knee is not None:
        achieved = "n/a" if knee.achieved_tps is None else knee.achieved_tps.describe()
        p99 = "n/a" if knee.p99_ms is None else knee.p99_ms.describe()
        lines.append(f"  knee: {knee.rate:g} tx/s offered, achieved {achieved} tx/s, p99 {p99} ms")
    lines.append(f"  limited by: {result.limited_by.value}; {len(result.points)} rate(s) measured")
    lines.append(f"search: {files.html}")
    lines.append(f"        {files.markdown}, {files.json}")
    return lines


def register(app: typer.Typer) -> None:
    @app.command(
        help=(
            "Find the highest offered rate the scenario's network carries: deploy once, then "
            "open-loop load steps from --start-tps doubling up to --max-tps, then bisection, "
            "each rate measured --trials times (mean and 95 % confidence interval). A rate "
            "passes when achieved/offered >= --min-achieved, the end-to-end p99 (exact, from "
            "the load generator's samples) <= --slo-p99-ms and the mempools do not grow. When "
            "the load generator says it was saturated it gets more users and the trial runs "
            "again; a rate it cannot drive is reported as its limit, not the network's. The "
            "scenario's faults are not run. With --platform sim every trial is one simulation "
            "(the report says what the simulator can and cannot tell). Writes search.json, "
            "search.md and search.html (latency-throughput curve, offered vs achieved, the "
            "knee marked).\n\n"
            "Exit codes: 0 found, 1 no rate passed, 2 bad input, 3 infrastructure failure.\n\n"
            "Example: aitbc-testnet search devnet-smoke --out out/capacity --slo-p99-ms 3000"
        )
    )
    def search(
        scenario: ScenarioArgument,
        out: OutOption = None,
        slo_p99_ms: Annotated[
            float | None,
            typer.Option(
                "--slo-p99-ms",
                min=1,
                help="The end-to-end p99 (ms) a passing rate stays under (default: the "
                "scenario's max_e2e_p99_ms, else max_finality_p99_ms).",
                show_default=False,
            ),
        ] = None,
        trials: Annotated[
            int, typer.Option("--trials", min=1, max=30, help="Trials per rate.")
        ] = 3,
        platform: PlatformOption = PlatformName.local,
        start_tps: Annotated[
            float | None,
            typer.Option(
                "--start-tps",
                min=0.1,
                help="The first rate (default: the scenario's load.tps).",
                show_default=False,
            ),
        ] = None,
        max_tps: Annotated[
            float | None,
            typer.Option(
                "--max-tps",
                min=0.1,
                help=f"No rate above this (default: {DEFAULT_RANGE:g} x --start-tps).",
                show_default=False,
            ),
        ] = None,
        step: Annotated[
            str, typer.Option("--step", help="Length of one trial's load step.")
        ] = "20s",
        warmup: Annotated[
            str, typer.Option("--warmup", help="Start of each step left out of the measure.")
        ] = "5s",
        cooldown: Annotated[
            str, typer.Option("--cooldown", help="End of each step left out of the measure.")
        ] = "2s",
        min_achieved: Annotated[
            float,
            typer.Option(
                "--min-achieved", min=0.01, max=1.0, help="Achieved/offered a rate must reach."
            ),
        ] = 0.95,
        mempool_tolerance: Annotated[
            float,
            typer.Option(
                "--mempool-tolerance",
                min=0.0,
                help="Share of the window's offered transactions the mempools may gain (at "
                "least two batches per validator) before they count as growing.",
            ),
        ] = 0.02,
        resolution: Annotated[
            float,
            typer.Option(
                "--resolution",
                min=0.001,
                help="Bisection stops when (failing - passing) / passing <= this.",
            ),
        ] = 0.1,
        max_points: Annotated[
            int, typer.Option("--max-points", min=1, help="Distinct rates at most.")
        ] = 12,
        max_duration: Annotated[
            str,
            typer.Option(
                "--max-duration",
                help="No rate starts when the longest so far would end past this (wall time).",
            ),
        ] = "60m",
        sets: SetOption = None,
        run_dir: RunDirOption = DEFAULT_RUN_DIR,
        run_id: RunIdOption = None,
        keep: KeepOption = False,
        ready_timeout: ReadyTimeoutOption = DEFAULT_READY_TIMEOUT_S,
        base_port: BasePortOption = None,
    ) -> None:
        plan = load_plan(scenario, sets, platform, run_id)
        start = start_tps if start_tps is not None else plan.load.tps
        step_s = _seconds("--step", step, positive=True)
        warmup_s = _seconds("--warmup", warmup, positive=False)
        cooldown_s = _seconds("--cooldown", cooldown, positive=False)
        if warmup_s + cooldown_s >= step_s:
            raise UsageError(
                f"--warmup {warmup} + --cooldown {cooldown} leave nothing of --step {step} to "
                "measure: lengthen --step or shorten them"
            )
        try:
            settings = SearchSettings(
                start_tps=start,
                max_tps=max_tps if max_tps is not None else start * DEFAULT_RANGE,
                slo_p99_ms=_slo(plan, slo_p99_ms),
                trials=trials,
                min_achieved_ratio=min_achieved,
                mempool_tolerance=mempool_tolerance,
                resolution=resolution,
                max_points=max_points,
                max_duration_s=_seconds("--max-duration", max_duration, positive=True),
                step_s=step_s,
                warmup_s=warmup_s,
                cooldown_s=cooldown_s,
            )
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()
            )
            raise UsageError(f"search settings: {problems}") from None
        if settings.max_tps < settings.start_tps:
            raise UsageError(
                f"--max-tps {settings.max_tps:g} is below the start rate "
                f"{settings.start_tps:g}: raise --max-tps or lower --start-tps"
            )
        directory = run_dir / plan.run_id
        out_dir = out if out is not None else directory / "search"
        typer.echo(
            f"search {plan.run_id}: {plan.name} on {platform.value}; files in {directory}, "
            f"reports in {out_dir}",
            err=True,
        )
        try:
            if platform is PlatformName.sim:

                def simulator(number: int) -> Simulator:
                    made = get_platform("sim", directory / f"sim-{number:03d}")
                    assert isinstance(made, Simulator)
                    return made

                outcome = search_simulated(
                    plan, simulator, settings, out_dir, on_progress=echo_progress
                )
            else:
                target = get_platform(
                    platform.value, directory, **platform_options(platform, base_port=base_port)
                )
                outcome = search_live(
                    plan,
                    target,
                    settings,
                    out_dir,
                    keep=keep,
                    on_progress=echo_progress,
                    ready_timeout_s=ready_timeout,
                )
        except KeyboardInterrupt:
            typer.echo(
                f"interrupted: search {plan.run_id} stopped"
                + (" (--keep: left running)" if keep else " and its processes ended")
                + f"; what was measured is in {out_dir}",
                err=True,
            )
            raise typer.Exit(code=INTERRUPTED_EXIT) from None
        for line in _outcome_lines(outcome):
            typer.echo(line)
        if outcome.kept:
            typer.echo(f"the testnet still runs: aitbc-testnet down --run-id {plan.run_id}")
        if outcome.report.result.knee_tps is None:
            raise typer.Exit(code=1)
