"""The node's SQLite store on its own (no ValidatorNode): safety state, commits with their
batches, snapshots, epochs; a reopened store reproduces everything; a crash (SIGKILL) right
after ``save_safety`` returns loses nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from aitbc_node.consensus.types import SafetyState
from aitbc_node.errors import StorageError
from aitbc_node.storage.store import MAX_HEIGHT, SCHEMA_VERSION, NodeStore, StoredBlock


def _commit(
    store: NodeStore, height: int, *, batches: int = 2, snapshot: bytes | None = None
) -> list[tuple[bytes, bytes]]:
    """Store block ``height`` with ``batches`` batches; returns the (digest, data) stored."""
    stored = [
        (f"digest-{height}-{i}".encode(), f"batch-{height}-{i}".encode()) for i in range(batches)
    ]
    store.save_commit(
        height=height,
        block_id=f"id-{height}".encode(),
        block=f"block-{height}".encode(),
        qc=f"qc-{height}".encode(),
        state_root=f"root-{height}".encode(),
        committed_ms=1_000 + height,
        tx_count=3 * height,
        batches=stored,
        snapshot=snapshot,
    )
    return stored


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "node.db"


def test_a_fresh_store_is_empty_and_pragmas_are_durable(db: Path) -> None:
    store = NodeStore(db)
    try:
        assert store.load_safety() is None
        assert store.committed_height() == 0
        assert store.block(1) is None
        assert store.latest_snapshot() is None
        assert store.epoch_states() == []
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION).encode()
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        store.close()


def test_safety_state_round_trips_and_survives_reopen(db: Path) -> None:
    store = NodeStore(db)
    store.save_safety(SafetyState(epoch=1, last_voted_round=5, locked_round=4))
    store.save_safety(
        SafetyState(epoch=2, last_voted_round=9, locked_round=7, last_proposed_round=8)
    )
    assert store.load_safety() == SafetyState(2, 9, 7, 8)
    store.close()
    reopened = NodeStore(db)
    try:
        assert reopened.load_safety() == SafetyState(2, 9, 7, 8)
        big = SafetyState(2**64 - 1, 2**64 - 1, 2**63, 0)
        reopened.save_safety(big)
        assert reopened.load_safety() == big
    finally:
        reopened.close()


def test_commits_with_batches_read_back_by_height_and_range(db: Path) -> None:
    store = NodeStore(db)
    try:
        kept = {h: _commit(store, h, batches=h % 3) for h in range(1, 8)}
        assert store.committed_height() == 7
        assert store.block(3) == StoredBlock(3, b"id-3", b"block-3", b"qc-3", b"root-3", 1003, 9)
        assert [b.height for b in store.blocks(2, 5)] == [2, 3, 4, 5]
        assert store.hashes(6, 100) == [b"id-6", b"id-7"]
        assert store.hashes(5, 4) == []
        for height, batches in kept.items():
            assert store.batches_at(height) == [data for _, data in batches]
        between = list(store.batches_between(4, 5))
        assert between == [(4, b"batch-4-0"), (5, b"batch-5-0"), (5, b"batch-5-1")]
        digests = store.recent_batch_digests(100)
        assert set(digests) == {d for batches in kept.values() for d, _ in batches}
        assert digests[0].startswith(b"digest-7")  # newest first
        assert len(store.recent_batch_digests(2)) == 2
        # Re-storing a height (a replayed commit after a crash) replaces it, never duplicates.
        _commit(store, 7, batches=1)
        assert store.committed_height() == 7 and len(store.blocks(1, 7)) == 7
    finally:
        store.close()


def test_heights_beyond_sqlite_integers_read_as_nothing(db: Path) -> None:
    """Hostile uint64 ranges from the network are clamped, never an OverflowError."""
    store = NodeStore(db)
    try:
        _commit(store, 1)
        top = 2**64 - 1
        assert store.blocks(top - 5, top) == []
        assert store.hashes(MAX_HEIGHT + 1, top) == []
        assert store.block(top) is None
        assert store.batches_at(top) == []
        assert list(store.batches_between(top, top)) == []
        assert store.end_proof_after(MAX_HEIGHT) is None
        assert [b.height for b in store.blocks(0, top)] == [1]
    finally:
        store.close()


def test_a_failed_commit_leaves_nothing_behind(db: Path) -> None:
    store = NodeStore(db)
    try:
        _commit(store, 1)
        with pytest.raises(StorageError, match="cannot store block 2"):
            store.save_commit(
                height=2,
                block_id=b"id-2",
                block=b"block-2",
                qc=b"qc-2",
                state_root=b"root-2",
                committed_ms=0,
                tx_count=0,
                batches=[(b"d", object())],  # type: ignore[list-item]
            )
        assert store.committed_height() == 1
        assert store.block(2) is None and store.batches_at(2) == []
        _commit(store, 2)  # the connection is usable afterwards
        assert store.committed_height() == 2
    finally:
        store.close()


def test_snapshots_keep_the_latest_three(db: Path) -> None:
    store = NodeStore(db)
    try:
        for height in range(1, 11):
            snapshot = f"snap-{height}".encode() if height % 2 == 0 else None
            _commit(store, height, snapshot=snapshot)
        assert store.latest_snapshot() == (10, b"snap-10")
        kept = [row[0] for row in store._db.execute("SELECT height FROM snapshots ORDER BY height")]
        assert kept == [6, 8, 10]
    finally:
        store.close()


def test_epochs_newest_first_with_their_end_proofs(db: Path) -> None:
    store = NodeStore(db)
    try:
        store.save_epoch(1, 1, b"state-1", b"")
        store.save_epoch(2, 101, b"state-2", b"proof-1")
        store.save_epoch(3, 201, b"state-3", b"proof-2")
        assert store.epoch_states(2) == [(3, b"state-3", b"proof-2"), (2, b"state-2", b"proof-1")]
        assert len(store.epoch_states(10)) == 3
        assert store.end_proof_after(100) == b"proof-1"
        assert store.end_proof_after(200) == b"proof-2"
        assert store.end_proof_after(150) is None
        store.save_epoch(3, 201, b"state-3b", b"proof-2b")  # replace, not duplicate
        assert store.epoch_states(1) == [(3, b"state-3b", b"proof-2b")]
    finally:
        store.close()


def test_a_reopened_store_reproduces_the_whole_state(db: Path) -> None:
    store = NodeStore(db)
    for height in range(1, 6):
        _commit(store, height, snapshot=b"snap" if height == 4 else None)
    store.save_epoch(1, 1, b"state-1", b"")
    store.save_safety(SafetyState(1, 7, 6, 7))
    store.set_meta("chain_id", b"aitbc-test")

    def dump(s: NodeStore) -> tuple[object, ...]:
        return (
            s.committed_height(),
            s.blocks(1, 10),
            [s.batches_at(h) for h in range(1, 6)],
            s.latest_snapshot(),
            s.epoch_states(),
            s.load_safety(),
            s.get_meta("chain_id"),
        )

    before = dump(store)
    store.close()
    reopened = NodeStore(db)
    try:
        assert dump(reopened) == before
    finally:
        reopened.close()


def test_a_store_of_another_schema_version_is_refused(db: Path) -> None:
    NodeStore(db).close()
    raw = sqlite3.connect(db)
    raw.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (b"99",))
    raw.commit()
    raw.close()
    with pytest.raises(StorageError, match="schema version 99"):
        NodeStore(db)


def test_an_unusable_path_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match="cannot open the node database"):
        NodeStore(blocker / "node.db")


_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from aitbc_node.consensus.types import SafetyState
    from aitbc_node.storage.store import NodeStore

    store = NodeStore(Path(sys.argv[1]))
    for round_ in range(1, 41):
        store.save_safety(SafetyState(1, round_, round_ - 1))
    print("saved", flush=True)
    time.sleep(60)
    """
)


def test_safety_saved_before_a_sigkill_is_on_disk(db: Path) -> None:
    """What save_safety returned for is there after kill -9 (no close, no flush)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "saved"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    store = NodeStore(db)
    try:
        assert store.load_safety() == SafetyState(1, 40, 39)
    finally:
        store.close()
