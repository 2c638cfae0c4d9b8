"""Render a ``Report`` as ``report.md``, ``report.html`` (jinja2, plots as inline SVG) and
``junit.xml``, next to its ``report.json``.

The plots are drawn here, without matplotlib: ``line_chart`` turns series into an SVG string
(axes with round-number ticks, one polyline per series broken where samples are missing, fault
windows shaded, the measured window marked). Every text that goes into SVG or HTML is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

import jinja2
from markupsafe import Markup

from orchestrator.faults.kinds import instantaneous_kinds
from orchestrator.report.baseline import BaselineComparison
from orchestrator.report.junit import write_junit
from orchestrator.report.model import Report, Series, write_report

MARKDOWN_FILE = "report.md"
HTML_FILE = "report.html"
JUNIT_FILE = "junit.xml"

PALETTE = (
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#7f7f7f", "#bcbd22",
)  # fmt: skip
MAX_PLOTTED_SERIES = 24
"""Height plots of big testnets draw the first validators only (the table lists all)."""


@dataclass(frozen=True)
class Shade:
    """A shaded x range of a chart (a fault window), labelled."""

    start: float
    end: float
    label: str


@dataclass(frozen=True)
class ReportFiles:
    json: Path
    markdown: Path
    html: Path
    junit: Path


# ----------------------------------------------------------------------------- SVG charts


def nice_step(span: float, target_ticks: int = 5) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about ``target_ticks`` ticks."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / target_ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def ticks(low: float, high: float, target_ticks: int = 5) -> list[float]:
    step = nice_step(high - low, target_ticks)
    first = math.ceil(low / step - 1e-9) * step
    values = []
    value = first
    while value <= high + step * 1e-6:
        values.append(round(value, 10))
        value += step
    return values


def _label(value: float) -> str:
    if abs(value) >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def _segments(points: Sequence[tuple[float, float]], gap: float) -> list[list[tuple[float, float]]]:
    """Split a series where consecutive samples are more than ``gap`` apart (a validator that
    was down has no samples: draw nothing there rather than a misleading line)."""
    segments: list[list[tuple[float, float]]] = []
    for point in sorted(points):
        if segments and point[0] - segments[-1][-1][0] <= gap:
            segments[-1].append(point)
        else:
            segments.append([point])
    return segments


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    shades: Sequence[Shade] = (),
    marks: Sequence[tuple[float, str]] = (),
    x_range: tuple[float, float] | None = None,
    width: int = 760,
    height: int = 280,
) -> str:
    """An SVG line chart. ``marks`` are labelled vertical dashed lines (the measured window);
    ``shades`` are labelled x ranges (fault windows)."""
    left, right, top, bottom = 64, 150, 28, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    drawn = [item for item in series if item.points][:MAX_PLOTTED_SERIES]
    xs = [x for item in drawn for x, _ in item.points]
    ys = [y for item in drawn for _, y in item.points]
    if x_range is not None:
        x_low, x_high = x_range
    else:
        x_low, x_high = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x_high <= x_low:
        x_high = x_low + 1.0
    y_low = min(0.0, min(ys)) if ys else 0.0
    y_high = max(ys) * 1.08 if ys and max(ys) > y_low else y_low + 1.0
    y_ticks = ticks(y_low, y_high)
    y_high = max(y_high, y_ticks[-1]) if y_ticks else y_high

    def px(x: float) -> float:
        return left + (x - x_low) / (x_high - x_low) * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y - y_low) / (y_high - y_low) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fff" '
        'stroke="#999"/>',
    ]
    for shade in shades:
        start, end = max(shade.start, x_low), min(shade.end, x_high)
        if end <= start:
            continue
        out.append(
            f'<rect class="fault" x="{px(start):.1f}" y="{top}" width="{px(end) - px(start):.1f}"'
            f' height="{plot_h}" fill="#f4a6a6" fill-opacity="0.35"><title>{escape(shade.label)}'
            "</title></rect>"
        )
        out.append(
            f'<text x="{px(start) + 3:.1f}" y="{top + 12}" fill="#a33">{escape(shade.label)}</text>'
        )
    for value in y_ticks:
        y = py(value)
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
        )
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_label(value)}</text>')
    for value in ticks(x_low, x_high, 8):
        x = px(value)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" '
            'stroke="#999"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{_label(value)}</text>'
        )
    for value, text in marks:
        if x_low <= value <= x_high:
            x = px(value)
            out.append(
                f'<line class="mark" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" '
                'stroke="#555" stroke-dasharray="4 3"/>'
            )
            out.append(
                f'<text x="{x + 3:.1f}" y="{top + plot_h - 4}" fill="#555">{escape(text)}</text>'
            )
    gap = _sample_gap(drawn)
    for position, item in enumerate(drawn):
        color = PALETTE[position % len(PALETTE)]
        for segment in _segments(item.points, gap):
            coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in segment)
            if len(segment) == 1:
                x, y = segment[0]
                out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="1.5" fill="{color}"/>')
            else:
                out.append(
                    f'<polyline class="series" fill="none" stroke="{color}" stroke-width="1.6" '
                    f'points="{coords}"/>'
                )
        legend_y = top + 10 + position * 15
        out.append(
            f'<line x1="{left + plot_w + 12}" x2="{left + plot_w + 30}" y1="{legend_y}" '
            f'y2="{legend_y}" stroke="{color}" stroke-width="2"/>'
        )
        out.append(f'<text x="{left + plot_w + 34}" y="{legend_y + 4}">{escape(item.label)}</text>')
    if not drawn:
        out.append(
            f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
            'fill="#888">no data</text>'
        )
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    out.append(
        f'<text transform="translate(14 {top + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    out.append("</svg>")
    return "\n".join(out)


def _sample_gap(series: Sequence[Series]) -> float:
    """2.5x the typical spacing of samples (a longer gap means missing samples)."""
    spacings = sorted(
        b[0] - a[0]
        for item in series
        for a, b in zip(item.points, item.points[1:], strict=False)
        if b[0] > a[0]
    )
    if not spacings:
        return math.inf
    return 2.5 * spacings[len(spacings) // 2]


def fault_shades(report: Report) -> list[Shade]:
    shades = []
    horizon = _x_extent(report)[1]
    for fault in report.faults:
        if fault.kind in instantaneous_kinds():
            continue
        end = fault.end if fault.end is not None else horizon
        shades.append(Shade(fault.start, end, f"{fault.kind} {fault.ids}"))
    return shades


def _x_extent(report: Report) -> tuple[float, float]:
    xs = [
        x
        for group in (report.series.tps, report.series.finality_ms, report.series.height)
        for item in group
        for x, _ in item.points
    ]
    duration = float(report.params.get("load", {}).get("duration_s", 0.0) or 0.0)
    return (min([0.0, *xs]), max([duration, *xs]))


def charts(report: Report) -> dict[str, str]:
    """The three plots of a report as SVG strings (``tps``, ``finality``, ``height``)."""
    shades = fault_shades(report)
    marks: list[tuple[float, str]] = []
    if report.measured_window is not None:
        marks = [
            (report.measured_window.start, "measured from"),
            (report.measured_window.end, "measured to"),
        ]
    x_range = _x_extent(report)
    x_label = "seconds since load start"
    return {
        "tps": line_chart(
            "Transactions per second",
            report.series.tps,
            x_label=x_label,
            y_label="tx/s",
            shades=shades,
            marks=marks,
            x_range=x_range,
        ),
        "finality": line_chart(
            "Finality quantiles",
            report.series.finality_ms,
            x_label=x_label,
            y_label="finality (ms)",
            shades=shades,
            marks=marks,
            x_range=x_range,
        ),
        "height": line_chart(
            "Committed height per validator",
            report.series.height,
            x_label=x_label,
            y_label="height",
            shades=shades,
            marks=marks,
            x_range=x_range,
        ),
    }


# ----------------------------------------------------------------------------- templates


def _fmt(value: object, digits: int = 4) -> str:
    """Numbers for tables: None -> n/a, floats to ``digits`` significant digits."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 10**digits else f"{value:.{digits}g}"
    return str(value)


def _cell(value: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _environment() -> jinja2.Environment:
    return template_environment("orchestrator.report")


def template_environment(package: str) -> jinja2.Environment:
    """A jinja2 environment over ``package``'s ``templates/`` with the report's filters
    (``fmt``, ``pct``, ``cell``): other reports (the scale sweep's) format numbers alike."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["fmt"] = _fmt
    environment.filters["pct"] = _pct
    environment.filters["cell"] = _cell
    return environment


def _context(report: Report, comparison: BaselineComparison | None) -> dict[str, object]:
    return {
        "report": report,
        "m": report.measurements,
        "comparison": comparison,
        "verdict": "PASSED" if report.passed else "FAILED",
        "failed": report.failed_criteria(),
    }


def render_markdown(report: Report, comparison: BaselineComparison | None = None) -> str:
    return _environment().get_template("report.md.j2").render(**_context(report, comparison))


def render_html(report: Report, comparison: BaselineComparison | None = None) -> str:
    plots = {name: Markup(svg) for name, svg in charts(report).items()}
    return (
        _environment()
        .get_template("report.html.j2")
        .render(plots=plots, **_context(report, comparison))
    )


def write_outputs(
    report: Report, out_dir: Path, comparison: BaselineComparison | None = None
) -> ReportFiles:
    """Write report.json, report.md, report.html and junit.xml into ``out_dir``."""
    json_path = write_report(report, out_dir)
    markdown = out_dir / MARKDOWN_FILE
    markdown.write_text(render_markdown(report, comparison), encoding="utf-8")
    html = out_dir / HTML_FILE
    html.write_text(render_html(report, comparison), encoding="utf-8")
    junit = write_junit(report, out_dir / JUNIT_FILE)
    return ReportFiles(json=json_path, markdown=markdown, html=html, junit=junit)
