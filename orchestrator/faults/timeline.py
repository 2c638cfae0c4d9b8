"""The fault timeline: applies and clears a plan's faults at their times, on a background
thread, on a platform (through ``faults.driver``: node faults by its ``NodeFaults``, kills and
restarts by its ``KillRestart``).

* Times are seconds after ``t0`` (the load start), on ``clock`` (unix seconds by default).
* Several faults may be active at once; events due at the same moment run in plan order,
  clears before applies (a fault that ends when another starts is gone first).
* ``churn`` is expanded with ``plan.churn_schedule``: one kill at each outage's start and a
  restart at its end, each recorded as its own ``FaultRecord`` (kind ``churn``, one id).
* Every fault is verified as applied and as cleared (the platform checks the node fault API,
  the pid or the pod, and raises when the check fails); the record says whether each check
  passed and keeps the first error.
* ``stop()`` clears everything still active, also after errors: call it in a ``finally``.

    timeline = FaultTimeline(platform, plan.faults, horizon_s=plan.load.duration_s)
    timeline.start(t0=time.time())
    try:
        ...  # the load runs
    finally:
        records = timeline.stop()
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orchestrator.errors import AitbcTestnetError
from orchestrator.faults.driver import apply_fault, clear_fault
from orchestrator.faults.kinds import Mechanism, fault_kind
from orchestrator.platforms.capabilities import KillRestart, require
from orchestrator.scenario.plan import PlannedFault, churn_schedule

__all__ = ["OPEN_CHURN_HORIZON_STEPS", "FaultRecord", "FaultTimeline"]

OPEN_CHURN_HORIZON_STEPS = 1000
"""An open-ended churn without ``horizon_s`` is expanded to this many outages (it runs until
``stop()``)."""
_TICK_S = 0.05


@dataclass(frozen=True)
class FaultRecord:
    """What happened to one fault (or one churn outage). Times: ``planned_*`` in seconds after
    t0, ``applied_at`` / ``cleared_at`` unix seconds (None: never done)."""

    index: int
    kind: str
    ids: tuple[int, ...]
    planned_start_s: float
    planned_end_s: float | None
    applied_at: float | None
    cleared_at: float | None
    applied_verified: bool
    cleared_verified: bool
    error: str | None


@dataclass(frozen=True)
class _Event:
    at_s: float
    clear: bool  # clears sort before applies at the same time
    order: int
    item: int  # index into the timeline's items


@dataclass(frozen=True)
class _Item:
    """One thing the timeline applies and clears: a planned fault or one churn outage."""

    fault: PlannedFault
    outage_of: int | None  # churn: the validator this outage kills
    start_s: float
    end_s: float | None

    @property
    def clearable(self) -> bool:
        return not fault_kind(self.fault.kind).instantaneous


class FaultTimeline:
    """Applies ``faults`` at ``t0 + start_s`` and clears them at ``t0 + end_s``; faults with
    no end stay until ``stop()``. ``on_event`` receives one human-readable line per action.
    ``horizon_s``: where an open churn stops cycling (default: until ``stop()``)."""

    def __init__(
        self,
        platform: object,
        faults: Sequence[PlannedFault],
        *,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[str], None] | None = None,
        horizon_s: float | None = None,
    ) -> None:
        self._platform = platform
        self._clock = clock
        self._on_event = on_event
        self._items = _expand(faults, horizon_s)
        self._records = [
            FaultRecord(
                index=item.fault.index,
                kind=item.fault.kind,
                ids=(item.outage_of,) if item.outage_of is not None else tuple(item.fault.ids),
                planned_start_s=item.start_s,
                planned_end_s=item.end_s,
                applied_at=None,
                cleared_at=None,
                applied_verified=False,
                cleared_verified=False,
                error=None,
            )
            for item in self._items
        ]
        events: list[_Event] = []
        for position, item in enumerate(self._items):
            events.append(_Event(item.start_s, False, position, position))
            if item.end_s is not None and item.clearable:
                events.append(_Event(item.end_s, True, position, position))
        self._events = sorted(events, key=lambda e: (e.at_s, not e.clear, e.order))
        self._active: set[int] = set()  # items applied (or attempted) and not cleared yet
        self._lock = threading.Lock()
        self._act_lock = threading.Lock()  # one platform action at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0: float | None = None

    # -- control ------------------------------------------------------------------------------
    def start(self, t0: float) -> None:
        """Start the background thread; event times count from ``t0`` (``clock`` seconds)."""
        if self._thread is not None:
            raise RuntimeError("FaultTimeline.start() was already called: make a new timeline")
        self._t0 = t0
        self._thread = threading.Thread(target=self._run, name="fault-timeline", daemon=True)
        self._thread.start()

    def stop(self) -> list[FaultRecord]:
        """Stop the thread, clear every fault still active (latest first), return the records.
        Safe to call twice, and without ``start()``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            active = sorted(self._active, reverse=True)
        for position in active:
            self._clear(position, reason="at stop")
        return self.records()

    def records(self) -> list[FaultRecord]:
        """A snapshot of every record, in timeline order."""
        with self._lock:
            return list(self._records)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until every scheduled event has run (True) or ``timeout_s`` passes."""
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    # -- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        assert self._t0 is not None
        for event in self._events:
            while not self._stop.is_set():
                remaining = self._t0 + event.at_s - self._clock()
                if remaining <= 0:
                    break
                self._stop.wait(min(remaining, _TICK_S))
            if self._stop.is_set():
                return
            if event.clear:
                self._clear(event.item, reason="on time")
            else:
                self._apply(event.item)

    def _apply(self, position: int) -> None:
        item = self._items[position]
        with self._act_lock:
            with self._lock:
                if item.clearable:
                    self._active.add(position)
            error: str | None = None
            try:
                if item.outage_of is not None:
                    require(self._platform, KillRestart, "churn").kill(item.outage_of)
                else:
                    apply_fault(self._platform, item.fault)
            except AitbcTestnetError as exc:
                error = str(exc)
            except Exception as exc:  # a platform bug must not end the timeline
                error = f"{type(exc).__name__}: {exc}"
            self._update(
                position,
                applied_at=self._clock(),
                applied_verified=error is None,
                error=error,
            )
        self._emit(position, "applied" if error is None else f"apply FAILED ({error})")

    def _clear(self, position: int, *, reason: str) -> None:
        item = self._items[position]
        with self._act_lock:
            with self._lock:
                if position not in self._active:
                    return
                self._active.discard(position)
            error: str | None = None
            try:
                if item.outage_of is not None:
                    require(self._platform, KillRestart, "churn").restart(item.outage_of)
                else:
                    clear_fault(self._platform, item.fault)
            except AitbcTestnetError as exc:
                error = str(exc)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            self._update(
                position, cleared_at=self._clock(), cleared_verified=error is None, error=error
            )
        text = "cleared" if error is None else f"clear FAILED ({error})"
        self._emit(position, f"{text} {reason}")

    def _update(
        self,
        position: int,
        *,
        error: str | None,
        applied_at: float | None = None,
        applied_verified: bool | None = None,
        cleared_at: float | None = None,
        cleared_verified: bool | None = None,
    ) -> None:
        with self._lock:
            record = self._records[position]
            self._records[position] = dataclasses.replace(
                record,
                error=record.error if record.error is not None else error,  # the first one
                applied_at=record.applied_at if applied_at is None else applied_at,
                applied_verified=(
                    record.applied_verified if applied_verified is None else applied_verified
                ),
                cleared_at=record.cleared_at if cleared_at is None else cleared_at,
                cleared_verified=(
                    record.cleared_verified if cleared_verified is None else cleared_verified
                ),
            )

    def _emit(self, position: int, what: str) -> None:
        if self._on_event is None:
            return
        record = self.records()[position]
        elapsed = self._clock() - (self._t0 or 0.0)
        self._on_event(
            f"t+{elapsed:.1f}s fault {record.index} {record.kind} ids {list(record.ids)}: {what}"
        )


def _expand(faults: Sequence[PlannedFault], horizon_s: float | None) -> list[_Item]:
    items: list[_Item] = []
    for fault in sorted(faults, key=lambda f: (f.start_s, f.index)):
        if fault_kind(fault.kind).mechanism is not Mechanism.CHURN:
            items.append(_Item(fault, None, fault.start_s, fault.end_s))
            continue
        horizon = horizon_s
        if horizon is None:
            every = float(fault.params["every"])
            horizon = fault.start_s + OPEN_CHURN_HORIZON_STEPS * every
        for outage in churn_schedule(fault, horizon):
            end = outage.end_s if fault.end_s is None else min(outage.end_s, fault.end_s)
            items.append(_Item(fault, outage.index, outage.start_s, max(end, outage.start_s)))
    return items
