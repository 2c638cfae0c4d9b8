"""A capacity search as ``search.md`` and ``search.html`` next to its ``search.json``: the
conclusion (the knee with its confidence intervals, what bounds it), the latency-throughput
curve (p50 and p99 against achieved TPS, the SLO and the knee marked), offered vs achieved, every
point with its verdict and every trial. The plots are the report's inline SVG ``line_chart``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import jinja2
from markupsafe import Markup

from orchestrator.report.model import Series
from orchestrator.report.render import format_number, line_chart, template_environment
from orchestrator.search.model import Estimate, Point, SearchReport, write_search

__all__ = ["SEARCH_HTML", "SEARCH_MARKDOWN", "SearchFiles", "charts", "write_search_outputs"]

SEARCH_MARKDOWN = "search.md"
SEARCH_HTML = "search.html"


@dataclass(frozen=True)
class SearchFiles:
    json: Path
    markdown: Path
    html: Path


def _measured(report: SearchReport) -> list[Point]:
    """The points with an achieved TPS, by achieved TPS."""
    points = [p for p in report.result.points if p.achieved_tps is not None]
    return sorted(points, key=lambda p: p.achieved_tps.mean if p.achieved_tps else 0.0)


def charts(report: SearchReport) -> dict[str, str]:
    """``latency`` (p50/p99 against achieved TPS) and ``throughput`` (achieved against
    offered), SVG, the knee marked."""
    result = report.result
    measured = _measured(report)
    knee = result.knee

    def curve(label: str, attribute: str) -> Series:
        points = []
        for point in measured:
            value: Estimate | None = getattr(point, attribute)
            if value is not None and point.achieved_tps is not None:
                points.append((point.achieved_tps.mean, value.mean))
        return Series(label=label, points=points)

    xs = [p.achieved_tps.mean for p in measured if p.achieved_tps is not None]
    slo = Series(
        label=f"SLO p99 {report.settings.slo_p99_ms:g} ms",
        points=[(min(xs), report.settings.slo_p99_ms), (max(xs), report.settings.slo_p99_ms)]
        if xs
        else [],
    )
    knee_marks = []
    if knee is not None and knee.achieved_tps is not None:
        knee_marks = [(knee.achieved_tps.mean, f"knee {knee.rate:g} tx/s")]
    by_rate = sorted(result.points, key=lambda p: p.rate)
    achieved = Series(
        label="achieved (mean)",
        points=[(p.rate, p.achieved_tps.mean) for p in by_rate if p.achieved_tps is not None],
    )
    rates = [p.rate for p in by_rate]
    offered = Series(label="offered (y = x)", points=[(r, r) for r in rates])
    return {
        "latency": line_chart(
            "Latency against throughput",
            [curve("p50", "p50_ms"), curve("p99", "p99_ms"), slo],
            x_label="achieved TPS (mean of the trials)",
            y_label="latency (ms)",
            marks=knee_marks,
            max_gap=math.inf,
        ),
        "throughput": line_chart(
            "Offered against achieved",
            [achieved, offered],
            x_label="offered TPS",
            y_label="TPS",
            marks=[] if knee is None else [(knee.rate, f"knee {knee.rate:g} tx/s")],
            max_gap=math.inf,
        ),
    }


def _estimate(value: Estimate | None, count: bool = False) -> str:
    return "n/a" if value is None else value.describe(count=count)


def _ratio(value: Estimate | None) -> str:
    if value is None:
        return "n/a"
    if value.low is None or value.high is None:
        return f"{value.mean:.1%}"
    return f"{value.mean:.1%} [{value.low:.1%}, {value.high:.1%}]"


def _environment() -> jinja2.Environment:
    return template_environment(
        "orchestrator.search", {"estimate": _estimate, "ratio": _ratio, "num": format_number}
    )


def _context(report: SearchReport) -> dict[str, object]:
    return {
        "report": report,
        "result": report.result,
        "settings": report.settings,
        "knee": report.result.knee,
        "points": sorted(report.result.points, key=lambda p: p.rate),
    }


def render_search_markdown(report: SearchReport) -> str:
    return _environment().get_template("search.md.j2").render(**_context(report))


def render_search_html(report: SearchReport) -> str:
    plots = {name: Markup(svg) for name, svg in charts(report).items()}
    return _environment().get_template("search.html.j2").render(plots=plots, **_context(report))


def write_search_outputs(report: SearchReport, out_dir: Path) -> SearchFiles:
    """Write search.json, search.md and search.html into ``out_dir``."""
    json_path = write_search(report, out_dir)
    markdown = out_dir / SEARCH_MARKDOWN
    markdown.write_text(render_search_markdown(report), encoding="utf-8")
    html = out_dir / SEARCH_HTML
    html.write_text(render_search_html(report), encoding="utf-8")
    return SearchFiles(json=json_path, markdown=markdown, html=html)
