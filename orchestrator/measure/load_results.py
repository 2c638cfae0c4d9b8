"""What the load generator leaves behind for a report: its JSON summary (offered, sent,
acknowledged, missed, rejected, probes) and its probe log (one JSON line per probe)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from orchestrator.measure.measurer import ProbeLatency
from orchestrator.measure.safety import ProbeEntry
from orchestrator.report.model import LoadTotals

__all__ = ["read_load_totals", "read_probe_log"]


def read_load_totals(path: Path) -> LoadTotals | None:
    """The load generator's summary JSON (``loadgen.summary``), None when absent/unreadable."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        totals = document["totals"]
        return LoadTotals(
            offered=int(totals["offered"]),
            sent=int(totals["sent"]),
            acked=int(totals["acked"]),
            missed=int(totals["missed"]),
            rejected={str(k): int(v) for k, v in dict(totals.get("rejected", {})).items()},
            probes={str(k): int(v) for k, v in dict(totals.get("probes", {})).items()},
        )
    except (OSError, ValueError, KeyError, TypeError, ValidationError):
        return None


def read_probe_log(path: Path) -> tuple[list[ProbeEntry], list[ProbeLatency]] | None:
    """(entries for the exactly-once check, latencies of committed probes) from the probe log
    (JSON lines), None when there is no log."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    entries: list[ProbeEntry] = []
    latencies: list[ProbeLatency] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            tx_id = bytes.fromhex(record["tx_id"])
            outcome = str(record["outcome"])
        except (ValueError, KeyError, TypeError):
            continue
        entries.append(ProbeEntry(tx_id=tx_id, outcome=outcome))
        latency, submitted = record.get("latency_s"), record.get("submitted_at")
        if outcome == "committed" and latency is not None and submitted is not None:
            latencies.append(ProbeLatency(float(submitted), float(latency)))
    return entries, latencies
