"""Read the PromQL queries out of the Grafana dashboards (dashboards/*.json), with template
variables substituted, so that a test can run every panel's query against a live Prometheus.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import AitbcTestnetError

__all__ = ["GRAFANA_BUILTINS", "DashboardError", "PanelQuery", "panel_queries"]

GRAFANA_BUILTINS: Mapping[str, str] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "5m",
}
"""Values for Grafana's built-in variables (the caller's ``variables`` override them). One
minute is at least 4x the scrape interval of every platform, as rate() needs."""

# $name, ${name}, ${name:format}, [[name]], [[name:format]]
_VARIABLE = re.compile(
    r"\$\{(?P<braced>\w+)(?::[^}]*)?\}|\[\[(?P<bracketed>\w+)(?::[^\]]*)?\]\]|\$(?P<plain>\w+)"
)
_PANEL_TYPES_WITHOUT_QUERIES = frozenset({"row", "text", "news", "dashlist"})


class DashboardError(AitbcTestnetError):
    """A dashboard file is unreadable, malformed, or a query uses an unknown variable."""

    exit_code = 2


@dataclass(frozen=True)
class PanelQuery:
    """One PromQL query of one panel, ready to send to Prometheus."""

    dashboard: str
    """The dashboard's title."""
    panel: str
    """The panel's title."""
    ref_id: str
    """The query's refId within the panel (A, B, ...)."""
    expr: str
    """PromQL with every template variable substituted."""


def panel_queries(path: Path, variables: Mapping[str, str]) -> list[PanelQuery]:
    """Every visible query of every panel in the dashboard at ``path`` (rows included), with
    ``variables`` (name -> value, no ``$``) and Grafana's built-ins substituted.

    Raises DashboardError when the file is not a dashboard, a panel that shows data has no
    query, or a query uses a variable that ``variables`` does not give.
    """
    dashboard = _load(path)
    title = str(dashboard.get("title") or path.stem)
    values = {**GRAFANA_BUILTINS, **variables}
    queries: list[PanelQuery] = []
    for panel in _panels(dashboard.get("panels", []), path):
        if panel.get("type") in _PANEL_TYPES_WITHOUT_QUERIES:
            continue
        panel_title = str(panel.get("title") or f"panel {panel.get('id', '?')}")
        targets = [
            target
            for target in panel.get("targets") or []
            if isinstance(target, dict) and not target.get("hide")
        ]
        exprs: list[tuple[dict[str, Any], str]] = []
        for target in targets:
            expr = target.get("expr")
            if isinstance(expr, str) and expr.strip():
                exprs.append((target, expr))
        if not exprs:
            raise DashboardError(
                f"dashboard {title!r} ({path}): panel {panel_title!r} has no PromQL query; "
                "give it a target with an expr, or remove the panel"
            )
        for index, (target, expr) in enumerate(exprs):
            queries.append(
                PanelQuery(
                    dashboard=title,
                    panel=panel_title,
                    ref_id=str(target.get("refId") or chr(ord("A") + index)),
                    expr=_substitute(expr, values, title, panel_title),
                )
            )
    return queries


def _load(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise DashboardError(
            f"cannot read dashboard {path}: {error.strerror}; pass a file from dashboards/"
        ) from error
    except json.JSONDecodeError as error:
        raise DashboardError(
            f"dashboard {path} is not valid JSON: {error.msg} at line {error.lineno}, "
            f"column {error.colno}; fix the file"
        ) from error
    if not isinstance(document, dict) or not isinstance(document.get("panels"), list):
        raise DashboardError(
            f"{path} is not a Grafana dashboard (no 'panels' list at the top); pass a file "
            "from dashboards/"
        )
    return document


def _panels(panels: list[Any], path: Path) -> Iterator[dict[str, Any]]:
    """Panels in order, rows followed by the panels collapsed inside them."""
    for panel in panels:
        if not isinstance(panel, dict):
            raise DashboardError(f"dashboard {path} has a panel that is not an object: {panel!r}")
        yield panel
        nested = panel.get("panels")
        if isinstance(nested, list):
            yield from _panels(nested, path)


def _substitute(expr: str, values: Mapping[str, str], dashboard: str, panel: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bracketed") or match.group("plain")
        if name not in values:
            given = ", ".join(sorted(values)) or "none"
            raise DashboardError(
                f"dashboard {dashboard!r}, panel {panel!r}: the query uses ${name}, which has "
                f"no value (given: {given}); pass it in variables, e.g. {{{name!r}: '0'}}"
            )
        return values[name]

    return _VARIABLE.sub(replace, expr)
