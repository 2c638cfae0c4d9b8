"""Exact latency bookkeeping (``loadgen.latency``) and the samples file
(``loadgen.latency_file``): every acknowledged transaction ends as one sample, uncommitted or
untracked, memory stays bounded, and the file round-trips."""

from __future__ import annotations

import hashlib
import re
import tracemalloc
from pathlib import Path

import pytest

from loadgen.errors import LoadgenError
from loadgen.latency import LatencyTracker, tx_key
from loadgen.latency_file import (
    LatencyFileHeader,
    LatencySampleWriter,
    read_latency_samples,
    samples_path_for,
)


def ids(*names: str) -> list[bytes]:
    return [hashlib.sha256(name.encode()).digest() for name in names]


class Samples:
    def __init__(self) -> None:
        self.added: list[tuple[float, float]] = []

    def add(self, submitted_mono: float, latency_s: float) -> None:
        self.added.append((submitted_mono, latency_s))


def test_acknowledged_transactions_become_samples_at_their_commit() -> None:
    sink = Samples()
    tracker = LatencyTracker(sink, timeout_s=30)
    a, b, c = ids("a", "b", "c")
    tracker.sending([a, b, c], 10.0)
    tracker.answered([a, b, c], [a, c])  # b rejected
    assert tracker.acked == 2 and tracker.pending == 2
    tracker.on_commit(1, [b, a], 10.4)  # b was never ours to await
    tracker.on_commit(2, [c], 11.0)
    assert sink.added == [(10.0, pytest.approx(0.4)), (10.0, pytest.approx(1.0))]
    assert (tracker.committed, tracker.uncommitted, tracker.pending) == (2, 0, 0)
    assert not tracker.awaiting()


def test_a_commit_seen_before_the_answer_is_kept_until_the_answer() -> None:
    sink = Samples()
    tracker = LatencyTracker(sink, timeout_s=30)
    a, b = ids("a", "b")
    tracker.sending([a, b], 5.0)
    tracker.on_commit(1, [a, b], 5.2)  # the stream raced the reply
    assert sink.added == [] and tracker.awaiting()
    tracker.answered([a, b], [a])  # b was not accepted after all: no sample
    assert sink.added == [(5.0, pytest.approx(0.2))]
    assert (tracker.acked, tracker.committed, tracker.pending) == (1, 1, 0)


def test_a_failed_call_acknowledges_nothing() -> None:
    tracker = LatencyTracker(Samples(), timeout_s=30)
    tracker.sending(ids("a", "b"), 1.0)
    tracker.answered(ids("a", "b"), ())
    assert (tracker.acked, tracker.pending) == (0, 0)


def test_transactions_not_committed_in_time_count_as_uncommitted() -> None:
    sink = Samples()
    tracker = LatencyTracker(sink, timeout_s=2)
    early, late = ids("early", "late")
    tracker.sending([early], 0.0)
    tracker.answered([early], [early])
    tracker.sending([late], 1.5)
    tracker.answered([late], [late])
    assert tracker.expire(1.9) == 0
    assert tracker.expire(2.5) == 1  # only the one older than 2 s
    tracker.on_commit(9, [early, late], 2.6)  # too late for early: it stays uncommitted
    assert sink.added == [(1.5, pytest.approx(1.1))]
    assert (tracker.committed, tracker.uncommitted) == (1, 1)


def test_finish_counts_what_still_waits_as_uncommitted() -> None:
    tracker = LatencyTracker(Samples(), timeout_s=30)
    acked, in_call = ids("acked", "in-call")
    tracker.sending([acked], 0.0)
    tracker.answered([acked], [acked])
    tracker.sending([in_call], 1.0)  # never answered: not acknowledged, not counted
    tracker.finish()
    counts = tracker.counts("w.latency.bin")
    assert (counts.acked, counts.uncommitted, counts.pending) == (1, 1, 0)
    assert counts.samples_file == "w.latency.bin" and counts.timeout_s == 30


def test_pending_transactions_are_bounded_and_the_oldest_dropped_are_counted() -> None:
    sink = Samples()
    tracker = LatencyTracker(sink, timeout_s=30, max_pending=3)
    batch = ids(*[f"t{i}" for i in range(5)])
    for number, tx_id in enumerate(batch):
        tracker.sending([tx_id], float(number))
        tracker.answered([tx_id], [tx_id])
    assert tracker.pending <= 3 and tracker.untracked == 2
    tracker.on_commit(1, batch, 10.0)
    assert [submitted for submitted, _ in sink.added] == [2.0, 3.0, 4.0]
    assert tracker.acked == tracker.committed + tracker.untracked


def test_ids_are_keyed_by_their_first_8_bytes() -> None:
    assert tx_key(bytes(range(32))) == int.from_bytes(bytes(range(8)), "big")


def test_memory_per_pending_transaction_is_small() -> None:
    count = 100_000
    batch = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(count)]
    tracemalloc.start()
    try:
        tracker = LatencyTracker(Samples(), timeout_s=30, max_pending=count)
        before = tracemalloc.get_traced_memory()[0]
        for start in range(0, count, 500):
            chunk = batch[start : start + 500]
            tracker.sending(chunk, float(start))
            tracker.answered(chunk, chunk)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert tracker.pending == count
    assert held / count < 200  # bytes per transaction awaiting its commit


# -- the samples file ------------------------------------------------------------------------
def header(**changes: object) -> LatencyFileHeader:
    fields: dict[str, object] = {
        "run_id": "r1",
        "worker_index": 1,
        "epoch_unix": 1_700_000_000.0,
        "epoch_mono": 500.0,
    }
    return LatencyFileHeader.model_validate({**fields, **changes})


def test_samples_round_trip_on_the_wall_clock(tmp_path: Path) -> None:
    path = samples_path_for(tmp_path / "load" / "summary.json")
    assert path == tmp_path / "load" / "summary.latency.bin"
    writer = LatencySampleWriter(path, header())
    for number in range(20_000):  # more than one chunk
        writer.add(500.0 + number * 0.001, 0.25 + (number % 7) * 0.01)
    writer.close()
    samples = read_latency_samples(path)
    assert len(samples) == writer.count == 20_000
    assert samples.header.run_id == "r1" and samples.header.worker_index == 1
    assert samples.submitted_at[0] == pytest.approx(1_700_000_000.0)
    assert samples.submitted_at[-1] == pytest.approx(1_700_000_019.999, abs=2e-3)
    assert samples.latency_s[8] == pytest.approx(0.26)
    window = samples.in_window(1_700_000_001.0, 1_700_000_001.9995)
    assert len(window) == 1000
    assert path.stat().st_size - len(header().model_dump_json()) - 1 == 8 * 20_000


def test_a_torn_last_record_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "w.latency.bin"
    writer = LatencySampleWriter(path, header())
    writer.add(501.0, 0.5)
    writer.add(502.0, 0.75)
    writer.close()
    with path.open("ab") as handle:
        handle.write(b"\x00\x01\x02")  # killed in the middle of a record
    samples = read_latency_samples(path)
    assert list(samples.latency_s) == [0.5, 0.75]


def test_reading_something_else_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text('{"run_id": "x"}\n')
    with pytest.raises(
        LoadgenError, match=re.escape(f"latency samples {path}: no aitbc-latency-samples")
    ):
        read_latency_samples(path)
    with pytest.raises(LoadgenError, match="cannot read"):
        read_latency_samples(tmp_path / "missing.latency.bin")
