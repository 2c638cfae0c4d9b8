"""Exact submit-to-commit latency of every acknowledged transaction of one process.

The load users tell the tracker which transactions a call carries before they send it
(``sending``) and which the validator acknowledged when it answers (``answered``); the process's
commit follower reports every committed block (``on_commit``). An acknowledged transaction seen
committed becomes one sample ``(submitted, latency)`` in the sink (the samples file); one not
seen within ``timeout_s`` counts as *uncommitted* (acked but never committed).

Memory is bounded by the in-flight window, not by the run: only transactions between submit and
commit are held, keyed by the first 8 bytes of their id (an int) with the submit time (a float),
about 100 bytes each; past ``max_pending`` the oldest are dropped and counted as *untracked*.
A commit can be seen before its call's answer (the stream and the reply race under gevent):
its time is kept until the answer says whether the transaction was accepted.

Pure: times are passed in (monotonic seconds), so tests drive it without a clock.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict

#: Transactions held between submit and commit at most (about 100 bytes each).
DEFAULT_MAX_PENDING = 500_000
KEY_BYTES = 8


class SampleSink(Protocol):
    def add(self, submitted_mono: float, latency_s: float) -> None: ...


class LatencyCounts(BaseModel):
    """The tracker's books (the ``latency`` section of the run summary)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    samples_file: str = ""
    acked: int = 0
    committed: int = 0
    uncommitted: int = 0
    untracked: int = 0
    pending: int = 0
    peak_pending: int = 0
    timeout_s: float = 0.0


def tx_key(tx_id: bytes) -> int:
    """The compact key of a transaction id (its first 8 bytes)."""
    return int.from_bytes(tx_id[:KEY_BYTES], "big")


class LatencyTracker:
    """Transactions between submit and commit, and the books of what became of them."""

    def __init__(
        self, sink: SampleSink, *, timeout_s: float, max_pending: int = DEFAULT_MAX_PENDING
    ) -> None:
        self.sink = sink
        self.timeout_s = timeout_s
        self.max_pending = max(1, max_pending)
        self._sending: dict[int, float] = {}  # in a call not yet answered: key -> submit time
        self._early: dict[int, float] = {}  # committed before its answer: key -> commit time
        self._acked: dict[int, float] = {}  # acknowledged, not yet committed: key -> submit time
        self.acked = 0
        self.committed = 0
        self.uncommitted = 0
        self.untracked = 0
        self.peak_pending = 0

    @property
    def pending(self) -> int:
        return len(self._sending) + len(self._acked)

    def awaiting(self) -> bool:
        """True while acknowledged transactions wait for their commit."""
        return bool(self._acked) or bool(self._sending)

    # -- the load users ----------------------------------------------------------------------
    def sending(self, tx_ids: Sequence[bytes], mono: float) -> None:
        """A call with ``tx_ids`` starts at ``mono``."""
        for tx_id in tx_ids:
            self._sending[tx_key(tx_id)] = mono
        self._bound()

    def answered(self, tx_ids: Sequence[bytes], accepted_ids: Collection[bytes]) -> None:
        """The call with ``tx_ids`` returned; ``accepted_ids`` were acknowledged (none when
        the call failed)."""
        accepted = {tx_key(tx_id) for tx_id in accepted_ids}
        for tx_id in tx_ids:
            key = tx_key(tx_id)
            submitted = self._sending.pop(key, None)
            committed_at = self._early.pop(key, None)
            if submitted is None or key not in accepted:
                continue
            self.acked += 1
            if committed_at is not None:
                self._sample(submitted, committed_at)
            else:
                self._acked[key] = submitted

    # -- the commit follower -----------------------------------------------------------------
    def on_commit(self, height: int, tx_ids: Sequence[bytes], mono: float) -> None:
        """Block ``height`` with ``tx_ids`` was seen committed at ``mono``."""
        del height
        for tx_id in tx_ids:
            key = tx_key(tx_id)
            submitted = self._acked.pop(key, None)
            if submitted is not None:
                self._sample(submitted, mono)
            elif key in self._sending:
                self._early[key] = mono

    def expire(self, mono: float) -> int:
        """Acknowledged transactions older than ``timeout_s`` count as uncommitted; returns how
        many. The dict keeps acknowledgement order, so the scan stops at the first young one."""
        expired = []
        for key, submitted in self._acked.items():
            if mono - submitted <= self.timeout_s:
                break
            expired.append(key)
        for key in expired:
            del self._acked[key]
        self.uncommitted += len(expired)
        return len(expired)

    def finish(self) -> None:
        """The run is over: what is still acknowledged and uncommitted never committed;
        calls never answered are dropped."""
        self.uncommitted += len(self._acked)
        self._acked.clear()
        self._sending.clear()
        self._early.clear()

    def counts(self, samples_file: str = "") -> LatencyCounts:
        return LatencyCounts(
            samples_file=samples_file,
            acked=self.acked,
            committed=self.committed,
            uncommitted=self.uncommitted,
            untracked=self.untracked,
            pending=self.pending,
            peak_pending=self.peak_pending,
            timeout_s=self.timeout_s,
        )

    # -- internals ---------------------------------------------------------------------------
    def _sample(self, submitted: float, committed_at: float) -> None:
        self.committed += 1
        self.sink.add(submitted, max(0.0, committed_at - submitted))

    def _bound(self) -> None:
        pending = self.pending
        self.peak_pending = max(self.peak_pending, pending)
        while pending > self.max_pending and self._acked:
            del self._acked[next(iter(self._acked))]
            self.untracked += 1
            pending -= 1
