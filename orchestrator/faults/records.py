"""The fault timeline's records kept in the run directory (``faults.json``), so a later
stand-alone ``collect`` reports the faults of a campaign run with ``--keep``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from orchestrator.faults.timeline import FaultRecord

__all__ = ["FAULTS_FILE", "load_fault_records", "save_fault_records"]

FAULTS_FILE = "faults.json"


def save_fault_records(records: Sequence[FaultRecord], run_dir: Path) -> None:
    """Keep the timeline's records in the run directory (best effort)."""
    document = [asdict(record) for record in records]
    with contextlib.suppress(OSError):
        (run_dir / FAULTS_FILE).write_text(json.dumps(document, indent=2) + "\n")


def load_fault_records(run_dir: Path) -> list[FaultRecord]:
    """The records a campaign kept in ``run_dir`` ([] when there are none)."""
    try:
        document = json.loads((run_dir / FAULTS_FILE).read_text())
        return [FaultRecord(**{**item, "ids": tuple(item["ids"])}) for item in document]
    except (OSError, ValueError, TypeError, KeyError):
        return []
