"""``aitbc-testnet up``: bring up the testnet of a scenario and wait until it is ready
(``--platform sim``: run the whole scenario in the simulator)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.commands.options import (
    DEFAULT_RUN_DIR,
    JsonOption,
    PlatformName,
    PlatformOption,
    RunDirOption,
    RunIdOption,
    ScenarioArgument,
    SetOption,
    load_plan,
)
from orchestrator.commands.output import echo_json, sim_summary
from orchestrator.commands.progress import Progress
from orchestrator.errors import UsageError
from orchestrator.platforms import get_platform
from orchestrator.platforms.capabilities import NodeAccess, PrometheusAccess, Simulator
from orchestrator.scenario.plan import Plan
from orchestrator.stages.down import tear_down
from orchestrator.stages.live import committed_tps
from orchestrator.stages.up import DEFAULT_READY_TIMEOUT_S, bring_up

INTERRUPTED_EXIT = 130


def register(app: typer.Typer) -> None:
    @app.command(
        help=(
            "Bring up the testnet of a scenario and wait until it is ready: every validator "
            "answers /readyz, Prometheus is ready and every height rises. Prints the run id, "
            "the run directory, the Prometheus URL and each validator's endpoints; the testnet "
            "keeps running (stop it with `aitbc-testnet down`). Refuses (exit 3) when a port is "
            "taken or the prometheus binary is missing. With --platform sim: run the whole "
            "scenario in the deterministic simulator and print its summary (labelled "
            "simulated).\n\n"
            "Example: aitbc-testnet up devnet-smoke --run-id demo --base-port 21000"
        )
    )
    def up(
        scenario: ScenarioArgument,
        platform: PlatformOption = PlatformName.local,
        run_dir: RunDirOption = DEFAULT_RUN_DIR,
        sets: SetOption = None,
        run_id: RunIdOption = None,
        timeout: Annotated[
            float | None,
            typer.Option(
                "--timeout",
                min=1,
                help="Seconds to wait for the testnet to be ready (sim: for the simulation to "
                "finish; default 120 s, sim: scales with validators x blocks).",
                show_default=False,
            ),
        ] = None,
        base_port: Annotated[
            int | None,
            typer.Option(
                "--base-port",
                min=1,
                max=65535,
                help="Local: validator i listens on BASE+i (gRPC) and BASE+N+i (ops), "
                "Prometheus on BASE+2N, the load generator's metrics on BASE+2N+1 (default: "
                "free ports).",
                show_default=False,
            ),
        ] = None,
        keep_going: Annotated[
            bool,
            typer.Option(
                "--keep-going",
                help="When the testnet does not become ready, leave what started running for "
                "inspection (default: stop it).",
            ),
        ] = False,
        json_output: JsonOption = False,
    ) -> None:
        plan = load_plan(scenario, sets, platform, run_id)
        directory = run_dir / plan.run_id
        if base_port is not None and platform is not PlatformName.local:
            raise UsageError("--base-port applies to --platform local only")
        options = {"base_port": base_port} if base_port is not None else {}
        target = get_platform(platform.value, directory, **options)
        if isinstance(target, Simulator):
            _simulate(target, plan, directory, timeout, json_output)
            return
        progress = Progress(sys.stderr)
        progress.stage(f"deploying {plan.network.validators} validators ({platform.value})")

        total = plan.network.validators

        def report(stage: str, count: int, height: int) -> None:
            tps = committed_tps(target) if stage != "starting" else None
            progress.update(height=height or None, tps=tps, note=f"{stage} {count}/{total}")

        try:
            bring_up(
                target,
                plan,
                ready_timeout_s=timeout or DEFAULT_READY_TIMEOUT_S,
                on_progress=report,
            )
        except KeyboardInterrupt:
            progress.done("interrupted")
            if not keep_going:
                tear_down(target)
            raise typer.Exit(code=INTERRUPTED_EXIT) from None
        except BaseException:
            progress.done()
            if not keep_going:
                tear_down(target)
            raise
        progress.done(f"ready after {progress.elapsed_s:.1f}s")
        summary = _summary(target, platform, plan.run_id, directory)
        if json_output:
            echo_json(summary)
            return
        typer.echo(f"up: run {plan.run_id}: {len(summary['validators'])} validators ready")
        typer.echo(f"  run dir:    {directory}")
        typer.echo(f"  prometheus: {summary['prometheus_url']}")
        for validator in summary["validators"]:
            typer.echo(
                f"  validator {validator['index']}: grpc {validator['grpc']}  ops "
                f"{validator['ops']}"
            )
        typer.echo(f"next: aitbc-testnet status --run-id {plan.run_id} --run-dir {run_dir}")


def _summary(
    target: object, platform: PlatformName, run_id: str, directory: Path
) -> dict[str, Any]:
    endpoints = target.endpoints() if isinstance(target, NodeAccess) else []
    return {
        "run_id": run_id,
        "platform": platform.value,
        "run_dir": str(directory),
        "prometheus_url": target.prometheus_url() if isinstance(target, PrometheusAccess) else None,
        "validators": [{"index": e.index, "grpc": e.grpc, "ops": e.ops} for e in endpoints],
    }


def _simulate(
    simulator: Simulator, plan: Plan, directory: Path, timeout: float | None, json_output: bool
) -> None:
    budget = timeout if timeout is not None else simulator.budget_s(plan)
    typer.echo(
        f"simulating {plan.name}: {plan.network.validators} validators, "
        f"{plan.sim.blocks} blocks, crypto {plan.sim.crypto} (up to {budget:g} s) ...",
        err=True,
    )
    result = simulator.run(plan, budget)
    if json_output:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        typer.echo(sim_summary(result, directory))
