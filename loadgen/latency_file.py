"""The exact-latency samples file: one per load-generator process, next to its summary.

Format (version 1): one JSON header line, then records of two little-endian float32 each,
``(submitted offset s, latency s)``. The offset counts from the header's ``epoch_mono`` (the
process's monotonic clock), which corresponds to ``epoch_unix``; so a reader places every sample
on the wall clock (``submitted_at = epoch_unix + offset``) to keep only a measured window.
float32 keeps a millisecond for offsets up to ~4.6 hours and latencies to 7 significant digits.
8 bytes a sample: 100,000 committed transactions are 800 KB on disk.

The writer buffers ``CHUNK_SAMPLES`` samples in an ``array('f')`` and appends them; a reader
drops a trailing partial record (a process killed mid-write loses at most that record).
"""

from __future__ import annotations

import json
import os
import sys
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pydantic import BaseModel, ConfigDict, ValidationError

from loadgen.errors import LoadgenError

FORMAT = "aitbc-latency-samples"
FORMAT_VERSION = 1
RECORD_BYTES = 8
CHUNK_SAMPLES = 8192
SUFFIX = ".latency.bin"


class LatencyFileHeader(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = FORMAT
    version: int = FORMAT_VERSION
    run_id: str
    worker_index: int
    epoch_unix: float
    epoch_mono: float


def samples_path_for(summary_path: str | os.PathLike[str]) -> Path:
    """Where the samples of a process go: beside its summary, ``summary.json`` ->
    ``summary.latency.bin``."""
    summary = Path(summary_path)
    return summary.with_name(summary.stem + SUFFIX)


class LatencySampleWriter:
    """Appends ``(submitted_mono, latency_s)`` samples to ``path`` (created, truncated)."""

    def __init__(self, path: str | os.PathLike[str], header: LatencyFileHeader) -> None:
        self.path = Path(path)
        self.header = header
        self.count = 0
        self._buffer = array("f")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[bytes] | None = self.path.open("wb")
            self._file.write(header.model_dump_json().encode() + b"\n")
        except OSError as error:
            raise LoadgenError(
                f"latency samples {self.path}: cannot write ({error.strerror}): check the "
                "directory of AITBC_SUMMARY is writable"
            ) from None

    def add(self, submitted_mono: float, latency_s: float) -> None:
        self._buffer.append(submitted_mono - self.header.epoch_mono)
        self._buffer.append(latency_s)
        self.count += 1
        if len(self._buffer) >= 2 * CHUNK_SAMPLES:
            self.flush()

    def flush(self) -> None:
        if self._file is None:
            raise LoadgenError(f"latency samples {self.path} are closed: open a new writer")
        if self._buffer:
            if sys.byteorder != "little":
                self._buffer.byteswap()
            self._buffer.tofile(self._file)
            self._buffer = array("f")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self.flush()
            self._file.close()
            self._file = None


@dataclass(frozen=True)
class LatencySamples:
    """The samples of one file: ``submitted_at[i]`` (unix seconds) and ``latency_s[i]``."""

    header: LatencyFileHeader
    submitted_at: array[float]
    latency_s: array[float]

    def __len__(self) -> int:
        return len(self.latency_s)

    def in_window(self, start: float, end: float) -> list[float]:
        """Latencies of the transactions submitted in ``[start, end]`` (unix seconds)."""
        return [
            latency
            for submitted, latency in zip(self.submitted_at, self.latency_s, strict=True)
            if start <= submitted <= end
        ]


def read_latency_samples(path: str | os.PathLike[str]) -> LatencySamples:
    """The samples of a file written by ``LatencySampleWriter``; ``LoadgenError`` naming the
    file when it is not one."""
    source = Path(path)
    try:
        data = source.read_bytes()
    except OSError as error:
        raise LoadgenError(f"latency samples {source}: cannot read ({error.strerror})") from None
    first, newline, body = data.partition(b"\n")
    try:
        header = LatencyFileHeader.model_validate(json.loads(first))
    except (ValueError, ValidationError):
        raise LoadgenError(
            f"latency samples {source}: no {FORMAT} header on the first line"
        ) from None
    if not newline or header.format != FORMAT or header.version != FORMAT_VERSION:
        raise LoadgenError(
            f"latency samples {source}: format {header.format!r} version {header.version} is "
            f"not {FORMAT!r} version {FORMAT_VERSION}: read it with the loadgen that wrote it"
        )
    values = array("f")
    values.frombytes(body[: len(body) - len(body) % RECORD_BYTES])
    if sys.byteorder != "little":
        values.byteswap()
    offsets, latencies = values[0::2], values[1::2]
    submitted = array("d", (header.epoch_unix + offset for offset in offsets))
    return LatencySamples(header=header, submitted_at=submitted, latency_s=latencies)
