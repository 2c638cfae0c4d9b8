"""Progress of the stages: library code reports it as events to a callback; only the CLI
prints them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ProgressEvent", "ProgressSink"]


@dataclass(frozen=True)
class ProgressEvent:
    """One progress line: the stage, seconds since the work started, and the chain's height
    and committed TPS when known."""

    stage: str
    elapsed_s: float
    height: int | None = None
    tps: float | None = None
    message: str = ""


ProgressSink = Callable[[ProgressEvent], None]
