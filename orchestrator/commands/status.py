"""``aitbc-testnet status``: what a run is doing now — every validator's height, round, epoch,
mode and readiness, whether its Prometheus answers, the active faults and the committed TPS."""

from __future__ import annotations

from typing import Any

import typer

from orchestrator.commands.options import (
    DEFAULT_RUN_DIR,
    ExistingRunIdOption,
    JsonOption,
    RunDirOption,
)
from orchestrator.commands.output import echo_json
from orchestrator.errors import PlatformError
from orchestrator.external.prometheus import PromQuery
from orchestrator.platforms import attach_run
from orchestrator.platforms.capabilities import (
    KillRestart,
    LiveRun,
    LoadRunner,
    NodeAccess,
    NodeFaults,
    PrometheusAccess,
    ValidatorProcesses,
)
from orchestrator.stages.live import committed_tps_at

PROMETHEUS_TIMEOUT_S = 5.0


def register(app: typer.Typer) -> None:
    @app.command(
        help=(
            "Show a run: each validator's pid, height, round, epoch, mode and readiness, the "
            "Prometheus URL and whether it answers, the active faults (node fault API and "
            "killed validators), whether a load runs, and the committed TPS from Prometheus. "
            "Acts on the most recent run unless --run-id says otherwise.\n\n"
            "Example: aitbc-testnet status --run-id demo --json"
        )
    )
    def status(
        run_id: ExistingRunIdOption = None,
        run_dir: RunDirOption = DEFAULT_RUN_DIR,
        json_output: JsonOption = False,
    ) -> None:
        platform = attach_run(run_dir, run_id)
        try:
            report = collect_status(platform)
        finally:
            platform.close()
        if json_output:
            echo_json(report)
        else:
            for line in status_lines(report):
                typer.echo(line)


def collect_status(platform: LiveRun) -> dict[str, Any]:
    """The status document of a live run (what ``status --json`` prints)."""
    record = platform.run_record()
    pids = platform.validator_pids() if isinstance(platform, ValidatorProcesses) else {}
    validators = []
    endpoints = platform.endpoints() if isinstance(platform, NodeAccess) else []
    for endpoint in endpoints:
        running: bool | None = None
        if pids:
            running = pids.get(endpoint.index) is not None
        elif isinstance(platform, KillRestart):
            running = platform.is_running(endpoint.index)
        entry: dict[str, Any] = {
            "index": endpoint.index,
            "grpc": endpoint.grpc,
            "ops": endpoint.ops,
            "pid": pids.get(endpoint.index),
            "running": running,
        }
        if running is False:
            entry["error"] = "not running (killed or stopped)"
        elif isinstance(platform, NodeAccess):
            try:
                node = platform.client(endpoint.index).status()
                entry.update(
                    height=node.height,
                    round=node.round,
                    epoch=node.epoch,
                    mode=node.mode,
                    ready=node.ready,
                    peers_connected=node.peers_connected,
                    mempool_txs=node.mempool_txs,
                    committed_hash=node.committed_hash.hex(),
                )
            except PlatformError as error:
                entry["error"] = str(error)
        validators.append(entry)
    url = platform.prometheus_url() if isinstance(platform, PrometheusAccess) else None
    ready = False
    if url is not None:
        with PromQuery(url, timeout_s=PROMETHEUS_TIMEOUT_S, retries=0) as prom:
            ready = prom.ready()
    faults: list[dict[str, Any]] = []
    if isinstance(platform, NodeFaults):
        for index, items in sorted(platform.active_faults().items()):
            faults += [{"validator": index, **item} for item in items]
    return {
        "run_id": record.run_id,
        "platform": platform.name,
        "run_dir": str(platform.run_dir),
        "stopped": record.stopped_at is not None,
        "prometheus": {"url": url, "ready": ready},
        "validators": validators,
        "killed": [v["index"] for v in validators if v["running"] is False],
        "faults": faults,
        "load": {
            "running": platform.load_running() if isinstance(platform, LoadRunner) else None,
            "started_at": record.load_started_at,
            "duration_s": record.load_duration_s,
        },
        "tps": committed_tps_at(url),
    }


def status_lines(report: dict[str, Any]) -> list[str]:
    """``status`` as text."""
    prometheus = report["prometheus"]
    answer = "ready" if prometheus["ready"] else "NOT answering"
    tps = "n/a" if report["tps"] is None else f"{report['tps']:.1f}"
    lines = [
        f"run {report['run_id']} ({report['platform']}){' STOPPED' if report['stopped'] else ''}"
        f": {report['run_dir']}",
        f"  prometheus {prometheus['url']} {answer}; committed TPS {tps}; load "
        f"{'running' if report['load']['running'] else 'idle'}",
    ]
    for v in report["validators"]:
        head = f"  validator {v['index']} pid {v['pid'] or '-'}"
        if "error" in v:
            lines.append(f"{head}: {v['error']}")
            continue
        lines.append(
            f"{head}: height {v['height']} round {v['round']} epoch {v['epoch']} mode "
            f"{v['mode']} {'ready' if v['ready'] else 'NOT ready'} peers "
            f"{v['peers_connected']} mempool {v['mempool_txs']}"
        )
    if report["faults"]:
        lines.append("  active faults:")
        for item in report["faults"]:
            params = item.get("params") or ""
            lines.append(f"    validator {item['validator']}: {item['id']} {item['kind']} {params}")
    else:
        lines.append("  active faults: none")
    if report["killed"]:
        lines.append(f"  killed validators: {report['killed']} (aitbc-testnet fault restart)")
    return lines
