"""What ``aitbc-testnet history add | list | show | check | trend`` do, as library functions
over an open ``HistoryStore`` (the CLI opens ``--history PATH`` and prints the results).

``check`` answers the nightly gate: the regressions whose first run after the change is among
the ``recent_runs`` latest runs of their series (older ones were reported by earlier checks);
the CLI exits 1 when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.history.analysis import DetectionSettings, MetricHistory, Regression, analyse
from orchestrator.history.errors import HistoryUsageError
from orchestrator.history.metrics import HEADLINE_METRICS, HeadlineMetric, metric_named
from orchestrator.history.store import AddResult, HistoryStore, SeriesSummary
from orchestrator.history.trend import render_trend, write_trend
from orchestrator.report.model import find_report, read_report

DEFAULT_RECENT_RUNS = 5
DEFAULT_SETTINGS = DetectionSettings()


@dataclass(frozen=True)
class CheckResult:
    histories: tuple[MetricHistory, ...]
    new_regressions: tuple[Regression, ...]
    """Regressions whose first run after the change is among the latest ``recent_runs``."""
    older_regressions: tuple[Regression, ...]
    recent_runs: int

    @property
    def regressed(self) -> bool:
        return bool(self.new_regressions)


def add_report(store: HistoryStore, location: Path) -> AddResult:
    """Add the ``report.json`` at ``location`` (the file, its folder or a run directory)."""
    return store.add(read_report(location), find_report(location))


def list_series(
    store: HistoryStore, *, scenario: str | None = None, platform: str | None = None
) -> list[SeriesSummary]:
    """The series in the history, optionally of one scenario and/or platform."""
    return [
        summary
        for summary in store.series()
        if (scenario is None or summary.key.scenario == scenario)
        and (platform is None or summary.key.platform == platform)
    ]


def _selected(
    store: HistoryStore, scenario: str | None, platform: str | None
) -> list[SeriesSummary]:
    chosen = list_series(store, scenario=scenario, platform=platform)
    if not chosen:
        wanted = " ".join(
            part
            for part in (
                f"scenario {scenario}" if scenario else "",
                f"platform {platform}" if platform else "",
            )
            if part
        )
        raise HistoryUsageError(
            f"history {store.path} has no runs{' of ' + wanted if wanted else ''}: add reports "
            "with `aitbc-testnet history add REPORT_DIR`"
        )
    return chosen


def _histories(
    store: HistoryStore,
    metrics: tuple[HeadlineMetric, ...],
    chosen: list[SeriesSummary],
    settings: DetectionSettings,
) -> list[MetricHistory]:
    histories = []
    for summary in chosen:
        runs = store.runs(summary.key)
        for metric in metrics:
            if any(metric.name in run.metrics for run in runs):
                histories.append(analyse(summary.key, metric, runs, settings))
    return histories


def show_metric(
    store: HistoryStore,
    name: str,
    *,
    scenario: str | None = None,
    platform: str | None = None,
    settings: DetectionSettings = DEFAULT_SETTINGS,
) -> list[MetricHistory]:
    """The history of metric ``name`` in every selected series, with change points."""
    metric = metric_named(name)
    return _histories(store, (metric,), _selected(store, scenario, platform), settings)


def check(
    store: HistoryStore,
    *,
    scenario: str | None = None,
    platform: str | None = None,
    recent_runs: int = DEFAULT_RECENT_RUNS,
    settings: DetectionSettings = DEFAULT_SETTINGS,
) -> CheckResult:
    """Every headline metric of every selected series analysed; the new regressions apart."""
    if recent_runs < 1:
        raise HistoryUsageError(f"--recent {recent_runs}: use 1 or more runs")
    histories = _histories(store, HEADLINE_METRICS, _selected(store, scenario, platform), settings)
    new: list[Regression] = []
    older: list[Regression] = []
    for history in histories:
        first_recent = len(history.runs) - recent_runs
        for regression in history.regressions:
            (new if regression.change.index >= first_recent else older).append(regression)
    return CheckResult(
        histories=tuple(histories),
        new_regressions=tuple(new),
        older_regressions=tuple(older),
        recent_runs=recent_runs,
    )


def trend_page(
    store: HistoryStore,
    out: Path,
    *,
    scenario: str | None = None,
    platform: str | None = None,
    settings: DetectionSettings = DEFAULT_SETTINGS,
) -> Path:
    """Write the trend page of the selected series to ``out`` (a folder or an .html file)."""
    chosen = _selected(store, scenario, platform)
    histories = _histories(store, HEADLINE_METRICS, chosen, settings)
    runs = {summary.key: store.runs(summary.key) for summary in chosen}
    return write_trend(render_trend(chosen, runs, histories, settings.min_change), out)
