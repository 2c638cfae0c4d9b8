"""Hostile input refused by this node: counted in ``aitbc_byzantine_rejected_total{reason}``
and logged at a bounded rate (the first refusal of each reason at once, then at most one line
per reason every ``LOG_EVERY_S`` saying how many were refused meanwhile): a flood of bad
messages must not become a flood of log lines."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aitbc_node.ops.metrics import NodeMetrics

log = logging.getLogger(__name__)

LOG_EVERY_S = 10.0


class Rejections:
    def __init__(
        self, index: int, metrics: NodeMetrics, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.index = index
        self.metrics = metrics
        self.clock = clock
        self._last_logged: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def reject(self, sender: int | None, reason: str, n: int = 1) -> None:
        self.metrics.byzantine_rejected(reason, n)
        now = self.clock()
        last = self._last_logged.get(reason)
        if last is not None and now - last < LOG_EVERY_S:
            self._unlogged[reason] = self._unlogged.get(reason, 0) + n
            return
        self._last_logged[reason] = now
        skipped = self._unlogged.pop(reason, 0)
        log.warning(
            "validator %d refused %s from %s: %s%s",
            self.index,
            "input" if n == 1 else f"{n} items",
            "?" if sender is None else f"validator {sender}",
            reason,
            f" ({skipped} more since the last report)" if skipped else "",
        )
