"""Every panel query of both Grafana dashboards returns data from a live local run.

One ``devnet-smoke`` testnet through the real CLI: a short Locust load with the latency probe,
a minority partition applied and cleared while it runs, then every PromQL query of
``dashboards/*.json`` (validator 0, rate windows of 1 m = 60x the 1 s scrape) is sent to the
run's Prometheus; each must return at least one series with a finite value. ``down`` runs in a
finalizer (and the ``module_run_root`` fixture stops every recorded pid whatever happens).
"""

from __future__ import annotations

import json
import math
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.measure.dashboards import PanelQuery, panel_queries
from orchestrator.platforms.local.state import RunState
from orchestrator.platforms.run_dirs import STATE_FILE

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]
BOUND_S = 180.0
"""The bound on waiting for a condition (seconds on an idle machine)."""

RUN_ID = "e2e-dashboards"
DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"
VARIABLES = {"validator": "0", "datasource": "prometheus", "__rate_interval": "1m"}
"""The validator dashboard's variable, and a rate window >= 4x the local 1 s scrape."""
LOAD_S = 18


@dataclass(frozen=True)
class LoadedRun:
    prometheus: str
    fault_start: float
    """Unix time just before the partition was applied."""
    fault_end: float
    """Unix time once the CLI reported it cleared."""


def prom_result(url: str, promql: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=60) as reply:
        document = json.loads(reply.read())
    assert document["status"] == "success", (promql, document)
    result = document["data"]["result"]
    assert isinstance(result, list), (promql, document)
    return result


def finite_series(result: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The series of an instant-vector (or scalar) result whose value is a finite number."""
    return [s for s in result if math.isfinite(float(s["value"][1]))]


def prom_range(url: str, promql: str, start: float, end: float) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"query": promql, "start": start, "end": end, "step": "1s"})
    with urllib.request.urlopen(f"{url}/api/v1/query_range?{query}", timeout=60) as reply:
        document = json.loads(reply.read())
    assert document["status"] == "success", (promql, document)
    result = document["data"]["result"]
    assert isinstance(result, list), (promql, document)
    return result


def wait_until(condition: Any) -> None:
    deadline = time.monotonic() + BOUND_S
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold within the bound"
        time.sleep(0.5)


def annotation_queries() -> list[tuple[str, str]]:
    """(dashboard file, expr) of every Prometheus annotation (the fault windows)."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        document = json.loads(path.read_text())
        for item in document.get("annotations", {}).get("list", []):
            if item.get("expr"):
                found.append(
                    (path.name, item["expr"].replace("$validator", VARIABLES["validator"]))
                )
    return found


def all_panel_queries() -> list[PanelQuery]:
    paths = sorted(DASHBOARDS.glob("*.json"))
    assert len(paths) == 2, paths  # overview and per-validator
    return [query for path in paths for query in panel_queries(path, VARIABLES)]


@pytest.fixture(scope="module")
def loaded_run(cli: Any, module_run_root: Path) -> Iterator[LoadedRun]:
    """A devnet-smoke run that has seen a Locust load with probes and a cleared partition;
    yields its Prometheus URL and the fault window, and runs ``down`` afterwards."""
    up = cli.run("up", "devnet-smoke", "--run-dir", str(module_run_root), "--run-id", RUN_ID)
    try:
        assert up.code == 0, up.output
        state = RunState.model_validate_json((module_run_root / RUN_ID / STATE_FILE).read_text())
        load = subprocess.Popen(
            cli.argv(
                "load",
                "--tps",
                "150",
                "--duration",
                f"{LOAD_S}s",
                "--json",
                "--run-dir",
                str(module_run_root),
                "--run-id",
                RUN_ID,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # the load is flowing (Prometheus saw acknowledged transactions) before the cut
            wait_until(
                lambda: finite_series(
                    prom_result(state.prometheus.url, "sum(aitbc_loadgen_acked_txs_total) > 0")
                )
            )
            fault_start = time.time()
            fault = cli.run(
                "fault", "partition", "--target", "minority-third", "--duration", "5s",
                "--run-dir", str(module_run_root), "--run-id", RUN_ID,
            )  # fmt: skip
            assert fault.code == 0, fault.output
            assert "cleared: partition" in fault.stdout, fault.output
            fault_end = time.time()
            stdout, stderr = load.communicate(timeout=LOAD_S + 300)
        finally:
            if load.poll() is None:
                load.kill()
                load.wait()
        assert load.returncode == 0, stderr
        totals = json.loads(stdout)["totals"]
        assert totals["acked"] > 0 and totals["probes"].get("committed", 0) > 0, totals
        load_end = time.time()  # one more scrape of every validator after the load
        wait_until(
            lambda: (
                (
                    stamps := finite_series(
                        prom_result(state.prometheus.url, "timestamp(aitbc_block_height)")
                    )
                )
                and min(float(s["value"][1]) for s in stamps) > load_end
            )
        )
        yield LoadedRun(state.prometheus.url, fault_start, fault_end)
    finally:
        down = cli.run("down", "--run-dir", str(module_run_root), "--run-id", RUN_ID)
    assert down.code == 0, down.output  # (not checked when the run failed: that error shows)


def test_every_panel_query_returns_data(loaded_run: LoadedRun) -> None:
    url = loaded_run.prometheus
    queries = all_panel_queries()
    assert len(queries) >= 40
    empty = []
    for query in queries:
        result = prom_result(url, query.expr)
        if not finite_series(result):
            empty.append(f"{query.dashboard} / {query.panel} / {query.ref_id}: {query.expr}")
    assert not empty, "panel queries without data:\n" + "\n".join(empty)
    # The fault panel's series are there at 0 now that the partition is cleared...
    active = prom_result(url, 'sum by (kind) (aitbc_fault_active{kind="partition"})')
    assert [float(series["value"][1]) for series in active] == [0.0], active


def test_fault_annotations_mark_the_partition_window_only(loaded_run: LoadedRun) -> None:
    url = loaded_run.prometheus
    annotations = annotation_queries()
    assert [name for name, _ in annotations] == ["aitbc-overview.json", "aitbc-validator.json"]
    for name, expr in annotations:
        during = prom_range(url, expr, loaded_run.fault_start, loaded_run.fault_end)
        kinds = {series["metric"].get("kind") for series in during if series["values"]}
        assert kinds == {"partition"}, (name, expr, during)
        assert prom_result(url, expr) == [], (name, expr)  # nothing marked once healed
