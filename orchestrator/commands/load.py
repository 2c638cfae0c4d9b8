"""``aitbc-testnet load``: drive transactions into a running testnet — the scenario's Locust
load (offered TPS, shape, latency probe) or a quick burst through ``loadgen.client``."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.cli import DEFAULT_RUN_DIR, JsonOption, RunDirOption
from orchestrator.commands import (
    ExistingRunIdOption,
    attach_run,
    committed_tps,
    echo_json,
    max_height,
    require_local,
)
from orchestrator.durations import parse_duration
from orchestrator.errors import UsageError
from orchestrator.platforms.base import PlatformError
from orchestrator.progress import Progress

if TYPE_CHECKING:
    from orchestrator.platforms.local import LocalPlatform

INTERRUPTED_EXIT = 130
LOAD_EXIT_GRACE_S = 30.0
"""Seconds Locust may take past its run time to write its results and exit."""
BURST_COMMIT_TIMEOUT_S = 60.0


def register(app: typer.Typer) -> None:
    @app.command(
        help=(
            "Drive load into a running testnet. Default: the scenario's load with Locust "
            "(offered TPS, shape, users, latency probe; --tps and --duration override), "
            "showing progress until it ends, then its summary (offered, sent, acknowledged, "
            "missed, rejected, probes; CSV/JSON in <run>/load/). Ctrl-C stops it. --detach "
            "starts it and returns. --burst N instead submits N transactions at once with the "
            "plain client and waits until they are committed (exit 3 when some are not).\n\n"
            "Example: aitbc-testnet load --tps 200 --duration 30s   |   aitbc-testnet load "
            "--burst 500"
        )
    )
    def load(
        tps: Annotated[
            float | None,
            typer.Option("--tps", min=0.001, help="Offered TPS (default: the scenario's)."),
        ] = None,
        duration: Annotated[
            str | None,
            typer.Option(
                "--duration",
                "-d",
                help="How long the load runs (30s, 2m; default: the scenario's).",
                show_default=False,
            ),
        ] = None,
        burst: Annotated[
            int | None,
            typer.Option(
                "--burst",
                min=1,
                max=1_000_000,
                help="Submit this many transactions at once instead of a Locust load.",
                show_default=False,
            ),
        ] = None,
        detach: Annotated[
            bool, typer.Option("--detach", help="Start the Locust load and return.")
        ] = False,
        run_id: ExistingRunIdOption = None,
        run_dir: RunDirOption = DEFAULT_RUN_DIR,
        json_output: JsonOption = False,
    ) -> None:
        platform = require_local(attach_run(run_dir, run_id), "load")
        try:
            if burst is not None:
                if tps is not None or duration is not None or detach:
                    raise UsageError("--burst takes no --tps, --duration or --detach")
                outcome = run_burst(platform, burst)
            else:
                outcome = run_locust(platform, tps, _seconds(duration), detach=detach)
        finally:
            platform.close()
        if json_output:
            echo_json(outcome)
        else:
            for line in outcome_lines(outcome):
                typer.echo(line)
        if outcome.get("interrupted"):
            raise typer.Exit(code=INTERRUPTED_EXIT)
        if burst is not None and outcome["missing"]:
            raise PlatformError(
                f"{outcome['missing']} of {outcome['accepted']} accepted transactions were not "
                f"committed within {BURST_COMMIT_TIMEOUT_S:g}s: see `aitbc-testnet status` and "
                "the validators' logs"
            )


def _seconds(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise UsageError(f"--duration: {error}") from None
    if seconds < 1:
        raise UsageError(f"--duration {text}: use at least 1s")
    return seconds


def run_locust(
    platform: LocalPlatform, tps: float | None, duration_s: float | None, *, detach: bool
) -> dict[str, Any]:
    """Start the scenario's Locust load (with overrides) and, unless ``detach``, wait for it
    with progress; Ctrl-C stops it. Returns the outcome (summary totals when written)."""
    from loadgen.errors import LoadgenError
    from loadgen.summary import read_summary
    from orchestrator.platforms.local import replace_load

    changes: dict[str, Any] = {}
    if tps is not None:
        changes.update(tps=tps, shape="constant", steps=(), ramp=None, spike=None)
    if duration_s is not None:
        changes["duration_s"] = duration_s
    plan = replace_load(platform.plan, **changes) if changes else platform.plan
    load = plan.load
    platform.start_load(plan)
    outcome: dict[str, Any] = {
        "mode": "locust",
        "tps": load.tps,
        "shape": load.shape,
        "duration_s": load.duration_s,
        "load_dir": str(platform.load_dir),
        "interrupted": False,
        "detached": detach,
        "totals": None,
    }
    if detach:
        return outcome
    progress = Progress(sys.stderr)
    progress.stage(f"load {load.shape} {load.tps:g} tps for {load.duration_s:g}s")
    deadline = time.monotonic() + load.duration_s + LOAD_EXIT_GRACE_S
    try:
        while not platform.wait_load(1.0):
            progress.update(
                height=max_height(platform),
                tps=committed_tps(platform.prometheus_url()),
                note=f"{max(0.0, deadline - LOAD_EXIT_GRACE_S - time.monotonic()):.0f}s left",
            )
            if time.monotonic() > deadline:
                platform.stop_load()
                raise PlatformError(
                    f"locust did not exit {LOAD_EXIT_GRACE_S:g}s after its run time: stopped "
                    f"it; see {platform.state.load.log}"
                )
    except KeyboardInterrupt:
        outcome["interrupted"] = True
        platform.stop_load()
    finally:
        progress.done()
    try:
        summary = read_summary(platform.state.load.summary)
    except LoadgenError:
        raise PlatformError(
            f"locust wrote no summary ({platform.state.load.summary}): see "
            f"{platform.state.load.log}"
        ) from None
    outcome["totals"] = summary.totals.model_dump()
    return outcome


def run_burst(platform: LocalPlatform, count: int) -> dict[str, Any]:
    """Submit ``count`` transfers from the load accounts (nonces from GetAccount) and wait
    until they are committed."""
    from loadgen.client import submit_burst, wait_for_commits
    from loadgen.errors import LoadgenError

    if platform.load_running():
        raise UsageError(
            "a Locust load is running on this run: a burst would race it for the same "
            "accounts; wait for it to end or stop it first"
        )
    plan = platform.plan
    running = [i for i, pid in platform.validator_pids().items() if pid is not None]
    if not running:
        raise PlatformError("no validator of this run is running: start it with `up`")
    endpoints = {e.index: e for e in platform.endpoints()}
    targets = [endpoints[i].grpc for i in running]
    try:
        result = submit_burst(
            targets,
            platform.genesis_path(),
            count,
            batch_size=plan.load.batch_size,
            accounts=range(plan.load.accounts),
            run_id=plan.run_id,
        )
        waited = wait_for_commits(
            targets[0],
            result.accepted_ids,
            timeout_s=BURST_COMMIT_TIMEOUT_S,
            from_height=(result.height_before or 0) + 1,
        )
    except LoadgenError as error:
        raise PlatformError(f"burst of {count}: {error}") from None
    return {
        "mode": "burst",
        "requested": count,
        "accepted": result.accepted,
        "rejected": result.rejected,
        "committed": len(waited.committed),
        "missing": len(waited.missing),
        "submit_s": round(result.elapsed_s, 3),
        "commit_wait_s": round(waited.elapsed_s, 3),
        "accepted_tps": round(result.accepted_tps, 1),
        "per_target": result.per_target,
        "interrupted": False,
    }


def outcome_lines(outcome: dict[str, Any]) -> list[str]:
    if outcome["mode"] == "burst":
        return [
            f"burst: {outcome['accepted']} of {outcome['requested']} accepted in "
            f"{outcome['submit_s']}s ({outcome['accepted_tps']} tx/s), rejected "
            f"{outcome['rejected'] or 'none'}",
            f"  committed {outcome['committed']}, missing {outcome['missing']} (waited "
            f"{outcome['commit_wait_s']}s)",
        ]
    if outcome["detached"]:
        return [
            f"load started: {outcome['shape']} {outcome['tps']:g} tps for "
            f"{outcome['duration_s']:g}s; results in {outcome['load_dir']}",
        ]
    totals = outcome["totals"] or {}
    head = "load interrupted" if outcome["interrupted"] else "load done"
    return [
        f"{head}: offered {totals.get('offered')}, sent {totals.get('sent')}, acknowledged "
        f"{totals.get('acked')}, missed {totals.get('missed')}, rejected "
        f"{totals.get('rejected') or 'none'}",
        f"  probes {totals.get('probes') or 'none'}; files in {outcome['load_dir']}",
    ]
