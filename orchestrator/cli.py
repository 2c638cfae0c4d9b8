"""``aitbc-testnet``: the command line of the orchestrator.

Commands here: ``validate`` and ``scenarios``. The stages (``up``, ``status``, ``load``,
``fault``, ``collect``, ``report``, ``down``, ``run``, ``render``) live in their own modules:
every module of the ``orchestrator.commands`` package that defines ``register(app)`` is
registered on this app at import (sorted by module name), so a new command is a new file::

    # orchestrator/commands/status.py
    from orchestrator.commands.options import PlatformName, PlatformOption, RunDirOption
    def register(app: typer.Typer) -> None:
        @app.command(help="...")
        def status(platform: PlatformOption = PlatformName.local, ...) -> None: ...

Commands import ``commands.options`` and ``commands.output`` (what they share), never this
module. Errors: library code raises ``AitbcTestnetError`` subclasses; the app's group turns
them into the message on stderr (no traceback) and the class's exit code (ScenarioError, bad
flags and a platform without the capability asked for 2, PlatformError 3). Anything else
propagates as a bug.
"""

from __future__ import annotations

import importlib
import pkgutil
import signal
import sys
import threading
from typing import Any

import typer
from typer.core import TyperGroup

from orchestrator.commands.options import (
    PlatformName,
    PlatformOption,
    ScenarioArgument,
    SetOption,
    load_plan,
)
from orchestrator.commands.output import format_fault, plan_summary
from orchestrator.errors import AitbcTestnetError, ScenarioError
from orchestrator.platforms.sim.flags import sim_flags
from orchestrator.scenario.loader import builtin_scenarios, load_scenario


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


# ----------------------------------------------------------------------------- extensions


def register_command_modules(target: typer.Typer) -> None:
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


register_command_modules(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``aitbc-testnet``. Returns the exit code (0 on success).

    Ctrl-C (SIGINT) always interrupts a command, which then clears its faults, stops its load
    and tears down what it started: Python installs its KeyboardInterrupt handler only when
    SIGINT is not ignored at start, and a shell starts a script's background jobs with SIGINT
    ignored, so ``aitbc-testnet run ... &`` would otherwise run on through ``kill -INT``."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
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
