"""``aitbc-testnet report``: re-render a run's report from its report.json (markdown, HTML,
JUnit) and compare it with a baseline run. Also the terminal output every reporting command
shares (``outcome_lines``, ``echo_progress``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.baseline import (
    DEFAULT_MAX_REGRESSION,
    BaselineComparison,
    compare,
    format_comparison,
    parse_regression,
)
from orchestrator.campaign import ProgressEvent
from orchestrator.progress import format_progress
from orchestrator.report import ReportFiles, write_outputs
from orchestrator.report_model import Report, find_report, read_report


def echo_progress(event: ProgressEvent) -> None:
    """One progress line on stderr: ``[  12.3s] measure: height 120, 298.4 tps, t+25s``."""
    typer.echo(
        format_progress(
            event.elapsed_s, event.stage, height=event.height, tps=event.tps, note=event.message
        ),
        err=True,
    )


def outcome_lines(report: Report, files: ReportFiles) -> list[str]:
    """The verdict, every failed criterion with its value, and where the files are."""
    label = " (SIMULATED)" if report.simulated else ""
    lines = [f"{report.scenario}{label}: {'PASSED' if report.passed else 'FAILED'}"]
    for criterion in report.criteria:
        mark = "ok  " if criterion.passed else "FAIL"
        lines.append(f"  {mark} {criterion.name}: {criterion.explanation}")
    if not report.safety.ok:
        for violation in report.safety.violations[:10]:
            lines.append(f"  safety violation ({violation.kind}): {violation.message}")
    lines.append(f"report: {files.html}")
    lines.append(f"        {files.markdown}, {files.json}, {files.junit}")
    return lines


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
        current = read_report(run)
        comparison: BaselineComparison | None = None
        if baseline is not None:
            comparison = compare(current, read_report(baseline), limit)
        target = out if out is not None else find_report(run).parent
        files = write_outputs(current, target, comparison)
        for line in outcome_lines(current, files):
            typer.echo(line)
        if comparison is not None:
            typer.echo(format_comparison(comparison))
        if not current.passed or (comparison is not None and comparison.regressed):
            raise typer.Exit(code=1)
