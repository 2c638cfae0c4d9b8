"""Run directories of live runs: ``<run-root>/<run-id>/state.json`` names the platform that
started the run; ``find_run_dir`` picks the run a stage command acts on (the newest unless
``--run-id``)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from orchestrator.errors import PlatformError, UsageError

__all__ = [
    "DEFAULT_RUN_ROOT",
    "STATE_FILE",
    "StateRecord",
    "find_run_dir",
    "latest_run",
    "run_platform",
]

DEFAULT_RUN_ROOT = Path(".aitbc/runs")
STATE_FILE = "state.json"
"""Every attachable platform keeps its run's state in this file of the run directory, with a
``platform`` field (a state without one is a local run's)."""


class StateRecord(BaseModel):
    """Base of the records in a state file: a field this version does not know is an error
    (the run comes from another version), never silently dropped."""

    model_config = ConfigDict(extra="forbid")


def latest_run(run_root: Path) -> Path | None:
    """The most recently created run directory under ``run_root`` (one with a state.json),
    or None when there is none."""
    if not run_root.is_dir():
        return None
    best: tuple[float, Path] | None = None
    for candidate in run_root.iterdir():
        state_path = candidate / STATE_FILE
        if not state_path.is_file():
            continue
        try:
            created = float(json.loads(state_path.read_text()).get("created", 0.0))
        except (OSError, ValueError, AttributeError, TypeError):
            created = state_path.stat().st_mtime
        if best is None or created > best[0]:
            best = (created, candidate)
    return None if best is None else best[1]


def find_run_dir(run_root: Path, run_id: str | None) -> Path:
    """``<run_root>/<run_id>``, or the most recent run under ``run_root`` without a run id.
    Raises UsageError (exit 2) when there is no such run."""
    if run_id is not None:
        directory = run_root / run_id
        if not (directory / STATE_FILE).is_file():
            raise UsageError(
                f"no run {run_id!r} in {run_root}: list the runs with `ls {run_root}`, pass "
                "the --run-dir it was started with, or leave --run-id out for the newest"
            )
        return directory
    newest = latest_run(run_root)
    if newest is None:
        raise UsageError(
            f"no run in {run_root}: start one with `aitbc-testnet up SCENARIO` (or pass the "
            "--run-dir it was started with)"
        )
    return newest


def run_platform(run_dir: Path) -> str:
    """The platform named by the run's state.json (``local`` when it names none). Raises
    PlatformError when there is no readable state."""
    path = Path(run_dir) / STATE_FILE
    try:
        document = json.loads(path.read_text())
    except OSError:
        raise PlatformError(
            f"{run_dir} is not a run directory (no {STATE_FILE}): give the --run-id of a run "
            "started with `aitbc-testnet up` (they live in the --run-dir folder)"
        ) from None
    except ValueError as error:
        raise PlatformError(
            f"{path} cannot be read ({str(error)[:200]}): the run directory is damaged or from "
            "another version; stop its processes by hand"
        ) from None
    name = document.get("platform", "local") if isinstance(document, dict) else None
    if not isinstance(name, str):
        raise PlatformError(f"{path} names no platform: the run directory is damaged")
    return name
