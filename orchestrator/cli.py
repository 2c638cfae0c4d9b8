"""``aitbc-testnet``: the command line of the orchestrator.

Commands here: ``validate`` and ``scenarios``. The stages (``up``, ``status``, ``load``,
``fault``, ``down``, ...) live in their own modules:
every module of the ``orchestrator.commands`` package that defines ``register(app)`` is
registered on this app at import (sorted by module name), so a new command is a new file::

    # orchestrator/commands/status.py
    from orchestrator.cli import PlatformOption, RunDirOption
    def register(app: typer.Typer) -> None:
        @app.command(help="...")
        def status(platform: PlatformOption = PlatformName.local, ...) -> None: ...

Errors: library code raises ``AitbcTestnetError`` subclasses; the app's group turns them into
the message on stderr (no traceback) and the class's exit code (ScenarioError and bad flags 2,
PlatformError 3). Anything else propagates as a bug.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from orchestrator.errors import AitbcTestnetError, ScenarioError
from orchestrator.plan import Plan, PlannedFault, resolve_plan
from orchestrator.platforms.sim import SimRunResult, sim_flags
from orchestrator.scenario_loader import builtin_scenarios, load_scenario

MAX_IDS_SHOWN = 16


class AitbcGroup(TyperGroup):
    """The app's click group: maps orchestrator errors to stderr + exit code."""

    def invoke(self, ctx: Any) -> Any:  # typer's (vendored) click Context
        try:
            return super().invoke(ctx)
        except AitbcTestnetError as exc:
            text = str(exc) if isinstance(exc, ScenarioError) else f"error: {exc}"
            typer.echo(text, err=True)
            raise typer.Exit(code=exc.exit_code) from None


app = typer.Typer(
    name="aitbc-testnet",
    cls=AitbcGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    help=(
        "Stand up AITBC consensus testnets (local processes, Kubernetes, or the simulator), "
        "drive load, inject faults and judge the run.\n\n"
        "Exit codes: 0 passed, 1 criteria failed, 2 bad input, 3 infrastructure failure.\n\n"
        "Example: aitbc-testnet validate devnet-smoke"
    ),
)


# ----------------------------------------------------------------------------- shared options


class PlatformName(StrEnum):
    local = "local"
    kubernetes = "kubernetes"
    sim = "sim"


DEFAULT_RUN_DIR = Path(".aitbc/runs")

ScenarioArgument = Annotated[
    str,
    typer.Argument(
        metavar="SCENARIO",
        help="A scenario YAML file or a built-in name (list them with `aitbc-testnet scenarios`).",
        show_default=False,
    ),
]
PlatformOption = Annotated[
    PlatformName,
    typer.Option("--platform", "-p", help="Where the testnet runs.", case_sensitive=False),
]
RunDirOption = Annotated[
    Path,
    typer.Option("--run-dir", help="Folder of run directories; each run uses <run-dir>/<run-id>/."),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="KEY=VALUE",
        help="Override a scenario value before validation (dotted path, list indices as "
        "numbers, value parsed as YAML), e.g. --set load.tps=500 --set faults.0.at=25s. "
        "Repeatable.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
RunIdOption = Annotated[
    str | None,
    typer.Option(
        "--run-id",
        help="Name of the run (default: <scenario>-<UTC yyyymmdd-HHMMSS>).",
        show_default=False,
    ),
]


def load_plan(
    scenario: str, sets: list[str] | None, platform: PlatformName, run_id: str | None = None
) -> Plan:
    """SCENARIO + --set overrides -> validated scenario -> resolved plan (raises
    ScenarioError/UsageError, which the app maps to exit 2)."""
    return resolve_plan(load_scenario(scenario, sets or ()), platform=platform.value, run_id=run_id)


def format_ids(ids: tuple[int, ...]) -> str:
    if len(ids) <= MAX_IDS_SHOWN:
        return str(list(ids))
    head = ", ".join(str(i) for i in ids[:MAX_IDS_SHOWN])
    return f"[{head}, ...] ({len(ids)} validators)"


def format_fault(fault: PlannedFault) -> str:
    until = "open" if fault.end_s is None else f"until {fault.end_s:g}s"
    return (
        f"fault {fault.index}: {fault.kind} {fault.target} -> ids {format_ids(fault.ids)} at "
        f"{fault.start_s:g}s {until} ({fault.fractions.stake:.1%} of stake, "
        f"{fault.fractions.authorities:.1%} of authorities, {fault.fractions.count:.1%} of "
        "validators)"
    )


def plan_summary(plan: Plan) -> str:
    network, load = plan.network, plan.load
    stake = network.stake_spec if isinstance(network.stake_spec, str) else "explicit"
    shape = f"{load.tps:g} tps" if load.shape == "constant" else f"{load.shape} load"
    faults = f"{len(plan.faults)} fault" + ("" if len(plan.faults) == 1 else "s")
    if plan.faults:
        faults += " resolved to ids"
    return (
        f"{plan.name}: {network.validators} validators ({network.authorities} authorities, "
        f"{network.mode} mode, stake {stake}, seed {network.seed}); {shape} for "
        f"{load.duration_s:g}s (measured {load.measure_start_s:g}s-{load.measure_end_s:g}s); "
        f"{faults}"
    )


# ----------------------------------------------------------------------------- commands


@app.command(
    help=(
        "Check a scenario (file or built-in) and show the resolved plan: validator counts, "
        "load and every fault's target resolved to validator ids. Exits 2 with FILE:LINE: "
        "field: message for each problem.\n\n"
        "Example: aitbc-testnet validate devnet-smoke --set load.tps=500 --platform sim"
    )
)
def validate(
    scenario: ScenarioArgument,
    sets: SetOption = None,
    platform: PlatformOption = PlatformName.local,
) -> None:
    plan = load_plan(scenario, sets, platform)
    typer.echo(f"OK: {plan_summary(plan)}")
    for fault in plan.faults:
        typer.echo(f"  {format_fault(fault)}")
    if platform is PlatformName.sim:
        flags = sim_flags(plan)
        typer.echo(f"  sim: aitbc-node sim {' '.join(flags.argv)}")
        for note in flags.notes:
            typer.echo(f"  note: {note}")
        for item in flags.not_simulated:
            typer.echo(f"  not simulated: {item}")


@app.command(
    help=(
        "List the built-in scenarios with one line each; use a name wherever a SCENARIO is "
        "expected.\n\n"
        "Example: aitbc-testnet scenarios"
    )
)
def scenarios() -> None:
    builtins = builtin_scenarios()
    width = max((len(name) for name in builtins), default=0)
    for name in builtins:
        description = load_scenario(name).description
        typer.echo(f"{name:<{width}}  {description}")


def sim_summary(result: SimRunResult, directory: Path) -> str:
    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:g} ms"

    lines = [
        f"SIMULATED run {result.run_id} ({result.scenario}): mode {result.mode}, crypto "
        f"{result.crypto}",
        f"  committed height {result.committed_height}, safety violations "
        f"{result.safety_violations}, slashed validators {result.slashed_validators}",
        f"  finality p50 {ms(result.finality_p50_ms)}, p99 {ms(result.finality_p99_ms)}",
        f"  {result.simulated_seconds:g} simulated s in {result.wall_seconds:g} wall s, "
        f"{result.messages_sent} messages",
    ]
    lines += [f"  not simulated: {item}" for item in result.not_simulated]
    lines += [f"  note: {note}" for note in result.notes]
    lines.append(f"  files: {directory}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- extensions


def _register_command_modules(target: typer.Typer) -> None:
    """Register every ``orchestrator.commands.<module>.register(app)``."""
    try:
        package = importlib.import_module("orchestrator.commands")
    except ModuleNotFoundError as exc:
        if exc.name == "orchestrator.commands":
            return
        raise
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"orchestrator.commands.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(target)


_register_command_modules(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``aitbc-testnet``. Returns the exit code (0 on success)."""
    try:
        app(args=argv, prog_name="aitbc-testnet")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    return 0
