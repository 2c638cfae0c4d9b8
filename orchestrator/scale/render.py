"""Render a ``ScaleReport`` as ``scale.md`` and ``scale.html`` (plots against the validator
count, drawn by the campaign report's own ``line_chart``; simulated counts are their own
series, labelled so), next to ``scale.json``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2
from markupsafe import Markup

from orchestrator.report.model import Series
from orchestrator.report.render import format_number, line_chart, template_environment
from orchestrator.scale.model import ScaleReport, ScaleRow, write_scale_report

MARKDOWN_FILE = "scale.md"
HTML_FILE = "scale.html"
X_LABEL = "validators (N)"


@dataclass(frozen=True)
class ScaleFiles:
    json: Path
    markdown: Path
    html: Path


@dataclass(frozen=True)
class Plot:
    """One chart: a title, the y axis, and the row figures it draws (label -> getter)."""

    name: str
    title: str
    y_label: str
    figures: tuple[tuple[str, Callable[[ScaleRow], float | None]], ...]


PLOTS = (
    Plot("tps", "Committed TPS against N", "tx/s", (("committed", lambda r: r.tps),)),
    Plot(
        "finality",
        "Finality against N",
        "finality (ms)",
        (("p50", lambda r: r.finality_p50_ms), ("p99", lambda r: r.finality_p99_ms)),
    ),
    Plot(
        "cpu",
        "CPU per committed block, one validator",
        "CPU ms / block",
        (("cpu", lambda r: r.cpu_ms_per_block),),
    ),
    Plot(
        "rss",
        "Resident memory per validator",
        "MiB",
        (("rss", lambda r: r.rss_mib_per_validator),),
    ),
)


def plot_series(rows: list[ScaleRow], plot: Plot) -> list[Series]:
    """A plot's series: per figure, the real counts and the simulated ones apart."""
    series = []
    for label, figure in plot.figures:
        for simulated in (False, True):
            points = [
                (float(row.validators), value)
                for row in rows
                if row.simulated is simulated and (value := figure(row)) is not None
            ]
            if points:
                kind = "simulated" if simulated else "real"
                series.append(Series(label=f"{label} ({kind})", points=points))
    return series


def charts(report: ScaleReport) -> dict[str, str]:
    """Every plot of the sweep as an SVG string, by plot name."""
    rows = sorted(report.rows, key=lambda row: row.validators)
    counts = [float(row.validators) for row in rows]
    x_range = (min(counts), max(counts)) if counts else None
    return {
        plot.name: line_chart(
            plot.title, plot_series(rows, plot), x_label=X_LABEL, y_label=plot.y_label,
            x_range=x_range,
        )
        for plot in PLOTS
    }  # fmt: skip


def _context(report: ScaleReport) -> dict[str, object]:
    return {
        "report": report,
        "rows": sorted(report.rows, key=lambda row: row.validators),
        "verdict": "PASSED" if report.passed else "FAILED",
        "any_simulated": any(row.simulated for row in report.rows),
    }


def _environment() -> jinja2.Environment:
    return template_environment("orchestrator.scale", {"fmt": format_number})


def render_markdown(report: ScaleReport) -> str:
    return _environment().get_template("scale.md.j2").render(**_context(report))


def render_html(report: ScaleReport) -> str:
    plots = {name: Markup(svg) for name, svg in charts(report).items()}
    return _environment().get_template("scale.html.j2").render(plots=plots, **_context(report))


def write_scale_outputs(report: ScaleReport, out_dir: Path) -> ScaleFiles:
    """Write scale.json, scale.md and scale.html into ``out_dir``."""
    json_path = write_scale_report(report, out_dir)
    markdown = out_dir / MARKDOWN_FILE
    markdown.write_text(render_markdown(report), encoding="utf-8")
    html = out_dir / HTML_FILE
    html.write_text(render_html(report), encoding="utf-8")
    return ScaleFiles(json=json_path, markdown=markdown, html=html)
