"""``aitbc-testnet status``: what a run is doing now — every validator's height, round, epoch,
mode and readiness, whether its Prometheus answers, the active faults and the committed TPS."""

from __future__ import annotations

from typing import Any

import typer

from orchestrator.cli import DEFAULT_RUN_DIR, JsonOption, RunDirOption
from orchestrator.commands import ExistingRunIdOption, attach_run, committed_tps, echo_json
from orchestrator.platforms.base import Platform, PlatformError


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
            report = collect_status(platform, run_dir)
        finally:
            close = getattr(platform, "close", None)
            if callable(close):
                close()
        if json_output:
            echo_json(report)
        else:
            for line in status_lines(report):
                typer.echo(line)


def collect_status(platform: Platform, run_root: Any) -> dict[str, Any]:
    """The status document of a run (what ``status --json`` prints)."""
    from orchestrator.prometheus_server import is_ready

    state = getattr(platform, "state", None)
    run_id = getattr(state, "run_id", None)
    pids_of = getattr(platform, "validator_pids", None)
    pids: dict[int, int | None] = pids_of() if callable(pids_of) else {}
    client_of = getattr(platform, "client", None)
    validators = []
    for endpoint in platform.endpoints():
        entry: dict[str, Any] = {
            "index": endpoint.index,
            "grpc": endpoint.grpc,
            "ops": endpoint.ops,
            "pid": pids.get(endpoint.index),
            "running": pids.get(endpoint.index) is not None if pids else None,
        }
        if entry["running"] is False:
            entry["error"] = "not running (killed or stopped)"
        elif client_of is not None:
            try:
                node = client_of(endpoint.index).status()
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
    url = platform.prometheus_url()
    faults: list[dict[str, Any]] = []
    active_of = getattr(platform, "active_faults", None)
    if callable(active_of):
        for index, items in sorted(active_of().items()):
            faults += [{"validator": index, **item} for item in items]
    load = getattr(state, "load", None)
    load_running = getattr(platform, "load_running", None)
    return {
        "run_id": run_id,
        "platform": platform.name,
        "run_dir": str(getattr(platform, "run_dir", run_root)),
        "stopped": getattr(state, "stopped_at", None) is not None,
        "prometheus": {"url": url, "ready": url is not None and is_ready(url)},
        "validators": validators,
        "killed": [v["index"] for v in validators if v["running"] is False],
        "faults": faults,
        "load": {
            "running": load_running() if callable(load_running) else None,
            "started_at": getattr(load, "started_at", None),
            "duration_s": getattr(load, "duration_s", None),
        },
        "tps": committed_tps(url),
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
