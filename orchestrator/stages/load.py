"""The load stage: drive a plan's load, with its fault timeline, on a live testnet.

``run_load_window`` is the stage the campaign runs (and a capacity search runs many times on
one testnet): start the load generator and the fault timeline, report progress every tick,
fail when the load generator dies before the measured window ends, and, on any error or
Ctrl-C, clear every fault and stop the load before re-raising. ``run_load`` is the ``load``
command's Locust load (with ``--tps``/``--duration`` overrides); ``run_burst`` submits a
quick burst with the plain client.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import PlatformError, UsageError
from orchestrator.faults.timeline import FaultRecord, FaultTimeline
from orchestrator.platforms.capabilities import (
    KillRestart,
    LiveRun,
    LoadRunner,
    NodeAccess,
    require,
)
from orchestrator.scenario.plan import Plan, PlannedFault

__all__ = [
    "BURST_COMMIT_TIMEOUT_S",
    "LOAD_EXIT_GRACE_S",
    "LoadWindow",
    "replace_load",
    "run_burst",
    "run_load",
    "run_load_window",
]

LOAD_EXIT_GRACE_S = 60.0
"""Seconds after the planned end of load that the load generator may take to write its
results and exit by itself (a bound: it usually takes a few)."""
BURST_COMMIT_TIMEOUT_S = 120.0
"""How long a burst's accepted transactions may take to be committed."""

Tick = Callable[[float], None]
"""Called every tick with the seconds since the load started."""


@dataclass(frozen=True)
class LoadWindow:
    """One load that ran: when (unix seconds), what the fault timeline did, and whether the
    load generator exited by itself (False: it was stopped)."""

    load_start: float
    load_end: float
    records: tuple[FaultRecord, ...]
    exited_by_itself: bool


def replace_load(plan: Plan, **changes: Any) -> Plan:
    """``plan`` with some fields of its load section changed (``tps``, ``duration_s``, ...)."""
    return dataclasses.replace(plan, load=dataclasses.replace(plan.load, **changes))


def run_load_window(
    platform: object,
    plan: Plan,
    *,
    faults: Sequence[PlannedFault] = (),
    tick: Tick | None = None,
    tick_s: float = 5.0,
    on_fault_event: Callable[[str], None] | None = None,
    require_alive: bool = True,
    log_hint: str = "its log",
) -> LoadWindow:
    """Run ``plan``'s load on ``platform`` (``LoadRunner``) with ``faults`` on the timeline
    (see the module docstring). ``require_alive``: a load generator that exits before the end
    of the measured window is a PlatformError naming ``log_hint``."""
    runner = require(platform, LoadRunner, "run a load")
    load = plan.load
    runner.start_load(plan)
    load_start = time.time()
    timeline = FaultTimeline(platform, faults, horizon_s=load.duration_s, on_event=on_fault_event)
    end = load_start + load.duration_s
    measure_end = load.duration_s - load.cooldown_s
    try:
        timeline.start(load_start)
        while (now := time.time()) < end:
            time.sleep(min(tick_s, end - now))
            since = time.time() - load_start
            if tick is not None:
                tick(since)
            if runner.load_running():
                continue
            if require_alive and since < measure_end - 1:
                raise PlatformError(
                    f"the load generator exited {since:.0f} s into a {load.duration_s:g} s "
                    f"load: see {log_hint}"
                )
            break
    except BaseException:  # a failure or Ctrl-C: clear the faults, stop the load now
        timeline.stop()
        runner.stop_load()
        raise
    records = timeline.stop()
    exited = False
    with contextlib.suppress(PlatformError):
        exited = runner.wait_load(LOAD_EXIT_GRACE_S)
    runner.stop_load()
    return LoadWindow(load_start, end, tuple(records), exited)


def run_load(
    platform: object,
    tps: float | None,
    duration_s: float | None,
    *,
    detach: bool,
    tick: Tick | None = None,
    on_start: Callable[[str, float, float], None] | None = None,
) -> dict[str, Any]:
    """The ``load`` command: the run's scenario load (``tps`` makes it constant, ``duration_s``
    changes its length); unless ``detach``, wait for it, calling ``on_start(shape, tps,
    duration_s)`` once and ``tick`` every second. Ctrl-C stops it (``interrupted`` in the
    outcome). Returns the outcome (summary totals when written)."""
    from loadgen.errors import LoadgenError
    from loadgen.summary import read_summary

    live = require(platform, LiveRun, "run a load")
    runner = require(platform, LoadRunner, "run a load")
    changes: dict[str, Any] = {}
    if tps is not None:
        changes.update(tps=tps, shape="constant", steps=(), ramp=None, spike=None)
    if duration_s is not None:
        changes["duration_s"] = duration_s
    plan = replace_load(live.plan(), **changes) if changes else live.plan()
    load = plan.load
    files = runner.load_files()
    outcome: dict[str, Any] = {
        "mode": "locust",
        "tps": load.tps,
        "shape": load.shape,
        "duration_s": load.duration_s,
        "load_dir": str(files.dir),
        "interrupted": False,
        "detached": detach,
        "totals": None,
    }
    if detach:
        runner.start_load(plan)
        return outcome
    if on_start is not None:
        on_start(load.shape, load.tps, load.duration_s)
    try:
        window = run_load_window(
            platform, plan, tick=tick, tick_s=1.0, require_alive=False, log_hint=str(files.log)
        )
    except KeyboardInterrupt:
        outcome["interrupted"] = True
    else:
        if not window.exited_by_itself:
            raise PlatformError(
                f"the load generator did not exit {LOAD_EXIT_GRACE_S:g}s after its run time: "
                f"stopped it; see {files.log}"
            )
    if files.summary is None:
        return outcome  # this platform's load generator writes no summary
    try:
        summary = read_summary(files.summary)
    except LoadgenError:
        raise PlatformError(
            f"the load generator wrote no summary ({files.summary}): see {files.log}"
        ) from None
    outcome["totals"] = summary.totals.model_dump()
    return outcome


def run_burst(platform: object, count: int) -> dict[str, Any]:
    """Submit ``count`` transfers from the load accounts (nonces from GetAccount) to the
    running validators and wait until they are committed."""
    from loadgen.client import submit_burst, wait_for_commits
    from loadgen.errors import LoadgenError

    nodes = require(platform, NodeAccess, "submit a burst")
    live = require(platform, LiveRun, "submit a burst")
    if isinstance(platform, LoadRunner) and platform.load_running():
        raise UsageError(
            "a Locust load is running on this run: a burst would race it for the same "
            "accounts; wait for it to end or stop it first"
        )
    plan = live.plan()
    endpoints = nodes.endpoints()
    if isinstance(platform, KillRestart):
        endpoints = [e for e in endpoints if platform.is_running(e.index)]
    if not endpoints:
        raise PlatformError("no validator of this run is running: start it with `up`")
    targets = [e.grpc for e in endpoints]
    try:
        result = submit_burst(
            targets,
            live.genesis_path(),
            count,
            batch_size=plan.load.batch_size,
            accounts=range(plan.load.accounts),
            run_id=plan.run_id,
        )
        waited = wait_for_commits(
            targets[0],
            result.accepted_ids,
            timeout_s=BURST_COMMIT_TIMEOUT_S,
            from_height=(result.height_before or 0) + 1,
        )
    except LoadgenError as error:
        raise PlatformError(f"burst of {count}: {error}") from None
    return {
        "mode": "burst",
        "requested": count,
        "accepted": result.accepted,
        "rejected": result.rejected,
        "committed": len(waited.committed),
        "missing": len(waited.missing),
        "submit_s": round(result.elapsed_s, 3),
        "commit_wait_s": round(waited.elapsed_s, 3),
        "accepted_tps": round(result.accepted_tps, 1),
        "per_target": result.per_target,
        "interrupted": False,
    }
