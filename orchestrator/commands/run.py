"""``aitbc-testnet run``: a whole campaign, from up to down, judged and reported."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.commands.options import (
    DEFAULT_RUN_DIR,
    OutOption,
    PlatformName,
    PlatformOption,
    ReadyTimeoutOption,
    RunDirOption,
    RunIdOption,
    ScenarioArgument,
    SetOption,
    load_plan,
)
from orchestrator.commands.output import echo_progress, outcome_lines
from orchestrator.errors import AitbcTestnetError
from orchestrator.platforms import get_platform
from orchestrator.platforms.capabilities import Simulator
from orchestrator.stages.campaign import DEFAULT_READY_TIMEOUT_S, Campaign
from orchestrator.stages.collect import ARTIFACTS_DIR
from orchestrator.stages.simulate import run_simulated

INTERRUPTED_EXIT = 130


def register(app: typer.Typer) -> None:
    @app.command(
        help=(
            "Run a whole campaign: up, ready, warm-up, load with the fault timeline, "
            "cool-down, collect, safety check, criteria, report, down (also on failure and "
            "Ctrl-C; --keep leaves the testnet running). Writes report.json, report.md, "
            "report.html and junit.xml into --out. With --platform sim the simulator runs the "
            "scenario and the report is labelled simulated.\n\n"
            "Exit codes: 0 criteria passed, 1 criteria failed, 2 bad input, 3 infrastructure "
            "failure.\n\n"
            "Example: aitbc-testnet run devnet-smoke --out out/demo --set load.tps=200"
        )
    )
    def run(
        scenario: ScenarioArgument,
        out: OutOption = None,
        keep: Annotated[
            bool, typer.Option("--keep", help="Leave the testnet running after the report.")
        ] = False,
        platform: PlatformOption = PlatformName.local,
        sets: SetOption = None,
        run_dir: RunDirOption = DEFAULT_RUN_DIR,
        run_id: RunIdOption = None,
        ready_timeout: ReadyTimeoutOption = DEFAULT_READY_TIMEOUT_S,
        base_port: Annotated[
            int | None,
            typer.Option(
                "--base-port",
                min=1,
                max=65535,
                help="local: validators on BASE..BASE+2N-1, Prometheus and the load "
                "generator's metrics right after (default: free ports).",
                show_default=False,
            ),
        ] = None,
    ) -> None:
        plan = load_plan(scenario, sets, platform, run_id)
        directory = run_dir / plan.run_id
        out_dir = out if out is not None else directory / "report"
        local = platform is PlatformName.local and base_port is not None
        options = {"base_port": base_port} if local else {}
        target = get_platform(platform.value, directory, **options)
        typer.echo(
            f"run {plan.run_id}: {plan.name} on {platform.value}; files in {directory}, "
            f"reports in {out_dir}",
            err=True,
        )
        try:
            if isinstance(target, Simulator):
                result = run_simulated(
                    plan, target, out_dir, on_progress=echo_progress, run_dir=directory
                )
            else:
                result = Campaign(
                    plan,
                    target,
                    out_dir,
                    run_dir=directory,
                    keep=keep,
                    on_progress=echo_progress,
                    ready_timeout_s=ready_timeout,
                ).run()
        except AitbcTestnetError:
            artifacts = out_dir / ARTIFACTS_DIR
            if artifacts.is_dir():
                typer.echo(f"logs of the failed run: {artifacts} (and {directory})", err=True)
            raise
        except KeyboardInterrupt:
            typer.echo(
                f"interrupted: run {plan.run_id} was stopped"
                + (" (--keep: left running)" if keep else " and its processes ended")
                + f"; logs in {directory}",
                err=True,
            )
            raise typer.Exit(code=INTERRUPTED_EXIT) from None
        for line in outcome_lines(result.report, result.files):
            typer.echo(line)
        if result.kept:
            typer.echo(f"the testnet still runs: aitbc-testnet down --run-id {plan.run_id}")
        if not result.report.passed:
            raise typer.Exit(code=1)
