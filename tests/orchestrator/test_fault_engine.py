"""The fault timeline's order and bookkeeping, on the in-memory platform and a clock the test
moves by hand: each step sets the time and waits (on a condition, with a generous bound) until
the timeline's thread has done what is due, so nothing depends on how fast the machine is.
The real local platform is exercised by tests/e2e."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from memory_platform import MemoryPlatform

from orchestrator.errors import CapabilityError
from orchestrator.faults.driver import apply_fault
from orchestrator.faults.kinds import fault_kind
from orchestrator.faults.timeline import FaultRecord, FaultTimeline
from orchestrator.platforms.capabilities import KillRestart, NodeFaults
from orchestrator.scenario.plan import PlannedFault
from orchestrator.scenario.voting_power import PowerFractions

NO_FRACTIONS = PowerFractions(0.0, 0.0, 0.0)
WAIT_BOUND_S = 60.0
"""A bound on waiting for the timeline's thread (it takes milliseconds)."""


class ManualClock:
    """Time that moves only when the test says."""

    def __init__(self) -> None:
        self._now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def set(self, now: float) -> None:
        with self._lock:
            self._now = now


def fault(
    index: int,
    kind: str,
    ids: tuple[int, ...],
    start: float,
    end: float | None,
    **params: Any,
) -> PlannedFault:
    return PlannedFault(
        index=index,
        kind=kind,
        target=str(list(ids)),
        ids=ids,
        start_s=start,
        end_s=end,
        params=params,
        fractions=NO_FRACTIONS,
    )


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_BOUND_S
    while not condition():
        assert time.monotonic() < deadline, "the timeline did not act within the bound"
        time.sleep(0.01)


class Stepper:
    """A started timeline of ``faults`` on ``platform``, stepped by hand."""

    def __init__(self, platform: MemoryPlatform, faults: list[PlannedFault], **kwargs: Any) -> None:
        self.platform = platform
        self.clock = ManualClock()
        self.timeline = FaultTimeline(platform, faults, clock=self.clock, **kwargs)
        self.timeline.start(0.0)

    def at(self, now: float, calls: int) -> None:
        """Move to ``now`` and wait until the platform saw ``calls`` calls in all and the
        timeline recorded everything due by then."""
        self.clock.set(now)
        wait_until(lambda: len(self.platform.calls()) >= calls)
        wait_until(lambda: self._settled(now))

    def _settled(self, now: float) -> bool:
        for record in self.timeline.records():
            if record.planned_start_s <= now and record.applied_at is None:
                return False
            ends = record.planned_end_s is not None and record.planned_end_s <= now
            if ends and not fault_kind(record.kind).instantaneous and record.cleared_at is None:
                return False
        return True

    def stop(self) -> list[FaultRecord]:
        return self.timeline.stop()


def test_the_memory_platform_has_what_the_timeline_drives() -> None:
    platform = MemoryPlatform()
    assert isinstance(platform, NodeFaults) and isinstance(platform, KillRestart)


def test_faults_apply_and_clear_at_their_times_and_overlap() -> None:
    platform = MemoryPlatform()
    run = Stepper(
        platform, [fault(0, "partition", (1,), 0.1, 0.5), fault(1, "delay", (2, 3), 0.2, 0.35)]
    )
    run.at(0.1, 1)
    run.at(0.2, 2)
    run.at(0.35, 3)
    run.at(0.5, 4)
    records = run.stop()
    assert platform.calls() == [("inject", 0), ("inject", 1), ("remove", 1), ("remove", 0)]
    assert [(r.applied_at, r.cleared_at) for r in records] == [(0.1, 0.5), (0.2, 0.35)]
    for record in records:
        assert record.applied_verified and record.cleared_verified and record.error is None
    assert records[1].ids == (2, 3)


def test_open_fault_is_cleared_by_stop() -> None:
    platform = MemoryPlatform()
    run = Stepper(platform, [fault(0, "equivocate", (1,), 0.05, None)])
    run.at(0.05, 1)
    records = run.stop()
    assert platform.calls() == [("inject", 0), ("remove", 0)]
    assert records[0].cleared_verified
    assert records[0].planned_end_s is None


def test_stop_before_a_fault_starts_applies_nothing() -> None:
    platform = MemoryPlatform()
    records = Stepper(platform, [fault(0, "pause", (1,), 5.0, 6.0)]).stop()
    assert platform.calls() == []
    assert records[0].applied_at is None and not records[0].applied_verified


def test_stop_in_the_middle_clears_what_is_active_latest_first() -> None:
    platform = MemoryPlatform()
    run = Stepper(
        platform, [fault(0, "partition", (1,), 0.05, 10.0), fault(1, "loss", (2,), 0.1, 10.0)]
    )
    run.at(0.1, 2)
    records = run.stop()
    assert platform.calls() == [("inject", 0), ("inject", 1), ("remove", 1), ("remove", 0)]
    assert all(record.cleared_verified for record in records)
    assert not platform.active


def test_clear_before_apply_at_the_same_time() -> None:
    platform = MemoryPlatform()
    run = Stepper(
        platform, [fault(0, "partition", (1,), 0.05, 0.2), fault(1, "partition", (2,), 0.2, 0.3)]
    )
    run.at(0.05, 1)
    run.at(0.2, 3)
    run.at(0.3, 4)
    run.stop()
    assert platform.calls() == [("inject", 0), ("remove", 0), ("inject", 1), ("remove", 1)]


def test_churn_expands_into_kills_and_restarts() -> None:
    platform = MemoryPlatform()
    run = Stepper(platform, [fault(0, "churn", (1, 2), 0.5, 5.0, every=2.0, downtime=1.0)])
    for calls, now in enumerate((0.5, 1.5, 2.5, 3.5, 4.5, 5.0), start=1):
        run.at(now, calls)
    records = run.stop()
    assert platform.calls() == [
        ("kill", 1),
        ("restart", 1),
        ("kill", 2),
        ("restart", 2),
        ("kill", 1),
        ("restart", 1),
    ]
    assert [record.ids for record in records] == [(1,), (2,), (1,)]
    assert [record.planned_start_s for record in records] == [0.5, 2.5, 4.5]
    assert [record.planned_end_s for record in records] == [1.5, 3.5, 5.0]
    assert [record.applied_at for record in records] == [0.5, 2.5, 4.5]
    assert all(record.kind == "churn" and record.index == 0 for record in records)


def test_open_churn_stops_at_the_horizon() -> None:
    churn = fault(0, "churn", (3,), 0.0, None, every=0.1, downtime=0.05)
    timeline = FaultTimeline(MemoryPlatform(), [churn], clock=ManualClock(), horizon_s=0.25)
    assert len(timeline.records()) == 3


def test_failed_apply_is_recorded_and_still_cleared() -> None:
    platform = MemoryPlatform(fail={("inject", 0)})
    events: list[str] = []
    run = Stepper(platform, [fault(0, "delay", (1,), 0.05, 0.15)], on_event=events.append)
    run.at(0.05, 1)
    run.at(0.15, 2)
    record = run.stop()[0]
    assert not record.applied_verified
    assert record.error is not None and "failed on purpose" in record.error
    assert platform.calls() == [("inject", 0), ("remove", 0)]  # a partial apply is undone
    assert record.cleared_verified
    assert any("apply FAILED" in line for line in events)


def test_failed_clear_keeps_the_error() -> None:
    platform = MemoryPlatform(fail={("remove", 0)})
    run = Stepper(platform, [fault(0, "pause", (1,), 0.02, 0.08)])
    run.at(0.02, 1)
    run.at(0.08, 2)
    records = run.stop()
    assert records[0].applied_verified and not records[0].cleared_verified
    assert records[0].error is not None and "remove 0" in records[0].error


def test_kill_is_cleared_by_a_restart_and_restart_is_never_cleared() -> None:
    platform = MemoryPlatform()
    run = Stepper(
        platform, [fault(0, "kill", (1,), 0.02, 0.1), fault(1, "restart", (1,), 0.1, None)]
    )
    run.at(0.02, 1)
    run.at(0.1, 3)
    records = run.stop()
    assert platform.calls() == [("kill", 1), ("restart", 1), ("restart", 1)]
    assert records[1].applied_verified and records[1].cleared_at is None


def test_events_report_each_action() -> None:
    platform = MemoryPlatform()
    events: list[str] = []
    run = Stepper(platform, [fault(3, "loss", (2,), 0.02, 0.06)], on_event=events.append)
    run.at(0.02, 1)
    run.at(0.06, 2)
    run.stop()
    assert len(events) == 2
    assert "fault 3 loss ids [2]: applied" in events[0]
    assert "cleared on time" in events[1]


def test_start_twice_is_refused_and_stop_without_start_is_fine() -> None:
    timeline = FaultTimeline(MemoryPlatform(), [], clock=ManualClock())
    assert timeline.stop() == []
    timeline.start(0.0)
    with pytest.raises(RuntimeError, match="already"):
        timeline.start(0.0)
    timeline.stop()


def test_stop_is_idempotent() -> None:
    platform = MemoryPlatform()
    run = Stepper(platform, [fault(0, "pause", (1,), 0.0, None)])
    run.at(0.0, 1)
    first = run.stop()
    second = run.stop()
    assert first == second
    assert platform.calls() == [("inject", 0), ("remove", 0)]


def test_churn_is_the_timelines_not_a_single_fault() -> None:
    with pytest.raises(Exception, match="fault timeline"):
        apply_fault(MemoryPlatform(), fault(0, "churn", (1,), 0.0, None, every=5.0, downtime=2.0))


def test_a_platform_without_node_faults_is_refused_naming_it() -> None:
    class ProcessesOnly:
        name = "processes-only"

        def image_tag(self) -> str:
            return "t"

        def kill(self, index: int) -> None: ...

        def restart(self, index: int) -> None: ...

        def is_running(self, index: int) -> bool:
            return True

    with pytest.raises(CapabilityError) as caught:
        apply_fault(ProcessesOnly(), fault(0, "delay", (1,), 0.0, None, delay_ms=5))
    message = str(caught.value)
    assert "platform processes-only cannot apply fault 0 (delay)" in message
    assert "no NodeFaults capability (it has KillRestart)" in message
    assert caught.value.exit_code == 2
