"""``aitbc-testnet down``: stop exactly what a run started, by pid, and keep its directory."""

from __future__ import annotations

import typer

from orchestrator.commands.options import (
    DEFAULT_RUN_DIR,
    ExistingRunIdOption,
    JsonOption,
    RunDirOption,
)
from orchestrator.commands.output import echo_json
from orchestrator.platforms import attach_run
from orchestrator.stages.down import tear_down


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
        platform = attach_run(run_dir, run_id)
        name = platform.run_record().run_id
        stopped = tear_down(platform)
        if json_output:
            echo_json(
                {
                    "run_id": name,
                    "run_dir": str(platform.run_dir),
                    "stopped": [
                        {"name": item.name, "pid": item.pid, "how": item.how} for item in stopped
                    ],
                }
            )
            return
        if not stopped:
            typer.echo(f"down: run {name} had nothing running")
        for item in stopped:
            pid = f" (pid {item.pid})" if item.pid is not None else ""
            typer.echo(f"  {item.name}{pid}: {item.how}")
        typer.echo(f"down: run {name} stopped; files kept in {platform.run_dir}")
