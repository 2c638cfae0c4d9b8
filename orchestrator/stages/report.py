"""The report stage: write a report's files, or render a finished run's report again and
compare it with a baseline run (``aitbc-testnet report``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.report.baseline import BaselineComparison, compare
from orchestrator.report.model import Report, find_report, read_report
from orchestrator.report.render import ReportFiles, write_outputs

__all__ = ["Rerendered", "rerender", "write_outputs"]


@dataclass(frozen=True)
class Rerendered:
    report: Report
    files: ReportFiles
    comparison: BaselineComparison | None


def rerender(
    run: Path, baseline: Path | None, max_regression: float, out: Path | None = None
) -> Rerendered:
    """Read the report of ``run`` (a folder, a run directory or a report.json), compare it
    with ``baseline`` when given, and write report.md, report.html and junit.xml next to it
    (or into ``out``)."""
    current = read_report(run)
    comparison = None
    if baseline is not None:
        comparison = compare(current, read_report(baseline), max_regression)
    target = out if out is not None else find_report(run).parent
    return Rerendered(current, write_outputs(current, target, comparison), comparison)
