"""``aitbc-testnet collect``: measure, check and judge a live run driven stage by stage."""

from __future__ import annotations

import typer

from orchestrator.commands.options import (
    DEFAULT_RUN_DIR,
    ExistingRunIdOption,
    OutOption,
    RunDirOption,
)
from orchestrator.commands.output import echo_progress, outcome_lines
from orchestrator.platforms import attach_run
from orchestrator.stages.collect import collect_run


def register(app: typer.Typer) -> None:
    @app.command(
        help=(
            "Measure a live run (started with `up`, loaded with `load`, faulted with `fault`): "
            "TPS, finality and latency from its Prometheus over the last load's measured "
            "window, every validator's chain compared for safety, the faults' recovery, the "
            "scenario's criteria judged. Writes report.json, report.md, report.html, "
            "junit.xml and the run's artifacts into --out; the run keeps running. Exits 1 when "
            "a criterion failed.\n\n"
            "Example: aitbc-testnet collect --run-id devnet-smoke-20250101-120000 --out out/r1"
        )
    )
    def collect(
        run_id: ExistingRunIdOption = None,
        out: OutOption = None,
        run_dir: RunDirOption = DEFAULT_RUN_DIR,
    ) -> None:
        platform = attach_run(run_dir, run_id)
        directory = platform.run_dir
        try:
            result = collect_run(
                platform,
                out if out is not None else directory / "report",
                on_progress=echo_progress,
            )
        finally:
            platform.close()
        for line in outcome_lines(result.report, result.files):
            typer.echo(line)
        if not result.report.passed:
            raise typer.Exit(code=1)
