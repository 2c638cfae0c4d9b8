"""The run summary file: one load-generator process's final counters as JSON, written when
its test stops (``AITBC_SUMMARY``), so offered vs sent vs acknowledged survive the process
even if Prometheus never scraped the last values. ``latency`` gives the books of the exact
submit-to-commit samples written beside it (``loadgen.latency_file``) and ``self_check``
whether the generator kept up (``loadgen.selfcheck``)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from loadgen.errors import LoadgenError
from loadgen.latency import LatencyCounts
from loadgen.metrics import LoadgenTotals
from loadgen.selfcheck import SaturationCheck

SUMMARY_VERSION = 1


class LoadgenSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = SUMMARY_VERSION
    run_id: str
    written_at: float  # unix seconds
    settings: dict[str, str]  # LoadgenSettings.describe()
    totals: LoadgenTotals
    latency: LatencyCounts | None = None
    self_check: SaturationCheck | None = None


def write_summary(path: str | os.PathLike[str], summary: LoadgenSummary) -> None:
    """Write ``summary`` to ``path`` atomically (temp file, then rename)."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise LoadgenError(
            f"AITBC_SUMMARY={target}: cannot write ({error.strerror}): check the directory"
        ) from None


def read_summary(path: str | os.PathLike[str]) -> LoadgenSummary:
    """A summary written by ``write_summary``; ``LoadgenError`` naming the file otherwise."""
    source = Path(path)
    try:
        return LoadgenSummary.model_validate_json(source.read_text(encoding="utf-8"))
    except OSError as error:
        raise LoadgenError(f"loadgen summary {source}: cannot read ({error.strerror})") from None
    except ValidationError as error:
        raise LoadgenError(f"loadgen summary {source}: not a summary ({error})") from None
