"""The metrics the history keeps: the report's headline metrics (``report/headline.py``, the
one list the baseline comparison judges too), looked up by name for ``history show``."""

from __future__ import annotations

from orchestrator.history.errors import HistoryUsageError
from orchestrator.report.headline import (
    HEADLINE_METRICS,
    METRICS_BY_NAME,
    HeadlineMetric,
    headline_values,
)

__all__ = ["HEADLINE_METRICS", "HeadlineMetric", "headline_values", "metric_named"]


def metric_named(name: str) -> HeadlineMetric:
    """The headline metric called ``name``; HistoryUsageError listing them otherwise."""
    try:
        return METRICS_BY_NAME[name]
    except KeyError:
        raise HistoryUsageError(
            f"metric {name!r} is not kept in the history: use one of {', '.join(METRICS_BY_NAME)}"
        ) from None
