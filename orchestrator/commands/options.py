"""What the commands share: their Typer options and arguments, and reading a scenario into a
plan. Commands import this module, never ``orchestrator.cli`` (which imports the commands)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.errors import UsageError
from orchestrator.platforms.run_dirs import DEFAULT_RUN_ROOT
from orchestrator.scenario.durations import parse_duration
from orchestrator.scenario.loader import load_scenario
from orchestrator.scenario.plan import Plan, resolve_plan

__all__ = [
    "DEFAULT_RUN_DIR",
    "ExistingRunIdOption",
    "JsonOption",
    "OutOption",
    "PlatformName",
    "PlatformOption",
    "ReadyTimeoutOption",
    "RunDirOption",
    "RunIdOption",
    "ScenarioArgument",
    "SetOption",
    "duration_flag",
    "load_plan",
]


class PlatformName(StrEnum):
    """The ``--platform`` choices: the registry's platforms (a test checks they agree)."""

    local = "local"
    kubernetes = "kubernetes"
    sim = "sim"


DEFAULT_RUN_DIR = DEFAULT_RUN_ROOT

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
ExistingRunIdOption = Annotated[
    str | None,
    typer.Option(
        "--run-id",
        help="The run to act on (a folder under --run-dir; default: the most recent run).",
        show_default=False,
    ),
]

OutOption = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="Folder for the reports (default: <run-dir>/<run-id>/report).",
        show_default=False,
    ),
]


ReadyTimeoutOption = Annotated[
    float,
    typer.Option("--ready-timeout", min=1, help="Seconds to wait for the testnet to be ready."),
]


def duration_flag(text: str | None, *, at_least_s: float, hint: str) -> float | None:
    """``--duration TEXT`` as seconds (None when not given); UsageError (exit 2) when it is
    not a duration or shorter than ``at_least_s`` (``hint`` says what to use)."""
    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise UsageError(f"--duration: {error}") from None
    if seconds < at_least_s or seconds <= 0:
        raise UsageError(f"--duration {text}: {hint}")
    return seconds


def load_plan(
    scenario: str, sets: list[str] | None, platform: PlatformName, run_id: str | None = None
) -> Plan:
    """SCENARIO + --set overrides -> validated scenario -> resolved plan (raises
    ScenarioError/UsageError, which the app maps to exit 2)."""
    return resolve_plan(load_scenario(scenario, sets or ()), platform=platform.value, run_id=run_id)
