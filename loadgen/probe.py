"""Latency-probe bookkeeping: probes waiting for their commit, and the probe log.

A probe is one transfer from the probe account, submitted to one validator, whose id is then
awaited in that validator's commit stream. Pure: times are passed in (``wall`` for the log,
``mono`` for latencies), so the Locust probe user and tests share it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from pydantic import BaseModel, ConfigDict

from loadgen.errors import LoadgenError

#: A probe not seen committed within this many seconds counts as failed.
PROBE_COMMIT_TIMEOUT_S = 30.0

ProbeOutcome = Literal["committed", "timeout", "rejected", "rpc_error"]


@dataclass(frozen=True)
class PendingProbe:
    tx_id: bytes
    target: str
    nonce: int
    submitted_at: float  # unix seconds
    submitted_mono: float


class ProbeRecord(BaseModel):
    """One line of the probe log (JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    tx_id: str
    target: str
    nonce: int
    outcome: ProbeOutcome
    submitted_at: float
    committed_at: float | None = None
    height: int | None = None
    latency_s: float | None = None
    reason: str | None = None


class ProbeTracker:
    """Probes submitted and not yet resolved."""

    def __init__(self, run_id: str, timeout_s: float = PROBE_COMMIT_TIMEOUT_S) -> None:
        self.run_id = run_id
        self.timeout_s = timeout_s
        self._pending: dict[bytes, PendingProbe] = {}

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def is_pending(self, tx_id: bytes) -> bool:
        return tx_id in self._pending

    def submitted(self, probe: PendingProbe) -> None:
        self._pending[probe.tx_id] = probe

    def committed(
        self, tx_ids: list[bytes], height: int, wall: float, mono: float
    ) -> list[ProbeRecord]:
        """Resolve the pending probes among ``tx_ids`` (a block at ``height`` seen at
        ``wall``/``mono``)."""
        records = []
        for tx_id in tx_ids:
            probe = self._pending.pop(tx_id, None)
            if probe is None:
                continue
            records.append(
                self._record(
                    probe,
                    "committed",
                    committed_at=wall,
                    height=height,
                    latency_s=max(0.0, mono - probe.submitted_mono),
                )
            )
        return records

    def expire(self, mono: float) -> list[ProbeRecord]:
        """Give up on probes older than ``timeout_s``."""
        expired = [
            probe
            for probe in self._pending.values()
            if mono - probe.submitted_mono > self.timeout_s
        ]
        for probe in expired:
            del self._pending[probe.tx_id]
        return [
            self._record(probe, "timeout", reason=f"not committed within {self.timeout_s:g} s")
            for probe in expired
        ]

    def failed(self, probe: PendingProbe, outcome: ProbeOutcome, reason: str) -> ProbeRecord:
        """A probe that never got accepted (rejected, or its RPC failed)."""
        self._pending.pop(probe.tx_id, None)
        return self._record(probe, outcome, reason=reason)

    def _record(
        self,
        probe: PendingProbe,
        outcome: ProbeOutcome,
        *,
        committed_at: float | None = None,
        height: int | None = None,
        latency_s: float | None = None,
        reason: str | None = None,
    ) -> ProbeRecord:
        return ProbeRecord(
            run_id=self.run_id,
            tx_id=probe.tx_id.hex(),
            target=probe.target,
            nonce=probe.nonce,
            outcome=outcome,
            submitted_at=probe.submitted_at,
            committed_at=committed_at,
            height=height,
            latency_s=latency_s,
            reason=reason,
        )


class ProbeLog:
    """Appends probe records as JSON lines to ``path`` (flushed per line)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] | None = self.path.open("a", encoding="utf-8")
        except OSError as error:
            raise LoadgenError(
                f"AITBC_PROBE_LOG={self.path}: cannot open for appending ({error.strerror}): "
                "check the directory is writable"
            ) from None

    def write(self, record: ProbeRecord) -> None:
        if self._file is None:
            raise LoadgenError(f"probe log {self.path} is closed: open a new ProbeLog")
        self._file.write(record.model_dump_json() + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_probe_log(path: str | os.PathLike[str]) -> list[ProbeRecord]:
    """The records of a probe log (for the orchestrator's report and for tests)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [ProbeRecord.model_validate_json(line) for line in lines if line.strip()]
