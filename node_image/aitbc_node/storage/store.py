"""The node's durable state in SQLite (WAL, synchronous=FULL).

Tables: committed blocks with their certifying QCs and batches, epoch states with the blocks
that proved each epoch's end, ledger snapshots (every checkpoint and at each epoch start), and
the safety state. ``save_safety`` returns only after the write is durable: the runtime calls it
before a vote, timeout or proposal leaves the node, so a node killed with -9 never signs twice
in one round.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from aitbc_node.consensus.types import SafetyState
from aitbc_node.errors import StorageError

SCHEMA_VERSION = 1
#: SQLite integers are signed 64-bit: heights from the network (uint64) are clamped to this.
MAX_HEIGHT = 2**63 - 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    block_id BLOB NOT NULL,
    block BLOB NOT NULL,
    qc BLOB NOT NULL,
    state_root BLOB NOT NULL,
    committed_ms INTEGER NOT NULL,
    tx_count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    digest BLOB PRIMARY KEY,
    height INTEGER NOT NULL,
    position INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_by_height ON batches (height, position);
CREATE TABLE IF NOT EXISTS epochs (
    epoch INTEGER PRIMARY KEY,
    start_height INTEGER NOT NULL,
    state BLOB NOT NULL,
    end_proof BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (height INTEGER PRIMARY KEY, data BLOB NOT NULL);
"""


@dataclass(frozen=True)
class StoredBlock:
    height: int
    block_id: bytes
    block: bytes
    qc: bytes
    state_root: bytes
    committed_ms: int
    tx_count: int


def _h(height: int) -> int:
    """A height as SQLite can bind it (a hostile uint64 range must not raise OverflowError)."""
    return max(0, min(height, MAX_HEIGHT))


def _encode_safety(s: SafetyState) -> bytes:
    return struct.pack(">QQQQ", s.epoch, s.last_voted_round, s.locked_round, s.last_proposed_round)


def _decode_safety(raw: bytes) -> SafetyState:
    epoch, voted, locked, proposed = struct.unpack(">QQQQ", raw)
    return SafetyState(epoch, voted, locked, proposed)


class NodeStore:
    """One validator's database. Not thread-safe: use it from the event loop thread only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(
                f"cannot open the node database {path}: {exc}; check that the data directory is "
                "writable and not used by another node"
            ) from exc
        version = self.get_meta("schema_version")
        if version is None:
            self.set_meta("schema_version", str(SCHEMA_VERSION).encode())
        elif int(version) != SCHEMA_VERSION:
            raise StorageError(
                f"{path}: schema version {int(version)}, this node needs {SCHEMA_VERSION}; "
                "start with an empty data directory (or a new era)"
            )

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ meta and safety

    def get_meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def set_meta(self, key: str, value: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def save_safety(
        self, state: SafetyState, uncommitted: bytes | None = None, high_qc: bytes | None = None
    ) -> None:
        """Durable on return (a committed WAL transaction with synchronous=FULL fsyncs). With
        ``uncommitted``/``high_qc``: the uncommitted chain and highest QC, in one transaction."""
        db = self._db
        db.execute("BEGIN")
        try:
            self.set_meta("safety", _encode_safety(state))
            if uncommitted is not None:
                self.set_meta("uncommitted", uncommitted)
            if high_qc is not None:
                self.set_meta("high_qc", high_qc)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            db.execute("ROLLBACK")
            raise StorageError(f"cannot store the safety state in {self.path}: {exc}") from exc

    def load_uncommitted(self) -> tuple[bytes, bytes] | None:
        chain = self.get_meta("uncommitted")
        if chain is None:
            return None
        return chain, self.get_meta("high_qc") or b""

    def load_safety(self) -> SafetyState | None:
        raw = self.get_meta("safety")
        return _decode_safety(raw) if raw else None

    # ------------------------------------------------------------------ blocks

    def save_commit(
        self,
        *,
        height: int,
        block_id: bytes,
        block: bytes,
        qc: bytes,
        state_root: bytes,
        committed_ms: int,
        tx_count: int,
        batches: Sequence[tuple[bytes, bytes]],
        snapshot: bytes | None = None,
    ) -> None:
        """Store one committed block atomically, with its batches (digest, encoding) and, at
        checkpoints, the ledger snapshot taken after executing it."""
        db = self._db
        db.execute("BEGIN")
        try:
            db.execute(
                "INSERT OR REPLACE INTO blocks VALUES (?, ?, ?, ?, ?, ?, ?)",
                (height, block_id, block, qc, state_root, committed_ms, tx_count),
            )
            db.executemany(
                "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?)",
                [(digest, height, i, data) for i, (digest, data) in enumerate(batches)],
            )
            if snapshot is not None:
                db.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?)", (height, snapshot))
                db.execute(
                    "DELETE FROM snapshots WHERE height < (SELECT MIN(height) FROM "
                    "(SELECT height FROM snapshots ORDER BY height DESC LIMIT 3))"
                )
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            db.execute("ROLLBACK")
            raise StorageError(f"cannot store block {height} in {self.path}: {exc}") from exc

    def committed_height(self) -> int:
        row = self._db.execute("SELECT MAX(height) FROM blocks").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def block(self, height: int) -> StoredBlock | None:
        row = self._db.execute("SELECT * FROM blocks WHERE height = ?", (_h(height),)).fetchone()
        return StoredBlock(*row) if row else None

    def blocks(self, first: int, last: int) -> list[StoredBlock]:
        rows = self._db.execute(
            "SELECT * FROM blocks WHERE height BETWEEN ? AND ? ORDER BY height",
            (_h(first), _h(last)),
        ).fetchall()
        return [StoredBlock(*row) for row in rows]

    def hashes(self, first: int, last: int) -> list[bytes]:
        rows = self._db.execute(
            "SELECT block_id FROM blocks WHERE height BETWEEN ? AND ? ORDER BY height",
            (_h(first), _h(last)),
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    def batch(self, digest: bytes) -> bytes | None:
        """A committed batch's encoding by its digest."""
        row = self._db.execute("SELECT data FROM batches WHERE digest = ?", (digest,)).fetchone()
        return None if row is None else bytes(row[0])

    def batches_at(self, height: int) -> list[bytes]:
        rows = self._db.execute(
            "SELECT data FROM batches WHERE height = ? ORDER BY position", (_h(height),)
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    def batches_between(self, first: int, last: int) -> Iterator[tuple[int, bytes]]:
        for height, data in self._db.execute(
            "SELECT height, data FROM batches WHERE height BETWEEN ? AND ? ORDER BY height, "
            "position",
            (_h(first), _h(last)),
        ):
            yield int(height), bytes(data)

    def recent_batch_digests(self, limit: int) -> list[bytes]:
        rows = self._db.execute(
            "SELECT digest FROM batches ORDER BY height DESC LIMIT ?", (limit,)
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    # ------------------------------------------------------------------ epochs and snapshots

    def save_epoch(self, epoch: int, start_height: int, state: bytes, end_proof: bytes) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO epochs VALUES (?, ?, ?, ?)",
            (epoch, start_height, state, end_proof),
        )

    def epoch_states(self, limit: int = 2) -> list[tuple[int, bytes, bytes]]:
        """The latest ``limit`` epochs, newest first: (epoch, state, end_proof)."""
        rows = self._db.execute(
            "SELECT epoch, state, end_proof FROM epochs ORDER BY epoch DESC LIMIT ?", (limit,)
        ).fetchall()
        return [(int(e), bytes(s), bytes(p)) for e, s, p in rows]

    def end_proof_after(self, height: int) -> bytes | None:
        """The end proof of the epoch whose last block is at ``height`` (stored with the next)."""
        row = self._db.execute(
            "SELECT end_proof FROM epochs WHERE start_height = ?", (_h(height + 1),)
        ).fetchone()
        return bytes(row[0]) if row else None

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        row = self._db.execute(
            "SELECT height, data FROM snapshots ORDER BY height DESC LIMIT 1"
        ).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None
