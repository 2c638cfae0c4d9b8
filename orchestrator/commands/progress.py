"""Progress lines of long CLI work: stage, elapsed time, height, current TPS.

The CLI gives it a stream (stderr). On a terminal the status line is rewritten in place;
elsewhere (CI logs, pipes) a line is written when the stage changes and at most every
``interval_s`` seconds, so logs stay short::

    progress = Progress(sys.stderr)
    progress.stage("starting validators")
    progress.update(height=12, tps=298.5, note="4/4 ready")
    progress.done("ready")
    # [   3.2s] starting validators: height 12, 298.5 tps, 4/4 ready
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "format_progress"]


def format_progress(
    elapsed_s: float,
    stage: str,
    *,
    height: int | None = None,
    tps: float | None = None,
    note: str = "",
) -> str:
    """``[  12.3s] stage: height 45, 298.5 tps, note`` (parts that are None are left out)."""
    parts = []
    if height is not None:
        parts.append(f"height {height}")
    if tps is not None:
        parts.append(f"{tps:.1f} tps")
    if note:
        parts.append(note)
    detail = f": {', '.join(parts)}" if parts else ""
    return f"[{elapsed_s:6.1f}s] {stage}{detail}"


class Progress:
    """Writes progress of one long command to ``stream``."""

    def __init__(
        self,
        stream: TextIO,
        *,
        interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        tty: bool | None = None,
    ) -> None:
        self._stream = stream
        self._interval_s = interval_s
        self._clock = clock
        self._tty = stream.isatty() if tty is None else tty
        self._started = clock()
        self._stage = ""
        self._last_write = float("-inf")
        self._pending_line = False

    @property
    def elapsed_s(self) -> float:
        return self._clock() - self._started

    def stage(self, name: str) -> None:
        """A new stage: always shown."""
        self._stage = name
        self._write(format_progress(self.elapsed_s, name), force=True)

    def update(
        self, *, height: int | None = None, tps: float | None = None, note: str = ""
    ) -> None:
        """The current figures of the stage (shown when due)."""
        text = format_progress(self.elapsed_s, self._stage, height=height, tps=tps, note=note)
        self._write(text, force=False)

    def line(self, text: str) -> None:
        """A message of its own (an event, a warning), always shown on its own line."""
        self._end_status_line()
        self._stream.write(f"[{self.elapsed_s:6.1f}s] {text}\n")
        self._stream.flush()

    def done(self, text: str = "") -> None:
        """End the status line (and write ``text`` when given)."""
        self._end_status_line()
        if text:
            self.line(text)

    def _write(self, text: str, *, force: bool) -> None:
        now = self._clock()
        if self._tty:
            self._stream.write("\r\x1b[2K" + text)
            self._pending_line = True
        elif force or now - self._last_write >= self._interval_s:
            self._stream.write(text + "\n")
        else:
            return
        self._last_write = now
        self._stream.flush()

    def _end_status_line(self) -> None:
        if self._tty and self._pending_line:
            self._stream.write("\n")
            self._pending_line = False
