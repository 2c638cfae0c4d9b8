"""``aitbc-testnet collect``: measure, check and judge a live run driven stage by stage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.campaign import collect_run
from orchestrator.cli import DEFAULT_RUN_DIR, RunDirOption
from orchestrator.commands import ExistingRunIdOption, attach_run, require_local
from orchestrator.commands.report import echo_progress, outcome_lines


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
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                "-o",
                help="Folder for the reports (default: <run-dir>/<run-id>/report).",
                show_default=False,
            ),
        ] = None,
        run_dir: RunDirOption = DEFAULT_RUN_DIR,
    ) -> None:
        platform = require_local(attach_run(run_dir, run_id), "collect")
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
