"""``aitbc-testnet fault KIND``: inject one fault into a running testnet now (and, with
``--duration``, clear it again after that long)."""

from __future__ import annotations

import re
import sys
import time
from enum import StrEnum
from typing import Annotated, Any

import typer

from orchestrator.cli import DEFAULT_RUN_DIR, JsonOption, RunDirOption
from orchestrator.commands import (
    ExistingRunIdOption,
    attach_run,
    committed_tps,
    echo_json,
    max_height,
)
from orchestrator.durations import parse_duration
from orchestrator.errors import UsageError
from orchestrator.plan import PlannedFault
from orchestrator.platforms.base import Platform
from orchestrator.progress import Progress
from orchestrator.voting_power import (
    FRACTION_LABELS,
    StakeEntry,
    TargetUnreachableError,
    power_fractions,
    resolve_count,
    resolve_fraction,
)

INTERRUPTED_EXIT = 130
NODE_KINDS = ("partition", "delay", "loss", "pause", "equivocate")
TARGET_HELP = (
    "Who: minority-third | half | majority | supermajority (shares of voting power, resolved "
    "against the running genesis), 'ids 1,2' (or 1,2), or 'count N'. Default: heal -> every "
    "validator, restart -> the killed ones; the other kinds need a target."
)
_IDS = re.compile(r"^(?:ids?[\s=:]+)?(\d+(?:\s*,\s*\d+)*)$")
_COUNT = re.compile(r"^count[\s=:]+(\d+)$")


class FaultKind(StrEnum):
    PARTITION = "partition"
    HEAL = "heal"
    KILL = "kill"
    RESTART = "restart"
    DELAY = "delay"
    LOSS = "loss"
    PAUSE = "pause"
    EQUIVOCATE = "equivocate"


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
        kind: Annotated[FaultKind, typer.Argument(help="What to inject.", case_sensitive=False)],
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
        seconds = _duration(duration)
        if seconds is not None and kind in (FaultKind.HEAL, FaultKind.RESTART):
            raise UsageError(f"fault {kind.value} is instantaneous: leave --duration out")
        platform = attach_run(run_dir, run_id)
        try:
            planned = plan_fault(platform, kind.value, target, seconds, delay_ms, jitter_ms, rate)
            outcome = run_fault(platform, planned, detach=detach, quiet=json_output)
        finally:
            close = getattr(platform, "close", None)
            if callable(close):
                close()
        if json_output:
            echo_json(outcome)
        if outcome.get("interrupted"):
            raise typer.Exit(code=INTERRUPTED_EXIT)


def _duration(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise UsageError(f"--duration: {error}") from None
    if seconds <= 0:
        raise UsageError(f"--duration {text}: use a duration above 0, e.g. 10s")
    return seconds


def stake_table_of(platform: Platform) -> tuple[tuple[StakeEntry, ...], str, int]:
    """(stake table, consensus mode, seed) of the running testnet: from its genesis file when
    the platform has one, else from the plan (the same numbers)."""
    plan = getattr(platform, "plan", None)
    seed = int(plan.network.seed) if plan is not None else 0
    genesis_path = getattr(platform, "genesis_path", None)
    if callable(genesis_path):
        from aitbc_node.genesis import load_genesis

        genesis = load_genesis(genesis_path())
        table = tuple(
            StakeEntry(index=v.index, stake=v.stake, authority=v.authority)
            for v in genesis.validators
        )
        mode = plan.network.mode if plan is not None else str(genesis.consensus.mode)
        return table, mode, seed
    if plan is None:
        raise UsageError("this run has no plan to resolve --target against: give 'ids 1,2'")
    return tuple(plan.network.stake), plan.network.mode, seed


def resolve_target(
    text: str, table: tuple[StakeEntry, ...], mode: str, seed: int
) -> tuple[str, tuple[int, ...]]:
    """``--target`` -> (as shown, validator ids). Raises UsageError (exit 2)."""
    value = text.strip().lower()
    count = len(table)
    try:
        if value in FRACTION_LABELS:
            return value, resolve_fraction(table, mode, value, seed)
        matched = _COUNT.match(value)
        if matched:
            return f"count {matched.group(1)}", resolve_count(
                table, mode, int(matched.group(1)), seed
            )
    except TargetUnreachableError as error:
        raise UsageError(f"--target {text}: {error}") from None
    matched = _IDS.match(value)
    if matched is None:
        raise UsageError(
            f"--target {text!r} is not a target: use {', '.join(FRACTION_LABELS)}, "
            "'ids 1,2' or 'count N'"
        )
    ids = tuple(sorted({int(part) for part in matched.group(1).split(",")}))
    missing = [i for i in ids if i >= count]
    if missing:
        raise UsageError(
            f"--target {text}: validator {', '.join(map(str, missing))} does not exist: the "
            f"run has validators 0..{count - 1}"
        )
    return str(list(ids)), ids


def plan_fault(
    platform: Platform,
    kind: str,
    target: str | None,
    duration_s: float | None,
    delay_ms: float,
    jitter_ms: float,
    rate: float,
) -> PlannedFault:
    """The fault the flags describe, its target resolved to validator ids."""
    table, mode, seed = stake_table_of(platform)
    if target is not None:
        text, ids = resolve_target(target, table, mode, seed)
    elif kind == "heal":
        text, ids = "all", tuple(entry.index for entry in table)
    elif kind == "restart":
        pids_of = getattr(platform, "validator_pids", None)
        pids = pids_of() if callable(pids_of) else {}
        ids = tuple(index for index, pid in sorted(pids.items()) if pid is None)
        text = "killed"
        if not ids:
            raise UsageError("fault restart: no validator is down; give --target to restart one")
    else:
        raise UsageError(f"fault {kind} needs --target: {TARGET_HELP}")
    if kind == "partition" and len(ids) == len(table):
        raise UsageError(f"--target {target}: a partition of every validator cuts nothing")
    params: dict[str, Any] = {}
    if kind == "delay":
        params = {"delay_ms": delay_ms, "jitter_ms": jitter_ms}
    elif kind == "loss":
        if not 0 < rate < 1:
            raise UsageError(f"--rate {rate}: use 0 < rate < 1 (1 is a partition)")
        params = {"rate": rate}
    return PlannedFault(
        index=0,
        kind=kind,
        target=text,
        ids=ids,
        start_s=0.0,
        end_s=duration_s,
        params=params,
        fractions=power_fractions(table, ids),
    )


def run_fault(
    platform: Platform, fault: PlannedFault, *, detach: bool, quiet: bool
) -> dict[str, Any]:
    """Apply ``fault``; with a duration (and no ``detach``) wait it out and clear it, also on
    Ctrl-C. Returns what happened (the ``--json`` document)."""
    from orchestrator.platforms.local import LocalPlatform

    progress = Progress(sys.stderr)
    say = (lambda text: None) if quiet else typer.echo
    outcome: dict[str, Any] = {
        "kind": fault.kind,
        "target": fault.target,
        "ids": list(fault.ids),
        "stake_share": fault.fractions.stake,
        "authority_share": fault.fractions.authorities,
        "duration_s": fault.duration_s,
        "applied_at": None,
        "cleared_at": None,
        "interrupted": False,
    }
    node_fault = fault.kind in NODE_KINDS
    if detach and fault.duration_s is not None and node_fault:
        if isinstance(platform, LocalPlatform):
            platform.apply_fault(fault, expire_after_s=fault.duration_s)
        else:
            platform.apply_fault(fault)
    else:
        platform.apply_fault(fault)
    outcome["applied_at"] = time.time()
    say(f"applied: {fault.describe()}")
    if fault.kind in ("heal", "restart"):
        return outcome
    if fault.duration_s is None or detach:
        if detach and fault.duration_s is not None and node_fault:
            say(f"the validators clear it by themselves after {fault.duration_s:g}s")
        else:
            undo = "fault restart" if fault.kind == "kill" else "fault heal"
            say(f"active until `aitbc-testnet {undo}`")
        return outcome
    progress.stage(f"{fault.kind} active for {fault.duration_s:g}s")
    deadline = time.monotonic() + fault.duration_s
    try:
        while (left := deadline - time.monotonic()) > 0:
            progress.update(
                height=max_height(platform),
                tps=committed_tps(platform.prometheus_url()),
                note=f"{left:.0f}s left",
            )
            time.sleep(min(1.0, max(0.0, left)))
    except KeyboardInterrupt:
        outcome["interrupted"] = True
    finally:
        progress.done()
        platform.clear_fault(fault)
        outcome["cleared_at"] = time.time()
        say(f"cleared: {fault.kind} on ids {list(fault.ids)}")
    return outcome
