"""safety.py on synthetic hash lists, blocks, probe logs and height series."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from orchestrator.errors import PlatformError
from orchestrator.measure.safety import (
    MAX_LISTED_DIVERGENCES,
    FaultWindow,
    ProbeEntry,
    build_safety_report,
    check_probes,
    check_recoveries,
    check_slashing,
    find_divergences,
    lowest_common_height,
    read_chains,
    recovery_time,
    tx_heights,
)


def chain(n: int, fork_at: int | None = None, tag: bytes = b"b") -> list[bytes]:
    """Hashes of heights 1..n; from ``fork_at`` on they carry ``tag`` instead of ``a``."""
    return [
        (tag if fork_at is not None and h >= fork_at else b"a") + h.to_bytes(4, "big")
        for h in range(1, n + 1)
    ]


@dataclass(frozen=True)
class Block:
    height: int
    tx_ids: tuple[bytes, ...]


@dataclass(frozen=True)
class Status:
    height: int


class FakeValidator:
    """Stands in for NodeClient (the reader of the chain, not the part under test)."""

    def __init__(self, index: int, hashes: list[bytes], down: bool = False) -> None:
        self._index = index
        self._hashes = hashes
        self.down = down

    @property
    def index(self) -> int:
        return self._index

    def _check(self) -> None:
        if self.down:
            raise PlatformError(f"validator {self._index} at 127.0.0.1:1: unreachable")

    def status(self) -> Status:
        self._check()
        return Status(len(self._hashes))

    def committed_hashes(self, first: int, last: int) -> list[bytes]:
        self._check()
        return self._hashes[first - 1 : last]

    def blocks(self, first: int, last: int) -> Sequence[Block]:
        self._check()
        return [Block(h, (b"tx%d" % h,)) for h in range(first, last + 1)]


def test_identical_chains_have_no_divergence() -> None:
    hashes = {0: chain(50), 1: chain(50), 2: chain(48)}
    assert find_divergences(hashes) == []
    assert lowest_common_height(hashes) == 48


def test_a_fork_is_reported_with_height_and_both_hashes() -> None:
    hashes = {0: chain(10), 1: chain(10), 2: chain(10, fork_at=7), 3: chain(6)}
    violations = find_divergences(hashes)
    assert lowest_common_height(hashes) == 6  # validator 3 stops at 6: nothing compared above
    assert violations == []
    hashes[3] = chain(8)
    (first, second) = find_divergences(hashes)
    assert (first.kind, first.height) == ("divergence", 7)
    assert first.hashes["2"] == chain(10, fork_at=7)[6].hex()
    assert first.hashes["0"] == chain(10)[6].hex()
    assert "validators [0, 1, 3]" in first.message and "validators [2]" in first.message
    assert second.height == 8


def test_many_divergences_are_summarised() -> None:
    n = MAX_LISTED_DIVERGENCES + 15
    violations = find_divergences({0: chain(n), 1: chain(n, fork_at=1)})
    assert len(violations) == MAX_LISTED_DIVERGENCES + 1
    assert f"{n} diverging heights in total" in violations[-1].message


def test_acknowledged_probes_must_commit_exactly_once() -> None:
    blocks = [Block(1, (b"p1", b"x")), Block(2, (b"p2",)), Block(3, (b"p2", b"p3"))]
    where = tx_heights(blocks)
    assert where[b"p2"] == [2, 3]
    probes = [
        ProbeEntry(b"p1", "committed"),
        ProbeEntry(b"p2", "committed"),  # twice
        ProbeEntry(b"p3", "timeout"),  # accepted, seen late: fine
        ProbeEntry(b"p4", "timeout"),  # accepted, never committed
        ProbeEntry(b"p5", "rejected"),  # never accepted: not checked
        ProbeEntry(b"p6", "rpc_error"),
    ]
    checked, violations = check_probes(probes, where, tip=3)
    assert checked == 4
    assert [(v.kind, v.height) for v in violations] == [
        ("probe_duplicate", 3),
        ("probe_missing", None),
    ]
    assert b"p4".hex() in violations[1].message


HEIGHTS = {
    # t: 0..9; validator 1 frozen at 4 from t=2 (partitioned), back at t=6 within 2 blocks
    0: [(float(t), float(2 * t)) for t in range(10)],
    1: [(float(t), float(min(2 * t, 4) if t < 6 else 2 * t - 1)) for t in range(10)],
    2: [(float(t), float(2 * t)) for t in range(10)],
}


def test_recovery_time_of_a_lagging_validator() -> None:
    assert recovery_time(HEIGHTS, [1], cleared_at=4.0) == pytest.approx(2.0)
    assert recovery_time(HEIGHTS, [1], cleared_at=3.5) == pytest.approx(2.5)
    assert recovery_time(HEIGHTS, [1], cleared_at=4.0, lag_blocks=0) is None


def test_recovery_needs_the_chain_to_advance_and_the_validator_present() -> None:
    stalled = {v: [(float(t), 10.0) for t in range(10)] for v in range(3)}
    assert recovery_time(stalled, [0, 1, 2], cleared_at=2.0) is None
    down = dict(HEIGHTS)
    down[1] = [p for p in HEIGHTS[1] if not 4 <= p[0] <= 7]  # no samples while down
    assert recovery_time(down, [1], cleared_at=4.0) == pytest.approx(4.0)
    assert recovery_time({}, [1], 0.0) is None


def test_check_recoveries_reports_liveness_violations() -> None:
    faults = [
        FaultWindow(0, "partition", (1,), 4.0),
        FaultWindow(1, "heal", (), 5.0),
        FaultWindow(2, "kill", (2,), None),
        FaultWindow(3, "pause", (0, 1, 2), 9.5),  # cleared after the last sample
    ]
    results = check_recoveries(faults, HEIGHTS, horizon=10.0)
    assert [r.fault_index for r in results] == [0, 1, 2, 3]
    assert results[0].recovery_s == pytest.approx(2.0) and results[0].violation is None
    assert results[1].recovery_s is None and results[1].violation is None
    assert results[2].violation is not None and "never cleared" in results[2].violation.message
    assert results[3].violation is not None and results[3].violation.kind == "liveness"


def test_equivocation_needs_a_slashing() -> None:
    faults = [FaultWindow(0, "equivocate", (1,), 60.0)]
    assert check_slashing(faults, 1) == []
    (violation,) = check_slashing(faults, 0)
    assert violation.kind == "not_slashed" and "[1]" in violation.message
    assert "no slashing metric" in check_slashing(faults, None)[0].message
    assert check_slashing([FaultWindow(0, "kill", (1,), 5.0)], 0) == []


def test_read_chains_and_report() -> None:
    validators = [
        FakeValidator(0, chain(12)),
        FakeValidator(1, chain(10)),
        FakeValidator(2, chain(11, fork_at=11)),
        FakeValidator(3, chain(12), down=True),
    ]
    snapshot = read_chains(validators)
    assert sorted(snapshot.hashes) == [0, 1, 2]
    assert snapshot.tip == 12  # blocks from the highest validator
    assert list(snapshot.unreachable) == [3]
    report = build_safety_report(snapshot, [ProbeEntry(b"tx5", "committed")], [], [])
    assert report.ok  # fork at 11 is above the lowest common height (10)
    assert report.checked_height == 10
    assert report.validators == [0, 1, 2]
    assert report.probes_checked == 1
    assert any("validator 3 not compared" in note for note in report.notes)

    validators[1] = FakeValidator(1, chain(11))
    forked = build_safety_report(read_chains(validators), None, [], [])
    assert not forked.ok
    assert [v.height for v in forked.violations] == [11]
    assert any("no probe log" in note for note in forked.notes)


def test_no_reachable_validator_is_a_violation() -> None:
    report = build_safety_report(read_chains([FakeValidator(0, chain(3), down=True)]), [], [], [])
    assert not report.ok
    assert report.violations[0].kind == "unchecked"
