"""``aitbc-testnet report``: re-render a run's report from its report.json (markdown, HTML,
JUnit) and compare it with a baseline run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.commands.output import outcome_lines
from orchestrator.report.baseline import (
    DEFAULT_MAX_REGRESSION,
    format_comparison,
    parse_regression,
)
from orchestrator.stages.report import rerender


def register(app: typer.Typer) -> None:
    @app.command(
        help=(
            "Re-render a run's report (report.md, report.html, junit.xml) from its report.json "
            "and, with --baseline, compare TPS and the finality and end-to-end latency "
            "quantiles with another run. RUN is the --out folder of `run`/`collect`, a run "
            "directory (its report/ folder) or a report.json. Exits 1 when the run failed its "
            "criteria or regressed by more than --max-regression against the baseline.\n\n"
            "Example: aitbc-testnet report out/tonight --baseline out/last-night "
            "--max-regression 10%"
        )
    )
    def report(
        run: Annotated[
            Path,
            typer.Argument(
                metavar="RUN", help="Folder (or file) holding report.json.", show_default=False
            ),
        ],
        baseline: Annotated[
            Path | None,
            typer.Option(
                "--baseline",
                "-b",
                help="Another run's folder or report.json to compare with.",
                show_default=False,
            ),
        ] = None,
        max_regression: Annotated[
            str,
            typer.Option(
                "--max-regression",
                help="How much worse than the baseline a metric may be, e.g. 10% or 0.1.",
            ),
        ] = f"{DEFAULT_MAX_REGRESSION:.0%}",
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                "-o",
                help="Where to write the rendered files (default: next to report.json).",
                show_default=False,
            ),
        ] = None,
    ) -> None:
        limit = parse_regression(max_regression)
        result = rerender(run, baseline, limit, out)
        for line in outcome_lines(result.report, result.files):
            typer.echo(line)
        comparison = result.comparison
        if comparison is not None:
            typer.echo(format_comparison(comparison))
        if not result.report.passed or (comparison is not None and comparison.regressed):
            raise typer.Exit(code=1)
