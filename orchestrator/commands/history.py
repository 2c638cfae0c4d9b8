"""``aitbc-testnet history add | list | show | check | trend``: the run history (an SQLite file,
``--history PATH``) over the library of ``orchestrator.history``; the nightly CronJob and
docs/ci/nightly.yml call these commands.

Exit codes: 0 done (``check``: no new regression), 1 ``check`` found a new regression, 2 bad
input (no report at REPORT_DIR, an unknown metric, an empty or missing history), 3 the history
file cannot be read or written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.commands.output import echo_json
from orchestrator.history import (
    DEFAULT_HISTORY_PATH,
    HEADLINE_METRICS,
    CheckResult,
    HistoryStore,
    HistoryUsageError,
    MetricHistory,
    Regression,
    add_report,
    check,
    list_series,
    show_metric,
    trend_page,
)
from orchestrator.history.operations import DEFAULT_RECENT_RUNS
from orchestrator.report.model import find_report

HistoryOption = Annotated[
    Path,
    typer.Option(
        "--history",
        help="The history file (SQLite). `add` creates it; the other commands read it.",
    ),
]
ScenarioFilter = Annotated[
    str | None,
    typer.Option("--scenario", help="Only the series of this scenario.", show_default=False),
]
PlatformFilter = Annotated[
    str | None,
    typer.Option("--platform", help="Only the series of this platform.", show_default=False),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _open_existing(path: Path) -> HistoryStore:
    """The history at ``path``; HistoryUsageError (exit 2) when there is none yet."""
    if not path.is_file():
        raise HistoryUsageError(
            f"no history at {path}: add a report first (aitbc-testnet history add REPORT_DIR "
            f"--history {path}) or give the right --history"
        )
    return HistoryStore(path)


def _regression_document(regression: Regression) -> dict[str, Any]:
    change = regression.change
    return {
        "metric": regression.metric.name,
        "series": regression.key.describe(),
        "before": change.before,
        "after": change.after,
        "relative_change": change.relative_change,
        "p_value": change.p_value,
        "commit_range": regression.commit_range,
        "last_run_before": regression.last_before.run_id,
        "first_run_after": regression.first_after.run_id,
        "description": regression.describe(),
    }


def _history_document(history: MetricHistory) -> dict[str, Any]:
    return {
        "series": history.key.describe(),
        "scenario": history.key.scenario,
        "platform": history.key.platform,
        "params_hash": history.key.params_hash,
        "metric": history.metric.name,
        "unit": history.metric.unit,
        "better": history.metric.better,
        "runs": [
            {
                "run_id": run.run_id,
                "started": run.started.isoformat(),
                "commit": run.git_commit,
                "value": value,
            }
            for run, value in zip(history.runs, history.values, strict=True)
        ],
        "change_points": [
            {
                "first_run_after": history.runs[change.index].run_id,
                "before": change.before,
                "after": change.after,
                "p_value": change.p_value,
            }
            for change in history.change_points
        ],
        "regressions": [_regression_document(item) for item in history.regressions],
    }


def _show_lines(history: MetricHistory) -> list[str]:
    metric = history.metric
    lines = [
        f"{metric.name} of {history.key.describe()} ({metric.unit}, {metric.better} is better): "
        f"{len(history.runs)} runs"
    ]
    changes = {change.index: change for change in history.change_points}
    for position, (run, value) in enumerate(zip(history.runs, history.values, strict=True)):
        change = changes.get(position)
        if change is not None:
            lines.append(
                f"  ---- change point: {change.before:.6g} -> {change.after:.6g} "
                f"(p={change.p_value:.3f})"
            )
        lines.append(
            f"  {position + 1:>4}  {run.started:%Y-%m-%d %H:%M}  {run.commit_label:<12}  "
            f"{value:.6g}  {run.run_id}"
        )
    lines += [f"  REGRESSION: {regression.describe()}" for regression in history.regressions]
    return lines


def _check_lines(result: CheckResult) -> list[str]:
    runs = sum(len(history.runs) for history in result.histories)
    lines = [
        f"checked {len(result.histories)} metric series ({runs} values) for change points; "
        f"new = first run after the change among the latest {result.recent_runs} runs"
    ]
    lines += [f"NEW REGRESSION: {item.describe()}" for item in result.new_regressions]
    lines += [f"older regression: {item.describe()}" for item in result.older_regressions]
    if not result.new_regressions:
        lines.append("no new regression")
    return lines


def register(app: typer.Typer) -> None:
    history_app = typer.Typer(
        name="history",
        no_args_is_help=True,
        help=(
            "The run history: reports kept in an SQLite file by scenario, platform, parameters "
            "and commit; change points of every headline metric; regressions with the commit "
            "range that holds their cause.\n\n"
            "Example: aitbc-testnet history add out/nightly && aitbc-testnet history check"
        ),
    )
    app.add_typer(history_app)

    @history_app.command(
        help=(
            "Add a run's report.json to the history (created when missing). REPORT_DIR is the "
            "--out folder of `run`/`collect`, a run directory or a report.json; adding the same "
            "run twice keeps one. Exits 2 when there is no report there.\n\n"
            "Example: aitbc-testnet history add out/nightly --history history.sqlite"
        )
    )
    def add(
        report_dir: Annotated[
            Path,
            typer.Argument(
                metavar="REPORT_DIR",
                help="Folder (or file) holding report.json.",
                show_default=False,
            ),
        ],
        history: HistoryOption = DEFAULT_HISTORY_PATH,
    ) -> None:
        find_report(report_dir)  # no report: exit 2 before the history file is created
        with HistoryStore(history) as store:
            result = add_report(store, report_dir)
            record = result.record
            count = len(store.runs(record.key))
        verb = "added" if result.added else "already in the history:"
        typer.echo(
            f"{verb} run {record.run_id} (commit {record.commit_label}) to "
            f"{record.key.describe()}: {count} run(s) in the series; history {history}"
        )

    @history_app.command(
        name="list",
        help=(
            "List the series in the history (scenario, platform, parameters) with their runs.\n\n"
            "Example: aitbc-testnet history list --scenario nightly"
        ),
    )
    def list_command(
        history: HistoryOption = DEFAULT_HISTORY_PATH,
        scenario: ScenarioFilter = None,
        platform: PlatformFilter = None,
        as_json: JsonFlag = False,
    ) -> None:
        with _open_existing(history) as store:
            found = list_series(store, scenario=scenario, platform=platform)
        if as_json:
            echo_json(
                [
                    {
                        "scenario": item.key.scenario,
                        "platform": item.key.platform,
                        "params_hash": item.key.params_hash,
                        "runs": item.runs,
                        "first": item.first.isoformat(),
                        "last": item.last.isoformat(),
                    }
                    for item in found
                ]
            )
            return
        if not found:
            typer.echo(f"no runs in {history}")
        for item in found:
            typer.echo(
                f"{item.key.describe()}: {item.runs} run(s), {item.first:%Y-%m-%d %H:%M} .. "
                f"{item.last:%Y-%m-%d %H:%M}"
            )

    @history_app.command(
        help=(
            "Show one headline metric over the runs of every series, oldest first, with its "
            "change points and regressions. METRIC is one of: "
            + ", ".join(metric.name for metric in HEADLINE_METRICS)
            + ".\n\nExample: aitbc-testnet history show tps.mean --scenario nightly"
        )
    )
    def show(
        metric: Annotated[
            str, typer.Argument(metavar="METRIC", help="A headline metric.", show_default=False)
        ],
        history: HistoryOption = DEFAULT_HISTORY_PATH,
        scenario: ScenarioFilter = None,
        platform: PlatformFilter = None,
        as_json: JsonFlag = False,
    ) -> None:
        with _open_existing(history) as store:
            found = show_metric(store, metric, scenario=scenario, platform=platform)
        if as_json:
            echo_json([_history_document(item) for item in found])
            return
        if not found:
            typer.echo(f"no run in {history} has {metric}")
        for item in found:
            for line in _show_lines(item):
                typer.echo(line)

    @history_app.command(
        name="check",
        help=(
            "The nightly gate: look for change points in every headline metric of every "
            "series and exit 1 when a regression's first run after the change is among the "
            "latest --recent runs (it names the metric, the change and the commit range).\n\n"
            "Example: aitbc-testnet history check --history history.sqlite"
        ),
    )
    def check_command(
        history: HistoryOption = DEFAULT_HISTORY_PATH,
        scenario: ScenarioFilter = None,
        platform: PlatformFilter = None,
        recent: Annotated[
            int,
            typer.Option(
                "--recent",
                help="A regression is new when its first run after the change is among the "
                "latest this many runs of its series.",
            ),
        ] = DEFAULT_RECENT_RUNS,
        as_json: JsonFlag = False,
    ) -> None:
        with _open_existing(history) as store:
            result = check(store, scenario=scenario, platform=platform, recent_runs=recent)
        if as_json:
            echo_json(
                {
                    "regressed": result.regressed,
                    "recent_runs": result.recent_runs,
                    "series_checked": len(result.histories),
                    "new_regressions": [_regression_document(r) for r in result.new_regressions],
                    "older_regressions": [
                        _regression_document(r) for r in result.older_regressions
                    ],
                }
            )
        else:
            for line in _check_lines(result):
                typer.echo(line)
        if result.regressed:
            raise typer.Exit(code=1)

    @history_app.command(
        help=(
            "Write the trend page: one HTML file with a plot per headline metric and series, "
            "change points marked, regressions shaded and labelled with their commit range.\n\n"
            "Example: aitbc-testnet history trend --out out/trend.html"
        )
    )
    def trend(
        out: Annotated[
            Path,
            typer.Option(
                "--out",
                "-o",
                help="The HTML file (a folder gets trend.html).",
                show_default=False,
            ),
        ],
        history: HistoryOption = DEFAULT_HISTORY_PATH,
        scenario: ScenarioFilter = None,
        platform: PlatformFilter = None,
    ) -> None:
        with _open_existing(history) as store:
            written = trend_page(store, out, scenario=scenario, platform=platform)
        typer.echo(f"trend page: {written}")
