"""The Grafana dashboards parse, every panel has a query over the node's metric contract,
panel_queries substitutes variables, and the chart's copies equal the sources."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from chart_support import CHART_DIR, DASHBOARDS_DIR, REPO

from orchestrator.measure.dashboards import DashboardError, PanelQuery, panel_queries

OVERVIEW = DASHBOARDS_DIR / "aitbc-overview.json"
VALIDATOR = DASHBOARDS_DIR / "aitbc-validator.json"
# The node's and the load generator's metric contract, plus what every scrape adds.
KNOWN_METRICS = {
    "aitbc_block_height",
    "aitbc_round",
    "aitbc_epoch",
    "aitbc_consensus_mode",
    "aitbc_blocks_committed_total",
    "aitbc_txs_submitted_total",
    "aitbc_txs_committed_total",
    "aitbc_txs_rejected_total",
    "aitbc_tx_finality_seconds_bucket",
    "aitbc_block_commit_latency_seconds_bucket",
    "aitbc_timeouts_total",
    "aitbc_slashing_events_total",
    "aitbc_mempool_txs",
    "aitbc_peers_connected",
    "aitbc_fault_active",
    "aitbc_loadgen_offered_txs_total",
    "aitbc_loadgen_acked_txs_total",
    "aitbc_loadgen_e2e_latency_seconds_bucket",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "up",
}
PROMQL_WORDS = {
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "by",
    "rate",
    "increase",
    "histogram_quantile",
    "le",
    "validator",
    "kind",
    "reason",
    "label_values",
}


def dashboard(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def metric_names(expr: str) -> set[str]:
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    words = set(re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", without_ranges))
    return words - PROMQL_WORDS


def test_the_two_dashboards_exist_with_stable_uids() -> None:
    assert sorted(p.name for p in DASHBOARDS_DIR.glob("*.json")) == [
        "aitbc-overview.json",
        "aitbc-validator.json",
    ]
    assert dashboard(OVERVIEW)["uid"] == "aitbc-overview"
    assert dashboard(VALIDATOR)["uid"] == "aitbc-validator"


@pytest.mark.parametrize("path", [OVERVIEW, VALIDATOR], ids=lambda p: p.stem)
def test_every_panel_has_a_query_over_known_metrics(path: Path) -> None:
    queries = panel_queries(path, {"validator": "0"})
    panels = [p for p in dashboard(path)["panels"] if p["type"] != "row"]
    assert {q.panel for q in queries} == {p["title"] for p in panels}
    assert len({p["title"] for p in panels}) == len(panels), "panel titles must be unique"
    for query in queries:
        assert "$" not in query.expr and "[[" not in query.expr, query
        unknown = metric_names(query.expr) - KNOWN_METRICS
        assert not unknown, f"{query.panel}: {unknown}"
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_overview_measures_what_the_contract_says() -> None:
    exprs: dict[str, str] = {}
    for query in panel_queries(OVERVIEW, {}):
        exprs[query.panel] = f"{exprs.get(query.panel, '')} {query.expr}".strip()
    tps = exprs["Offered vs committed TPS"]
    assert "max(rate(aitbc_txs_committed_total[1m]))" in tps
    assert "sum(rate(aitbc_txs_committed_total" not in " ".join(exprs.values())
    assert "aitbc_loadgen_offered_txs_total" in tps
    finality = [
        q.expr for q in panel_queries(OVERVIEW, {}) if q.panel.startswith("Transaction fin")
    ]
    assert finality == [
        f"histogram_quantile({q}, sum by (le) (rate(aitbc_tx_finality_seconds_bucket[1m])))"
        for q in ("0.5", "0.9", "0.99")
    ]
    for title in (
        "End-to-end latency (load generator, p50 / p90 / p99)",
        "Block interval",
        "Height per validator",
        "Rounds and timeouts",
        "Consensus mode",
        "Peers connected",
        "Slashing events",
        "Mempool",
        "CPU per validator",
        "RSS per validator",
    ):
        assert title in exprs
    annotations = dashboard(OVERVIEW)["annotations"]["list"]
    faults = [a for a in annotations if "aitbc_fault_active" in a.get("expr", "")]
    assert len(faults) == 1 and faults[0]["enable"] is True


def test_validator_dashboard_has_a_validator_variable_and_filters_on_it() -> None:
    variables = {v["name"]: v for v in dashboard(VALIDATOR)["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["validator"]["definition"] == "label_values(aitbc_block_height, validator)"
    queries = panel_queries(VALIDATOR, {"validator": "17"})
    filtered = [q for q in queries if 'validator="17"' in q.expr]
    network_wide = [q for q in queries if 'validator="17"' not in q.expr]
    assert len(filtered) >= 15
    assert [q.expr for q in network_wide] == ["max(aitbc_block_height)"]


def test_panel_queries_needs_every_variable() -> None:
    with pytest.raises(DashboardError, match=r"uses \$validator, which has no value"):
        panel_queries(VALIDATOR, {})


def write_dashboard(tmp_path: Path, panels: list[dict[str, Any]]) -> Path:
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"title": "T", "panels": panels}))
    return path


def test_panel_queries_substitutes_every_variable_syntax(tmp_path: Path) -> None:
    expr = (
        'rate(x{a="$a", b="${b}", c="${c:raw}", d="[[d]]"}[$__rate_interval])'
        ' + y[$__interval] + z{e="$a"}'
    )
    path = write_dashboard(
        tmp_path,
        [
            {
                "type": "row",
                "title": "R",
                "collapsed": True,
                "panels": [
                    {
                        "type": "timeseries",
                        "title": "P",
                        "targets": [
                            {"refId": "A", "expr": expr},
                            {"refId": "B", "expr": "hidden", "hide": True},
                        ],
                    },
                ],
            },
            {"type": "text", "title": "notes"},
        ],
    )
    queries = panel_queries(path, {"a": "1", "b": "2", "c": "3", "d": "4", "__interval": "30s"})
    assert queries == [
        PanelQuery(
            dashboard="T",
            panel="P",
            ref_id="A",
            expr='rate(x{a="1", b="2", c="3", d="4"}[1m]) + y[30s] + z{e="1"}',
        )
    ]


def test_panel_without_a_query_is_an_error(tmp_path: Path) -> None:
    path = write_dashboard(tmp_path, [{"type": "stat", "title": "Empty", "targets": []}])
    with pytest.raises(DashboardError, match="panel 'Empty' has no PromQL query"):
        panel_queries(path, {})


def test_a_file_that_is_not_a_dashboard_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(DashboardError, match="is not valid JSON"):
        panel_queries(path, {})
    path.write_text("[]")
    with pytest.raises(DashboardError, match="is not a Grafana dashboard"):
        panel_queries(path, {})


def test_chart_copies_equal_the_sources() -> None:
    sources = {p.name: p.read_bytes() for p in DASHBOARDS_DIR.glob("*.json")}
    copies = {p.name: p.read_bytes() for p in (CHART_DIR / "dashboards").glob("*.json")}
    assert sources, "dashboards/ is empty"
    assert copies == sources, "run helm/sync-dashboards.sh (make chart) and commit the copies"


def test_sync_script_copies_and_prunes(tmp_path: Path) -> None:
    (tmp_path / "helm" / "aitbc-testnet" / "dashboards").mkdir(parents=True)
    shutil.copy(REPO / "helm" / "sync-dashboards.sh", tmp_path / "helm")
    shutil.copytree(DASHBOARDS_DIR, tmp_path / "dashboards")
    stale = tmp_path / "helm" / "aitbc-testnet" / "dashboards" / "removed.json"
    stale.write_text("{}")
    completed = subprocess.run(
        ["bash", str(tmp_path / "helm" / "sync-dashboards.sh")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    copied = sorted(p.name for p in (tmp_path / "helm" / "aitbc-testnet" / "dashboards").iterdir())
    assert copied == sorted(p.name for p in DASHBOARDS_DIR.glob("*.json"))
