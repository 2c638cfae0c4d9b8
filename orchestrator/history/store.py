"""The history store: an embedded SQLite file of past runs and their headline metrics.

A run is keyed by scenario, platform and parameters (the resolved plan's network, resources,
load, faults and simulator sections as canonical JSON and its SHA-256; criteria, names, times
and the run id are left out, so a changed threshold or a new run id continues the same series),
plus the git commit and image tag that produced it. One series = the runs of one key in the
order they started. Adding a report twice keeps one row.

SQLite (stdlib ``sqlite3``), rollback journal (safe on the network volumes a nightly CronJob
mounts, unlike WAL), a 30 s busy timeout for concurrent writers, foreign keys on.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.history.errors import HistoryStoreError
from orchestrator.history.metrics import headline_values
from orchestrator.report.model import Report

DEFAULT_HISTORY_PATH = Path(".aitbc") / "history.sqlite"
SCHEMA_VERSION = 1
KEY_SECTIONS = ("network", "resources", "load", "faults", "sim")
"""The plan sections that decide what a run measures (report.json ``params``)."""
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    scenario TEXT NOT NULL,
    platform TEXT NOT NULL,
    params_hash TEXT NOT NULL,
    params_json TEXT NOT NULL,
    git_commit TEXT,
    image_tag TEXT NOT NULL,
    started TEXT NOT NULL,
    passed INTEGER NOT NULL,
    report_path TEXT,
    added_at TEXT NOT NULL,
    UNIQUE (run_id, scenario, platform, params_hash, started)
);
CREATE INDEX IF NOT EXISTS runs_by_key ON runs (scenario, platform, params_hash, started);
CREATE TABLE IF NOT EXISTS metrics (
    run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (run, name)
);
"""


@dataclass(frozen=True, order=True)
class SeriesKey:
    scenario: str
    platform: str
    params_hash: str

    def describe(self) -> str:
        return f"{self.scenario} on {self.platform} (params {self.params_hash[:12]})"


@dataclass(frozen=True)
class RunRecord:
    """One run in the history."""

    id: int
    run_id: str
    key: SeriesKey
    git_commit: str | None
    image_tag: str
    started: datetime
    passed: bool
    report_path: str | None
    metrics: Mapping[str, float]

    @property
    def commit_label(self) -> str:
        """The commit's first 12 characters, or ``unknown``."""
        return self.git_commit[:12] if self.git_commit else "unknown"


@dataclass(frozen=True)
class SeriesSummary:
    key: SeriesKey
    runs: int
    first: datetime
    last: datetime
    params_json: str


@dataclass(frozen=True)
class AddResult:
    record: RunRecord
    added: bool
    """False when the run was already in the history (nothing changed)."""


def key_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a report's ``params`` that keys its series (``KEY_SECTIONS``); the whole
    ``params`` when it has none of them (an older or hand-written report)."""
    chosen = {name: params[name] for name in KEY_SECTIONS if name in params}
    return chosen if chosen else dict(params)


def params_digest(params: Mapping[str, Any]) -> tuple[str, str]:
    """(canonical JSON, its SHA-256 hex) of ``key_params(params)``."""
    canonical = json.dumps(key_params(params), sort_keys=True, separators=(",", ":"))
    return canonical, hashlib.sha256(canonical.encode()).hexdigest()


def series_key(report: Report) -> SeriesKey:
    _, digest = params_digest(report.params)
    return SeriesKey(scenario=report.scenario, platform=report.platform, params_hash=digest)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class HistoryStore:
    """The history at ``path`` (created with its folder when missing). Use as a context
    manager, or ``close()``."""

    def __init__(self, path: Path = DEFAULT_HISTORY_PATH) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
            self._db.execute("PRAGMA foreign_keys = ON")
            with self._db:
                self._db.executescript(_SCHEMA)
                found = self._db.execute(
                    "SELECT value FROM meta WHERE key = 'schema_version'"
                ).fetchone()
                if found is None:
                    self._db.execute(
                        "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
        except (OSError, sqlite3.Error) as error:
            raise HistoryStoreError(
                f"history {path}: cannot open ({error}): give a writable --history path"
            ) from None
        version = int(found[0]) if found is not None else SCHEMA_VERSION
        if version != SCHEMA_VERSION:
            self._db.close()
            raise HistoryStoreError(
                f"history {path}: schema version {version} is not {SCHEMA_VERSION}: use the "
                "aitbc-testnet version that wrote it, or start a new history file"
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        try:
            with self._db:
                yield self._db
        except sqlite3.Error as error:
            raise HistoryStoreError(
                f"history {self.path}: cannot {what} ({error}): check the file is not damaged "
                "or locked by another writer"
            ) from None

    # -- writing -----------------------------------------------------------------------------
    def add(self, report: Report, report_path: Path | None = None) -> AddResult:
        """Record ``report`` and its headline metrics (once: a second add changes nothing)."""
        params_json, digest = params_digest(report.params)
        key = SeriesKey(report.scenario, report.platform, digest)
        started = _utc(report.started).isoformat()
        with self._transaction(f"add run {report.run_id}") as db:
            existing = db.execute(
                "SELECT id FROM runs WHERE run_id = ? AND scenario = ? AND platform = ? "
                "AND params_hash = ? AND started = ?",
                (report.run_id, key.scenario, key.platform, key.params_hash, started),
            ).fetchone()
            if existing is not None:
                return AddResult(record=self._record(int(existing[0])), added=False)
            cursor = db.execute(
                "INSERT INTO runs (run_id, scenario, platform, params_hash, params_json, "
                "git_commit, image_tag, started, passed, report_path, added_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    report.run_id,
                    key.scenario,
                    key.platform,
                    key.params_hash,
                    params_json,
                    report.git_commit,
                    report.image_tag,
                    started,
                    int(report.passed),
                    None if report_path is None else str(report_path),
                    datetime.now(UTC).isoformat(),
                ),
            )
            run = int(cursor.lastrowid or 0)
            db.executemany(
                "INSERT INTO metrics (run, name, value) VALUES (?, ?, ?)",
                [(run, name, value) for name, value in headline_values(report).items()],
            )
        return AddResult(record=self._record(run), added=True)

    # -- reading -----------------------------------------------------------------------------
    def series(self) -> list[SeriesSummary]:
        """Every key with its number of runs, oldest first by key."""
        with self._transaction("list the series") as db:
            rows = db.execute(
                "SELECT scenario, platform, params_hash, COUNT(*), MIN(started), MAX(started), "
                "MIN(params_json) FROM runs GROUP BY scenario, platform, params_hash "
                "ORDER BY scenario, platform, MIN(started)"
            ).fetchall()
        return [
            SeriesSummary(
                key=SeriesKey(scenario, platform, digest),
                runs=int(count),
                first=datetime.fromisoformat(first),
                last=datetime.fromisoformat(last),
                params_json=params_json,
            )
            for scenario, platform, digest, count, first, last, params_json in rows
        ]

    def runs(self, key: SeriesKey | None = None) -> list[RunRecord]:
        """The runs of ``key`` (every run when None), in the order they started."""
        query = "SELECT id FROM runs"
        arguments: tuple[str, ...] = ()
        if key is not None:
            query += " WHERE scenario = ? AND platform = ? AND params_hash = ?"
            arguments = (key.scenario, key.platform, key.params_hash)
        with self._transaction("list the runs") as db:
            ids = [int(row[0]) for row in db.execute(query + " ORDER BY started, id", arguments)]
        return [self._record(run) for run in ids]

    def _record(self, run: int) -> RunRecord:
        with self._transaction(f"read run {run}") as db:
            row = db.execute(
                "SELECT run_id, scenario, platform, params_hash, git_commit, image_tag, started, "
                "passed, report_path FROM runs WHERE id = ?",
                (run,),
            ).fetchone()
            metrics = dict(
                db.execute("SELECT name, value FROM metrics WHERE run = ?", (run,)).fetchall()
            )
        run_id, scenario, platform, digest, commit, image, started, passed, report_path = row
        return RunRecord(
            id=run,
            run_id=run_id,
            key=SeriesKey(scenario, platform, digest),
            git_commit=commit,
            image_tag=image,
            started=datetime.fromisoformat(started),
            passed=bool(passed),
            report_path=report_path,
            metrics={str(name): float(value) for name, value in metrics.items()},
        )
