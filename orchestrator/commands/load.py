"""``aitbc-testnet load``: drive transactions into a running testnet — the scenario's Locust
load (offered TPS, shape, latency probe) or a quick burst through ``loadgen.client``."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from orchestrator.commands.options import (
    DEFAULT_RUN_DIR,
    ExistingRunIdOption,
    JsonOption,
    RunDirOption,
    duration_flag,
)
from orchestrator.commands.output import echo_json
from orchestrator.commands.progress import Progress
from orchestrator.errors import PlatformError, UsageError
from orchestrator.platforms import attach_run
from orchestrator.stages.live import committed_tps, max_height
from orchestrator.stages.load import BURST_COMMIT_TIMEOUT_S, run_burst, run_load

INTERRUPTED_EXIT = 130


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
        if burst is not None and (tps is not None or duration is not None or detach):
            raise UsageError("--burst takes no --tps, --duration or --detach")
        seconds = duration_flag(duration, at_least_s=1.0, hint="use at least 1s")
        platform = attach_run(run_dir, run_id)
        try:
            if burst is not None:
                outcome = run_burst(platform, burst)
            else:
                outcome = _locust(platform, tps, seconds, detach)
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


def _locust(
    platform: object, tps: float | None, seconds: float | None, detach: bool
) -> dict[str, Any]:
    """The scenario's Locust load with progress lines (``stages.load.run_load``)."""
    progress = Progress(sys.stderr)
    end: list[float] = []

    def tick(since: float) -> None:
        if not end:
            return
        progress.update(
            height=max_height(platform),
            tps=committed_tps(platform),
            note=f"{max(0.0, end[0] - since):.0f}s left",
        )

    def on_start(shape: str, tps_offered: float, duration_s: float) -> None:
        end.append(duration_s)
        progress.stage(f"load {shape} {tps_offered:g} tps for {duration_s:g}s")

    try:
        return run_load(platform, tps, seconds, detach=detach, tick=tick, on_start=on_start)
    finally:
        if end:
            progress.done()


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
