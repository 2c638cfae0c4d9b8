"""Stages of ``aitbc-testnet``, one module each (``register(app)`` adds its command; the CLI
registers every module of this package at import).

This file holds what the stage commands share: finding the run a command acts on, and the
live figures (height, committed TPS) their progress lines show. Platform modules are imported
inside the functions, so ``--help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.errors import UsageError
from orchestrator.platforms.base import Platform, PlatformError

if TYPE_CHECKING:
    from orchestrator.platforms.local import LocalPlatform

__all__ = [
    "ExistingRunIdOption",
    "attach_run",
    "committed_tps",
    "find_run_dir",
    "max_height",
    "require_local",
]

TPS_QUERY = 'max(rate(aitbc_txs_committed_total{job="aitbc-validator"}[10s]))'
"""Committed TPS now: the same on every validator, so ``max`` of the rate, never ``sum``."""

ExistingRunIdOption = Annotated[
    str | None,
    typer.Option(
        "--run-id",
        help="The run to act on (a folder under --run-dir; default: the most recent run).",
        show_default=False,
    ),
]


def find_run_dir(run_root: Path, run_id: str | None) -> Path:
    """``<run_root>/<run_id>``, or the most recent run under ``run_root`` without a run id.
    Raises UsageError (exit 2) when there is no such run."""
    from orchestrator.platforms.local import STATE_FILE, latest_run

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


def attach_run(run_root: Path, run_id: str | None) -> Platform:
    """The platform of an existing run, from its state.json (local or kubernetes)."""
    directory = find_run_dir(run_root, run_id)
    from orchestrator.platforms.local import STATE_FILE, LocalPlatform

    try:
        kind = json.loads((directory / STATE_FILE).read_text()).get("platform", "local")
    except (OSError, ValueError, AttributeError):
        kind = "local"
    if kind == "local":
        return LocalPlatform.attach(directory)
    if kind == "kubernetes":
        from orchestrator.platforms import kubernetes

        attached: Platform = kubernetes.KubernetesPlatform.attach(directory)
        return attached
    raise PlatformError(f"run {directory.name} is a {kind!r} run: this command cannot act on it")


def require_local(platform: Platform, what: str) -> LocalPlatform:
    """``platform`` as a LocalPlatform, or PlatformError saying ``what`` needs one."""
    from orchestrator.platforms.local import LocalPlatform

    if not isinstance(platform, LocalPlatform):
        raise PlatformError(f"{what} works on local runs only; this run is {platform.name}")
    return platform


def committed_tps(prometheus_url: str | None) -> float | None:
    """Committed transactions per second now, from Prometheus (None: no answer or no data)."""
    if prometheus_url is None:
        return None
    from orchestrator.prometheus_server import query_instant

    try:
        samples = query_instant(prometheus_url, TPS_QUERY, timeout_s=2.0)
    except PlatformError:
        return None
    values = [sample.value for sample in samples if sample.value == sample.value]  # not NaN
    return max(values) if values else None


def max_height(platform: Platform) -> int | None:
    """The highest committed height any running validator reports (None: none answers)."""
    client_of = getattr(platform, "client", None)
    if client_of is None:
        return None
    pids = getattr(platform, "validator_pids", None)
    running = pids() if callable(pids) else {e.index: 0 for e in platform.endpoints()}
    best: int | None = None
    for index, pid in running.items():
        if pid is None:
            continue
        try:
            height = client_of(index).status().height
        except PlatformError:
            continue
        best = height if best is None else max(best, height)
    return best


def echo_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, sort_keys=False))
