"""``aitbc-testnet down``: stop exactly what a run started, by pid, and keep its directory."""

from __future__ import annotations

import typer

from orchestrator.cli import DEFAULT_RUN_DIR, JsonOption, RunDirOption
from orchestrator.commands import ExistingRunIdOption, attach_run, echo_json


def register(app: typer.Typer) -> None:
    @app.command(
        help=(
            "Stop a run: the load generator, every validator and Prometheus, by the pids the "
            "run recorded (each checked to still be the process the run started: SIGTERM, "
            "then SIGKILL after a grace period). The run directory (logs, chain data, load "
            "results, Prometheus TSDB) is kept. Reports what it stopped. Acts on the most "
            "recent run unless --run-id says otherwise.\n\n"
            "Example: aitbc-testnet down --run-id demo"
        )
    )
    def down(
        run_id: ExistingRunIdOption = None,
        run_dir: RunDirOption = DEFAULT_RUN_DIR,
        json_output: JsonOption = False,
    ) -> None:
        from orchestrator.platforms.local import LocalPlatform

        platform = attach_run(run_dir, run_id)
        if not isinstance(platform, LocalPlatform):
            platform.destroy()
            typer.echo(f"down: {platform.name} run stopped")
            return
        stopped = platform.stop_processes()
        if json_output:
            echo_json(
                {
                    "run_id": platform.state.run_id,
                    "run_dir": str(platform.run_dir),
                    "stopped": [
                        {"name": item.name, "pid": item.pid, "how": item.how} for item in stopped
                    ],
                }
            )
            return
        if not stopped:
            typer.echo(f"down: run {platform.state.run_id} had nothing running")
        for item in stopped:
            typer.echo(f"  {item.name} (pid {item.pid}): {item.how}")
        typer.echo(f"down: run {platform.state.run_id} stopped; files kept in {platform.run_dir}")
