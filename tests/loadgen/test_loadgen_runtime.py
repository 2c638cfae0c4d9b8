"""The load generator's process state at the end of a test (``loadgen.runtime``): the summary's
counters and self check are brought up to the stop, whether or not a user started sending."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadgen.config import load_settings
from loadgen.runtime import LoadgenRuntime


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def runtime_for(genesis_path: Path, clock: ManualClock, summary: Path) -> LoadgenRuntime:
    settings = load_settings(
        {
            "AITBC_TARGETS": "127.0.0.1:9",
            "AITBC_GENESIS": str(genesis_path),
            "AITBC_TPS": "100",
            "AITBC_BATCH_SIZE": "10",
            "AITBC_SUMMARY": str(summary),
        }
    )
    # CPU time stands still: the check judges the schedule alone.
    return LoadgenRuntime(settings, clock=clock, cpu_clock=lambda: 0.0)


def test_a_test_stopped_before_any_user_sent_is_behind_its_whole_schedule(
    genesis_path: Path, clock: ManualClock, tmp_path: Path
) -> None:
    runtime = runtime_for(genesis_path, clock, tmp_path / "summary.json")
    runtime.start_test()
    for _ in range(8):  # the publisher's ticks while the users are still preparing
        clock.now += 0.5
        runtime.tick()
    summary = runtime.write_summary()
    assert summary.totals.offered == 400 and summary.totals.missed == 400
    check = summary.self_check
    assert check is not None and check.saturated
    assert check.verdict.startswith(
        "load generator saturated: behind schedule: sent 0 of 400 offered transactions"
    )


def test_the_schedule_counts_from_the_first_claim_when_a_user_sent(
    genesis_path: Path, clock: ManualClock, tmp_path: Path
) -> None:
    runtime = runtime_for(genesis_path, clock, tmp_path / "summary.json")
    runtime.start_test()
    clock.now += 3.0  # preparation (nonces, signing ahead) is not counted against the users
    claims = []
    for _ in range(10):
        claim = runtime.pacer.claim(clock.now)
        assert claim is not None
        claims.append(claim)
        clock.now = claim.due_at
    runtime.metrics.sent.inc(10 * len(claims))
    summary = runtime.write_summary()
    assert summary.totals.offered == 100 and summary.totals.missed == 0
    check = summary.self_check
    assert check is not None and not check.saturated
    assert check.verdict.startswith("load generator kept up: 0.0% short of the schedule")
