"""``aitbc-testnet scale``: the scenario at several validator counts, one campaign each, and a
report of TPS, finality, CPU per block and memory against N (``orchestrator.scale``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.commands.options import (
    DEFAULT_RUN_DIR,
    PlatformName,
    PlatformOption,
    ReadyTimeoutOption,
    RunDirOption,
    ScenarioArgument,
    SetOption,
    load_plan,
)
from orchestrator.commands.output import echo_progress
from orchestrator.errors import UsageError
from orchestrator.platforms import get_platform
from orchestrator.scale.plan import (
    LOCAL_SIMULATE_ABOVE,
    ScalePoint,
    parse_validator_counts,
    scale_points,
)
from orchestrator.scale.sweep import PlannedPoint, Sweep
from orchestrator.stages.campaign import DEFAULT_READY_TIMEOUT_S

INTERRUPTED_EXIT = 130
SCALE_PLATFORMS = (PlatformName.local, PlatformName.sim)


def _simulate_above(platform: PlatformName, given: int | None) -> int | None:
    if platform is PlatformName.sim:
        return 0
    return LOCAL_SIMULATE_ABOVE if given is None else given


def register(app: typer.Typer) -> None:
    @app.command(
        help=(
            "Run SCENARIO once per validator count (network.validators and "
            "network.authorities replaced; authorities keep the scenario's proportion, at "
            "least 4) and report committed TPS, finality p50/p99, CPU per committed block and "
            "memory per validator against N: scale.json, scale.md, scale.html in --out, each "
            "count's own report in --out/n-<N>/. Counts above --simulate-above run in the "
            "simulator and are marked SIMULATED.\n\n"
            "Exit codes: 0 every count passed its criteria, 1 a count failed them, 2 bad "
            "input, 3 a count could not run.\n\n"
            "Example: aitbc-testnet scale devnet --validators 4,16,64,100 --out out/scale"
        )
    )
    def scale(
        scenario: ScenarioArgument,
        validators: Annotated[
            str,
            typer.Option(
                "--validators",
                help="Validator counts separated by commas, each at least 4.",
                show_default=False,
            ),
        ],
        out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the sweep's reports.")],
        platform: PlatformOption = PlatformName.local,
        simulate_above: Annotated[
            int | None,
            typer.Option(
                "--simulate-above",
                min=0,
                help=f"Simulate counts above this (default on local: {LOCAL_SIMULATE_ABOVE}; "
                "0 simulates every count; --platform sim simulates all).",
                show_default=False,
            ),
        ] = None,
        sets: SetOption = None,
        run_dir: RunDirOption = DEFAULT_RUN_DIR,
        ready_timeout: ReadyTimeoutOption = DEFAULT_READY_TIMEOUT_S,
    ) -> None:
        if platform not in SCALE_PLATFORMS:
            raise UsageError(
                f"--platform {platform.value}: scale runs on "
                f"{' or '.join(p.value for p in SCALE_PLATFORMS)}"
            )
        counts = parse_validator_counts(validators)
        base = load_plan(scenario, sets, platform)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        points = scale_points(
            counts,
            base_validators=base.network.validators,
            base_authorities=base.network.authorities,
            simulate_above=_simulate_above(platform, simulate_above),
        )

        def platform_of(point: ScalePoint) -> PlatformName:
            return PlatformName.sim if point.simulated else platform

        planned = [
            PlannedPoint(
                point,
                load_plan(
                    scenario,
                    [*(sets or ()), *point.overrides()],
                    platform_of(point),
                    f"{base.name}-scale-{stamp}-n{point.validators}",
                ),
            )
            for point in points
        ]
        sweep = Sweep(
            scenario=base.name,
            description=base.description,
            platform=platform.value,
            simulate_above=_simulate_above(platform, simulate_above),
            points=planned,
            platform_for=lambda point, directory: get_platform(platform_of(point).value, directory),
            out_dir=out,
            run_root=run_dir,
            on_progress=echo_progress,
            ready_timeout_s=ready_timeout,
        )
        typer.echo(
            f"scale {base.name}: N = {', '.join(str(c) for c in counts)} on {platform.value}; "
            f"reports in {out}",
            err=True,
        )
        try:
            outcome = sweep.run()
        except KeyboardInterrupt:
            typer.echo("interrupted: the running campaign was stopped", err=True)
            raise typer.Exit(code=INTERRUPTED_EXIT) from None
        for row in outcome.report.rows:
            source = " SIMULATED" if row.simulated else ""
            typer.echo(f"N = {row.validators}{source}: {row.verdict}")
        typer.echo(f"reports: {outcome.files.markdown}, {outcome.files.html}, {outcome.files.json}")
        if outcome.infrastructure_failed:
            raise typer.Exit(code=3)
        if not outcome.report.passed:
            raise typer.Exit(code=1)
