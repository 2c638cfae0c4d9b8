"""``aitbc-testnet fault KIND``: inject one fault into a running testnet now (and, with
``--duration``, clear it again after that long)."""

from __future__ import annotations

import sys
from enum import StrEnum
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
from orchestrator.errors import UsageError
from orchestrator.faults.kinds import cli_kinds, fault_kind
from orchestrator.platforms import attach_run
from orchestrator.stages.fault import TARGET_HELP, plan_fault, run_fault
from orchestrator.stages.live import committed_tps, max_height

INTERRUPTED_EXIT = 130

FaultKindName = StrEnum("FaultKindName", {name: name for name in cli_kinds()})  # type: ignore[misc]
"""The kinds the command offers (``faults.kinds``, in their order)."""


def _params(kind: str, delay_ms: float, jitter_ms: float, rate: float) -> dict[str, Any]:
    """The parameters of ``kind`` from the command's flags (kinds without parameters: {})."""
    if kind == "delay":
        return {"delay_ms": delay_ms, "jitter_ms": jitter_ms}
    if kind == "loss":
        if not 0 < rate < 1:
            raise UsageError(f"--rate {rate}: use 0 < rate < 1 (1 is a partition)")
        return {"rate": rate}
    return {}


def register(app: typer.Typer) -> None:
    @app.command(
        help=(
            "Inject a fault into a running testnet now. Kinds: partition (the target set is cut "
            "from the rest, both ways), delay (--delay-ms, --jitter-ms), loss (--rate), pause, "
            "equivocate (byzantine double signing) through the validators' fault API; kill "
            "(SIGKILL) and restart (same config and data) of validator processes; heal clears "
            "the fault-API faults. With --duration the command waits that long showing "
            "progress, then clears the fault (also on Ctrl-C); add --detach to return at once "
            "(the validators clear it by themselves after the duration). Without --duration "
            "the fault stays until `fault heal` (or `fault restart` after a kill).\n\n"
            "Example: aitbc-testnet fault partition --target minority-third --duration 10s"
        )
    )
    def fault(
        kind: Annotated[
            FaultKindName, typer.Argument(help="What to inject.", case_sensitive=False)
        ],
        target: Annotated[
            str | None, typer.Option("--target", "-t", help=TARGET_HELP, show_default=False)
        ] = None,
        duration: Annotated[
            str | None,
            typer.Option(
                "--duration",
                "-d",
                help="How long the fault lasts (10s, 500ms, 1m); default: until healed.",
                show_default=False,
            ),
        ] = None,
        detach: Annotated[
            bool,
            typer.Option("--detach", help="Return at once; with --duration the nodes clear it."),
        ] = False,
        delay_ms: Annotated[
            float, typer.Option("--delay-ms", min=0, max=60_000, help="delay: added latency.")
        ] = 100.0,
        jitter_ms: Annotated[
            float, typer.Option("--jitter-ms", min=0, max=60_000, help="delay: +- jitter.")
        ] = 0.0,
        rate: Annotated[
            float, typer.Option("--rate", min=0, max=1, help="loss: share of messages dropped.")
        ] = 0.2,
        run_id: ExistingRunIdOption = None,
        run_dir: RunDirOption = DEFAULT_RUN_DIR,
        json_output: JsonOption = False,
    ) -> None:
        name = str(kind.value)
        seconds = duration_flag(duration, at_least_s=0.0, hint="use a duration above 0, e.g. 10s")
        if seconds is not None and fault_kind(name).instantaneous:
            raise UsageError(f"fault {name} is instantaneous: leave --duration out")
        params = _params(name, delay_ms, jitter_ms, rate)
        platform = attach_run(run_dir, run_id)
        progress = Progress(sys.stderr)
        say = (lambda text: None) if json_output else typer.echo
        started = [False]

        def tick(left: float) -> None:
            if not started[0]:
                started[0] = True
                progress.stage(f"{name} active for {seconds:g}s")
            progress.update(
                height=max_height(platform), tps=committed_tps(platform), note=f"{left:.0f}s left"
            )

        try:
            planned = plan_fault(platform, name, target, seconds, params)
            outcome = run_fault(platform, planned, detach=detach, say=say, tick=tick)
        finally:
            if started[0]:
                progress.done()
            platform.close()
        if json_output:
            echo_json(outcome)
        if outcome.get("interrupted"):
            raise typer.Exit(code=INTERRUPTED_EXIT)
