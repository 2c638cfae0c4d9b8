"""The fault timeline engine's timing and bookkeeping, against a platform that records calls
(the real local platform is exercised by tests/e2e)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.fault_engine import FaultRecord, FaultTimeline
from orchestrator.plan import Plan, PlannedFault
from orchestrator.platforms.base import Endpoint, Platform, PlatformError
from orchestrator.voting_power import PowerFractions

NO_FRACTIONS = PowerFractions(0.0, 0.0, 0.0)


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


class RecordingPlatform:
    """Records (monotonic time, call, argument); optionally fails chosen calls."""

    name = "recording"

    def __init__(self, fail: set[tuple[str, Any]] | None = None) -> None:
        self.calls: list[tuple[float, str, Any]] = []
        self.fail = fail or set()
        self.lock = threading.Lock()

    def _record(self, call: str, argument: Any) -> None:
        with self.lock:
            self.calls.append((time.monotonic(), call, argument))
        if (call, argument) in self.fail:
            raise PlatformError(f"{call} {argument} failed on purpose")

    def apply_fault(self, fault: PlannedFault) -> None:
        self._record("apply", fault.index)

    def clear_fault(self, fault: PlannedFault) -> None:
        self._record("clear", fault.index)

    def kill(self, index: int) -> None:
        self._record("kill", index)

    def restart(self, index: int) -> None:
        self._record("restart", index)

    def deploy(self, plan: Plan) -> None:
        raise AssertionError("not used")

    def wait_ready(self, timeout_s: float) -> None:
        raise AssertionError("not used")

    def endpoints(self) -> list[Endpoint]:
        return []

    def prometheus_url(self) -> str | None:
        return None

    def start_load(self, plan: Plan) -> None:
        raise AssertionError("not used")

    def stop_load(self) -> None:
        pass

    def collect_artifacts(self, dest: Path) -> None:
        pass

    def destroy(self) -> None:
        pass

    def sequence(self) -> list[tuple[str, Any]]:
        return [(call, argument) for _, call, argument in self.calls]


def run_timeline(
    platform: RecordingPlatform, faults: list[PlannedFault], wait_s: float, **kwargs: Any
) -> tuple[list[FaultRecord], float]:
    timeline = FaultTimeline(platform, faults, clock=time.monotonic, **kwargs)
    t0 = time.monotonic()
    timeline.start(t0)
    try:
        time.sleep(wait_s)
    finally:
        records = timeline.stop()
    return records, t0


def test_recording_platform_is_a_platform() -> None:
    assert isinstance(RecordingPlatform(), Platform)


def test_faults_apply_and_clear_at_their_times_and_overlap() -> None:
    platform = RecordingPlatform()
    faults = [fault(0, "partition", (1,), 0.1, 0.5), fault(1, "delay", (2, 3), 0.2, 0.35)]
    records, t0 = run_timeline(platform, faults, 0.8)
    assert platform.sequence() == [("apply", 0), ("apply", 1), ("clear", 1), ("clear", 0)]
    when = {(call, arg): at - t0 for at, call, arg in platform.calls}
    assert when[("apply", 0)] == pytest.approx(0.1, abs=0.08)
    assert when[("apply", 1)] == pytest.approx(0.2, abs=0.08)
    assert when[("clear", 1)] == pytest.approx(0.35, abs=0.08)
    assert when[("clear", 0)] == pytest.approx(0.5, abs=0.08)
    for record in records:
        assert record.applied_verified and record.cleared_verified and record.error is None
        assert record.applied_at is not None and record.cleared_at is not None
        assert record.cleared_at > record.applied_at
    assert records[1].ids == (2, 3)


def test_open_fault_is_cleared_by_stop() -> None:
    platform = RecordingPlatform()
    records, _ = run_timeline(platform, [fault(0, "equivocate", (1,), 0.05, None)], 0.2)
    assert platform.sequence() == [("apply", 0), ("clear", 0)]
    assert records[0].cleared_verified
    assert records[0].planned_end_s is None


def test_stop_before_a_fault_starts_applies_nothing() -> None:
    platform = RecordingPlatform()
    records, _ = run_timeline(platform, [fault(0, "pause", (1,), 5.0, 6.0)], 0.1)
    assert platform.sequence() == []
    assert records[0].applied_at is None and not records[0].applied_verified


def test_stop_in_the_middle_clears_what_is_active() -> None:
    platform = RecordingPlatform()
    faults = [fault(0, "partition", (1,), 0.05, 10.0), fault(1, "loss", (2,), 0.1, 10.0)]
    records, _ = run_timeline(platform, faults, 0.3)
    assert platform.sequence() == [("apply", 0), ("apply", 1), ("clear", 1), ("clear", 0)]
    assert all(record.cleared_verified for record in records)


def test_clear_before_apply_at_the_same_time() -> None:
    platform = RecordingPlatform()
    faults = [fault(0, "partition", (1,), 0.05, 0.2), fault(1, "partition", (2,), 0.2, 0.3)]
    run_timeline(platform, faults, 0.5)
    assert platform.sequence() == [("apply", 0), ("clear", 0), ("apply", 1), ("clear", 1)]


def test_churn_expands_into_kills_and_restarts() -> None:
    platform = RecordingPlatform()
    churn = fault(0, "churn", (1, 2), 0.05, 0.5, every=0.2, downtime=0.1)
    records, t0 = run_timeline(platform, [churn], 0.7)
    assert platform.sequence() == [
        ("kill", 1),
        ("restart", 1),
        ("kill", 2),
        ("restart", 2),
        ("kill", 1),
        ("restart", 1),
    ]
    assert [record.ids for record in records] == [(1,), (2,), (1,)]
    assert [record.planned_start_s for record in records] == pytest.approx([0.05, 0.25, 0.45])
    assert [record.planned_end_s for record in records] == pytest.approx([0.15, 0.35, 0.5])
    assert all(record.kind == "churn" and record.index == 0 for record in records)
    first_kill = next(at for at, call, _ in platform.calls if call == "kill")
    assert first_kill - t0 == pytest.approx(0.05, abs=0.08)


def test_open_churn_stops_at_the_horizon() -> None:
    platform = RecordingPlatform()
    churn = fault(0, "churn", (3,), 0.0, None, every=0.1, downtime=0.05)
    timeline = FaultTimeline(platform, [churn], clock=time.monotonic, horizon_s=0.25)
    assert len(timeline.records()) == 3


def test_failed_apply_is_recorded_and_still_cleared() -> None:
    platform = RecordingPlatform(fail={("apply", 0)})
    events: list[str] = []
    records, _ = run_timeline(
        platform, [fault(0, "delay", (1,), 0.05, 0.15)], 0.3, on_event=events.append
    )
    record = records[0]
    assert not record.applied_verified
    assert record.error is not None and "failed on purpose" in record.error
    assert platform.sequence() == [("apply", 0), ("clear", 0)]  # a partial apply is undone
    assert record.cleared_verified
    assert any("apply FAILED" in line for line in events)


def test_failed_clear_keeps_the_error() -> None:
    platform = RecordingPlatform(fail={("clear", 0)})
    records, _ = run_timeline(platform, [fault(0, "pause", (1,), 0.02, 0.08)], 0.2)
    assert records[0].applied_verified and not records[0].cleared_verified
    assert records[0].error is not None and "clear 0" in records[0].error


def test_heal_and_restart_are_applied_but_never_cleared() -> None:
    platform = RecordingPlatform()
    faults = [fault(0, "kill", (1,), 0.02, 0.1), fault(1, "restart", (1,), 0.1, None)]
    records, _ = run_timeline(platform, faults, 0.3)
    assert platform.sequence() == [("apply", 0), ("clear", 0), ("apply", 1)]
    assert records[1].applied_verified and records[1].cleared_at is None


def test_events_report_each_action() -> None:
    platform = RecordingPlatform()
    events: list[str] = []
    run_timeline(platform, [fault(3, "loss", (2,), 0.02, 0.06)], 0.15, on_event=events.append)
    assert len(events) == 2
    assert "fault 3 loss ids [2]: applied" in events[0]
    assert "cleared on time" in events[1]


def test_start_twice_is_refused_and_stop_without_start_is_fine() -> None:
    timeline = FaultTimeline(RecordingPlatform(), [], clock=time.monotonic)
    assert timeline.stop() == []
    timeline.start(time.monotonic())
    with pytest.raises(RuntimeError, match="already"):
        timeline.start(time.monotonic())
    timeline.stop()


def test_stop_is_idempotent() -> None:
    platform = RecordingPlatform()
    timeline = FaultTimeline(platform, [fault(0, "pause", (1,), 0.0, None)], clock=time.monotonic)
    timeline.start(time.monotonic())
    time.sleep(0.1)
    first = timeline.stop()
    second = timeline.stop()
    assert first == second
    assert platform.sequence() == [("apply", 0), ("clear", 0)]
