"""The fault stage: one fault on a live testnet now (``aitbc-testnet fault``).

``plan_fault`` turns the command's flags into a planned fault, its ``--target`` resolved
against the running genesis (shares of voting power, ``ids 1,2`` or ``count N``);
``run_fault`` applies it and, with a duration, waits it out and clears it, also on Ctrl-C
(and when Ctrl-C comes while it is being applied: what was applied is cleared).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from orchestrator.errors import UsageError
from orchestrator.faults.driver import apply_fault, clear_fault
from orchestrator.faults.kinds import Mechanism, fault_kind
from orchestrator.platforms.capabilities import KillRestart, LiveRun, require
from orchestrator.scenario.plan import PlannedFault
from orchestrator.scenario.voting_power import (
    FRACTION_LABELS,
    StakeEntry,
    TargetUnreachableError,
    power_fractions,
    resolve_count,
    resolve_fraction,
)

__all__ = ["TARGET_HELP", "plan_fault", "resolve_target", "run_fault", "stake_table_of"]

TARGET_HELP = (
    "Who: minority-third | half | majority | supermajority (shares of voting power, resolved "
    "against the running genesis), 'ids 1,2' (or 1,2), or 'count N'. Default: heal -> every "
    "validator, restart -> the killed ones; the other kinds need a target."
)
TICK_S = 1.0
_IDS = re.compile(r"^(?:ids?[\s=:]+)?(\d+(?:\s*,\s*\d+)*)$")
_COUNT = re.compile(r"^count[\s=:]+(\d+)$")


def stake_table_of(platform: LiveRun) -> tuple[tuple[StakeEntry, ...], str, int]:
    """(stake table, consensus mode, seed) of the running testnet, from its genesis file."""
    from aitbc_node.genesis import load_genesis

    plan = platform.plan()
    genesis = load_genesis(platform.genesis_path())
    table = tuple(
        StakeEntry(index=v.index, stake=v.stake, authority=v.authority) for v in genesis.validators
    )
    return table, plan.network.mode, int(plan.network.seed)


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
    platform: object,
    kind: str,
    target: str | None,
    duration_s: float | None,
    params: dict[str, Any],
) -> PlannedFault:
    """The fault ``kind`` with ``params`` (validated by its kind's model), its target resolved
    to validator ids. Raises UsageError (exit 2) for flags that do not fit."""
    live = require(platform, LiveRun, f"inject a {kind} fault")
    spec = fault_kind(kind)
    table, mode, seed = stake_table_of(live)
    if target is not None:
        text, ids = resolve_target(target, table, mode, seed)
    elif spec.mechanism is Mechanism.HEAL:
        text, ids = "all", tuple(entry.index for entry in table)
    elif spec.mechanism is Mechanism.RESTART:
        processes = require(platform, KillRestart, "restart validators")
        ids = tuple(entry.index for entry in table if not processes.is_running(entry.index))
        text = "killed"
        if not ids:
            raise UsageError("fault restart: no validator is down; give --target to restart one")
    else:
        raise UsageError(f"fault {kind} needs --target: {TARGET_HELP}")
    if spec.two_sided and len(ids) == len(table):
        raise UsageError(f"--target {target}: a partition of every validator cuts nothing")
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
    platform: object,
    fault: PlannedFault,
    *,
    detach: bool,
    say: Callable[[str], None],
    tick: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Apply ``fault``; with a duration (and no ``detach``) wait it out, calling ``tick`` with
    the seconds left every second, and clear it, also on Ctrl-C. ``say`` gets the lines a
    user reads. Returns what happened (the ``--json`` document)."""
    spec = fault_kind(fault.kind)
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
    expires = detach and fault.duration_s is not None and spec.mechanism is Mechanism.NODE
    try:
        apply_fault(platform, fault, expire_after_s=fault.duration_s if expires else None)
    except KeyboardInterrupt:  # Ctrl-C while applying: take back what was applied
        outcome["interrupted"] = True
        if not spec.instantaneous:
            clear_fault(platform, fault)
            outcome["cleared_at"] = time.time()
            say(f"interrupted: {fault.kind} on ids {list(fault.ids)} cleared")
        return outcome
    outcome["applied_at"] = time.time()
    say(f"applied: {fault.describe()}")
    if spec.instantaneous:
        return outcome
    if fault.duration_s is None or detach:
        if expires:
            say(f"the validators clear it by themselves after {fault.duration_s:g}s")
        else:
            undo = "fault restart" if spec.mechanism is Mechanism.KILL else "fault heal"
            say(f"active until `aitbc-testnet {undo}`")
        return outcome
    deadline = time.monotonic() + fault.duration_s
    try:
        while (left := deadline - time.monotonic()) > 0:
            if tick is not None:
                tick(left)
            time.sleep(min(TICK_S, max(0.0, deadline - time.monotonic())))
    except KeyboardInterrupt:
        outcome["interrupted"] = True
    finally:
        clear_fault(platform, fault)
        outcome["cleared_at"] = time.time()
        say(f"cleared: {fault.kind} on ids {list(fault.ids)}")
    return outcome
