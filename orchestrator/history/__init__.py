"""The run history: past reports in an embedded SQLite store, change points of every headline
metric, regressions with their commit range, and a trend page.

    with HistoryStore(Path(".aitbc/history.sqlite")) as store:
        add_report(store, Path("out/nightly"))
        result = check(store)            # result.new_regressions -> exit 1
        trend_page(store, Path("out/history"))
"""

from orchestrator.history.analysis import DetectionSettings, MetricHistory, Regression
from orchestrator.history.changepoints import ChangePoint, e_divisive
from orchestrator.history.errors import HistoryStoreError, HistoryUsageError
from orchestrator.history.metrics import HEADLINE_METRICS, HeadlineMetric, metric_named
from orchestrator.history.operations import (
    CheckResult,
    add_report,
    check,
    list_series,
    show_metric,
    trend_page,
)
from orchestrator.history.store import (
    DEFAULT_HISTORY_PATH,
    AddResult,
    HistoryStore,
    RunRecord,
    SeriesKey,
    SeriesSummary,
)

__all__ = [
    "DEFAULT_HISTORY_PATH",
    "HEADLINE_METRICS",
    "AddResult",
    "ChangePoint",
    "CheckResult",
    "DetectionSettings",
    "HeadlineMetric",
    "HistoryStore",
    "HistoryStoreError",
    "HistoryUsageError",
    "MetricHistory",
    "Regression",
    "RunRecord",
    "SeriesKey",
    "SeriesSummary",
    "add_report",
    "check",
    "e_divisive",
    "list_series",
    "metric_named",
    "show_metric",
    "trend_page",
]
