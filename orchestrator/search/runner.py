"""A capacity search from start to end, written as ``search.json``, ``search.md`` and
``search.html``.

- ``search_live``: deploy the plan's testnet once (``stages.up``), run the search with
  ``LiveTrials`` (one load step per trial), copy the artifacts, tear down unless ``keep`` -
  also on a failure or Ctrl-C, after writing what was measured so far (labelled interrupted).
- ``search_simulated``: the search with ``SimTrials`` (one simulation per trial).

Library code: progress goes to ``on_progress``, failures are typed errors; the CLI prints.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.errors import PlatformError
from orchestrator.external.prometheus import PromQuery
from orchestrator.platforms.capabilities import (
    Artifacts,
    LoadRunner,
    Platform,
    PrometheusAccess,
    Simulator,
    require,
)
from orchestrator.report.provenance import git_commit
from orchestrator.scenario.plan import Plan
from orchestrator.search.bisection import CapacitySearch, TrialRunner
from orchestrator.search.live import LiveTrials
from orchestrator.search.model import (
    Limit,
    Point,
    SearchReport,
    SearchResult,
    SearchSettings,
    Trial,
    Verdict,
)
from orchestrator.search.render import SearchFiles, write_search_outputs
from orchestrator.search.simulated import SIM_NOTES, SimTrials
from orchestrator.stages.campaign import CAMPAIGN_CAPABILITIES
from orchestrator.stages.collect import ARTIFACTS_DIR
from orchestrator.stages.down import tear_down
from orchestrator.stages.events import ProgressEvent, ProgressSink
from orchestrator.stages.up import DEFAULT_READY_TIMEOUT_S, bring_up

__all__ = [
    "LIVE_SEARCH_CAPABILITIES",
    "SearchOutcome",
    "describe_point",
    "describe_trial",
    "search_live",
    "search_simulated",
]

LIVE_SEARCH_CAPABILITIES = CAMPAIGN_CAPABILITIES
"""What a live search needs: what a campaign without faults needs."""
PROMETHEUS_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class SearchOutcome:
    report: SearchReport
    files: SearchFiles
    kept: bool


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def describe_trial(trial: Trial) -> str:
    """One line: a trial's figures."""
    achieved = "n/a" if trial.achieved_tps is None else f"{trial.achieved_tps:.1f} tx/s"
    ratio = trial.achieved_ratio
    growth = "n/a" if trial.mempool_growth is None else f"{trial.mempool_growth:+.0f}"
    return (
        f"{trial.rate:g} tx/s #{trial.index} ({trial.generator.users} users): achieved "
        f"{achieved}{'' if ratio is None else f' ({ratio:.1%})'}, p50 {_ms(trial.p50_ms)}, p99 "
        f"{_ms(trial.p99_ms)}, mempool {growth}; {trial.generator_verdict}"
    )


def describe_point(point: Point) -> str:
    """One line: a point's verdict and why."""
    why = f": {'; '.join(point.reasons)}" if point.reasons else ""
    p99 = "n/a" if point.p99_ms is None else point.p99_ms.describe()
    return f"{point.rate:g} tx/s {point.verdict.value.upper()} (p99 {p99} ms){why}"


def _interrupted(points: list[Point], error: BaseException) -> SearchResult:
    passing = [p.rate for p in points if p.verdict is Verdict.PASS]
    best = max(passing) if passing else None
    what = "Ctrl-C" if isinstance(error, KeyboardInterrupt) else str(error) or type(error).__name__
    so_far = "no rate passed so far" if best is None else f"the highest passing: {best:g} tx/s"
    return SearchResult(
        points=points,
        knee_tps=best,
        limited_by=Limit.INTERRUPTED,
        conclusion=f"interrupted after {len(points)} rate(s) ({what}); {so_far}",
    )


class _Search:
    """What both searches share: progress, the search itself, the report and its files."""

    def __init__(
        self,
        plan: Plan,
        platform: str,
        settings: SearchSettings,
        out_dir: Path,
        on_progress: ProgressSink | None,
    ) -> None:
        self.plan = plan
        self.platform = platform
        self.settings = settings
        self.out_dir = out_dir
        self.on_progress = on_progress
        self.started = datetime.now(UTC)
        self.began = time.monotonic()
        self.notes: list[str] = []
        if plan.faults:
            self.notes.append(
                f"the scenario's {len(plan.faults)} fault(s) are not run: a capacity search "
                "measures the network without faults"
            )

    def emit(self, stage: str, message: str) -> None:
        if self.on_progress is not None:
            self.on_progress(ProgressEvent(stage, time.monotonic() - self.began, message=message))

    def run(self, runner: TrialRunner, *, image_tag: str, simulated: bool = False) -> SearchResult:
        """Run the search with ``runner``; on an exception (Ctrl-C included) write what was
        measured first, then re-raise."""
        search = CapacitySearch(
            runner,
            self.settings,
            on_trial=lambda trial: self.emit("trial", describe_trial(trial)),
            on_point=lambda point: self.emit("point", describe_point(point)),
        )
        try:
            return search.run()
        except BaseException as error:
            self.write(_interrupted(search.measured(), error), image_tag, simulated)
            raise

    def write(
        self, result: SearchResult, image_tag: str, simulated: bool, *, kept: bool = False
    ) -> SearchOutcome:
        report = SearchReport(
            run_id=self.plan.run_id,
            scenario=self.plan.name,
            description=self.plan.description,
            platform=self.platform,
            simulated=simulated,
            params=self.plan.to_dict(),
            git_commit=git_commit(),
            image_tag=image_tag,
            started=self.started,
            ended=datetime.now(UTC),
            settings=self.settings,
            result=result,
            notes=self.notes,
        )
        self.emit("report", f"writing search.json, search.md, search.html in {self.out_dir}")
        return SearchOutcome(report, write_search_outputs(report, self.out_dir), kept=kept)


def search_live(
    plan: Plan,
    platform: Platform,
    settings: SearchSettings,
    out_dir: Path,
    *,
    keep: bool = False,
    on_progress: ProgressSink | None = None,
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
) -> SearchOutcome:
    """Deploy once, search, tear down (see the module docstring)."""
    what = f"run a capacity search of {plan.name}"
    for capability in LIVE_SEARCH_CAPABILITIES:
        require(platform, capability, what)
    prometheus = require(platform, PrometheusAccess, what)
    artifacts = require(platform, Artifacts, what)
    loads = require(platform, LoadRunner, what)
    job = _Search(plan, platform.name, settings, out_dir, on_progress)
    job.notes.append(
        "the load generator is one Locust process: it grows in users (up to "
        "min(64, load.accounts)) when it falls behind; a rate it cannot drive with them is "
        "generator-limited, never counted against the network"
    )
    prom: PromQuery | None = None
    try:
        job.emit("up", f"deploying {plan.network.validators} validators")
        bring_up(platform, plan, ready_timeout_s=ready_timeout_s)
        if loads.load_files().summary is None:
            job.notes.append(
                f"platform {platform.name}: the load generator writes no summary and no "
                "samples here, so its self check is missing and the SLO is judged on the "
                "probes' latency histogram (an estimate within its bucket), not exact samples"
            )
        url = prometheus.prometheus_url()
        if url is None:
            raise PlatformError(
                f"platform {platform.name} runs no Prometheus, so the search cannot measure: "
                "use --platform local, kubernetes or sim"
            )
        prom = PromQuery(url, timeout_s=PROMETHEUS_TIMEOUT_S, retries=0)
        trials = LiveTrials(platform, plan, prom, settings)
        job.emit(
            "search",
            f"from {settings.start_tps:g} tx/s, {settings.trials} trial(s) of "
            f"{settings.step_s:g} s per rate, p99 SLO {settings.slo_p99_ms:g} ms",
        )
        result = job.run(trials, image_tag=platform.image_tag())
    finally:
        if prom is not None:
            prom.close()
        with contextlib.suppress(Exception):
            artifacts.collect_artifacts(out_dir / ARTIFACTS_DIR)
        if not keep:
            job.emit("down", "stopping every process of the run")
            tear_down(platform)
    return job.write(result, platform.image_tag(), simulated=False, kept=keep)


def search_simulated(
    plan: Plan,
    make_simulator: Callable[[int], Simulator],
    settings: SearchSettings,
    out_dir: Path,
    *,
    on_progress: ProgressSink | None = None,
    timeout_s: float | None = None,
) -> SearchOutcome:
    """The search in the simulator, one simulation per trial."""
    job = _Search(plan, "sim", settings, out_dir, on_progress)
    job.notes.extend(SIM_NOTES)
    job.emit("search", f"from {settings.start_tps:g} tx/s, {settings.trials} simulation(s) a rate")
    result = job.run(
        SimTrials(make_simulator, plan, settings, timeout_s=timeout_s),
        image_tag="sim",
        simulated=True,
    )
    return job.write(result, "sim", simulated=True)
