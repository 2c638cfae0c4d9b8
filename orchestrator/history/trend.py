"""The trend page: one standalone HTML file, per series (scenario, platform, parameters) a plot
per headline metric over its runs, with change points marked (a dashed line) and regressions
shaded and labelled with their change and commit range, then the runs with their commits.

The plots are the report's own inline SVG charts (``orchestrator.report.line_chart``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path

import jinja2
from markupsafe import Markup

from orchestrator.history.analysis import MetricHistory
from orchestrator.history.store import RunRecord, SeriesKey, SeriesSummary
from orchestrator.report.model import Series
from orchestrator.report.render import Shade, line_chart

TREND_FILE = "trend.html"

_PAGE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AITBC testnet history</title>
<style>
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: left; font-size: 13px; }
.regression { color: #a33; font-weight: bold; }
pre { background: #f6f6f6; padding: 0.5em; white-space: pre-wrap; }
</style></head><body>
<h1>AITBC testnet history</h1>
<p>{{ total_runs }} runs in {{ sections | length }} series. Change points: E-divisive means with
a permutation test; shaded: a regression (worse by at least {{ min_change }} of the earlier
level), labelled with the commit range (last run before..first run after).</p>
{% for section in sections %}
<h2>{{ section.summary.key.describe() }}: {{ section.summary.runs }} runs</h2>
<details><summary>parameters</summary><pre>{{ section.summary.params_json }}</pre></details>
{% if section.regressions %}<ul>
{% for regression in section.regressions %}
<li class="regression">{{ regression.describe() }}</li>
{% endfor %}</ul>{% else %}<p>No regression.</p>{% endif %}
{% for plot in section.plots %}{{ plot }}
{% endfor %}
<table><tr><th>run #</th><th>started (UTC)</th><th>run id</th><th>commit</th><th>image</th>
<th>passed</th></tr>
{% for run in section.runs %}<tr><td>{{ loop.index }}</td><td>{{ run.started }}</td>
<td>{{ run.run_id }}</td><td>{{ run.commit_label }}</td><td>{{ run.image_tag }}</td>
<td>{{ "yes" if run.passed else "no" }}</td></tr>
{% endfor %}</table>
{% endfor %}
</body></html>
"""
)


def metric_chart(history: MetricHistory, run_numbers: dict[int, int]) -> str:
    """The SVG plot of one metric: its values by run number, the segment means between change
    points, regressions shaded, other change points as dashed lines."""
    xs = [run_numbers[run.id] for run in history.runs]
    values = Series(label=history.metric.name, points=list(zip(xs, history.values, strict=True)))
    bounds = [0, *(change.index for change in history.change_points), len(xs)]
    level: list[tuple[float, float]] = []  # one point per run: drawn as one stepped line
    for start, end in pairwise(bounds):
        mean = sum(history.values[start:end]) / (end - start)
        level += [(x, mean) for x in xs[start:end]]
    regressions = {regression.change.index for regression in history.regressions}
    shades = [
        Shade(
            xs[regression.change.index - 1],
            xs[regression.change.index],
            f"{regression.last_before.commit_label[:7]}..{regression.first_after.commit_label[:7]}",
        )
        for regression in history.regressions
    ]
    marks = [
        ((xs[change.index - 1] + xs[change.index]) / 2, "change")
        for change in history.change_points
        if change.index not in regressions
    ]
    return line_chart(
        f"{history.metric.name} ({history.metric.meaning}; {history.metric.better} is better)",
        [values, Series(label="segment mean", points=level)],
        x_label="run # (oldest to newest)",
        y_label=history.metric.unit,
        shades=shades,
        marks=marks,
    )


def render_trend(
    summaries: Sequence[SeriesSummary],
    runs_by_key: Mapping[SeriesKey, Sequence[RunRecord]],
    histories: Sequence[MetricHistory],
    min_change: float,
) -> str:
    """The trend page for ``summaries`` (their runs in ``runs_by_key``, oldest first)."""
    sections = []
    for summary in summaries:
        runs = runs_by_key.get(summary.key, ())
        numbers = {run.id: position for position, run in enumerate(runs, start=1)}
        mine = [history for history in histories if history.key == summary.key]
        sections.append(
            {
                "summary": summary,
                "runs": runs,
                "regressions": [item for history in mine for item in history.regressions],
                "plots": [Markup(metric_chart(history, numbers)) for history in mine],
            }
        )
    return _PAGE.render(
        sections=sections,
        total_runs=sum(summary.runs for summary in summaries),
        min_change=f"{min_change:.0%}",
    )


def write_trend(page: str, out: Path) -> Path:
    """Write ``page`` to ``out`` (a folder gets ``trend.html``); returns the file."""
    target = out / TREND_FILE if out.is_dir() or not out.suffix else out
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return target
