"""Typed errors of the history store and its analyses (exit codes as in ``orchestrator.errors``:
2 bad input, 3 the store itself failed)."""

from __future__ import annotations

from orchestrator.errors import AitbcTestnetError, UsageError


class HistoryUsageError(UsageError):
    """A history request is wrong: an unknown metric, an empty history, a bad option. Exit 2."""


class HistoryStoreError(AitbcTestnetError):
    """The history database cannot be opened, read or written. Exit 3."""
