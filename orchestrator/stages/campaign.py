"""A campaign: up -> ready -> warm-up -> load + fault timeline -> cool-down -> settle ->
collect -> safety check -> criteria -> report -> down, each stage the function of its module
(``up``, ``load``, ``collect``, ``report``, ``down``), driven on any platform through its
capabilities. Library code: progress goes to an ``on_progress`` callback, failures are typed
errors; the CLI prints and exits.

Before anything is deployed, the platform must have every capability the campaign and the
plan's faults need (``CapabilityError``, exit 2, otherwise). Teardown: the campaign always
stops the fault timeline (clearing every fault) and the load, and destroys the testnet unless
``keep`` - also when a stage fails or on Ctrl-C (KeyboardInterrupt propagates after the
teardown). When a stage fails after deploy, the run's artifacts are copied to
``<out>/artifacts`` first so the failure can be diagnosed.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.errors import PlatformError
from orchestrator.external.prometheus import PromQuery
from orchestrator.faults.driver import needed_capabilities
from orchestrator.faults.records import save_fault_records
from orchestrator.measure import promql as pq
from orchestrator.measure.measurer import RunTimes
from orchestrator.platforms.capabilities import (
    Artifacts,
    Deployer,
    LoadRunner,
    NodeAccess,
    PrometheusAccess,
    ReadyProgress,
    Teardown,
    require,
)
from orchestrator.scenario.plan import Plan
from orchestrator.stages.collect import (
    ARTIFACTS_DIR,
    CollectInputs,
    CollectResult,
    node_readers,
    report_window,
    settle,
    wait_scraped_since,
)
from orchestrator.stages.down import tear_down
from orchestrator.stages.events import ProgressEvent, ProgressSink
from orchestrator.stages.load import run_load_window
from orchestrator.stages.up import DEFAULT_READY_TIMEOUT_S, bring_up

__all__ = [
    "CAMPAIGN_CAPABILITIES",
    "DEFAULT_READY_TIMEOUT_S",
    "Campaign",
    "campaign_capabilities",
]

PROGRESS_EVERY_S = 5.0
DEFAULT_SETTLE_S = 30.0
PROMETHEUS_TIMEOUT_S = 5.0
SCRAPED_BOUND_SCRAPES = 30
"""After settling, Prometheus scrapes every validator once more before the measurement (a
bound of this many scrape intervals: one or two on an idle machine)."""
CAMPAIGN_CAPABILITIES: tuple[type, ...] = (
    Deployer,
    Teardown,
    NodeAccess,
    LoadRunner,
    PrometheusAccess,
    Artifacts,
)
"""What every live campaign needs; the plan's faults add theirs (``faults.driver``)."""


def campaign_capabilities(plan: Plan) -> list[type]:
    """The capabilities a platform needs to run the campaign of ``plan``."""
    needed = list(CAMPAIGN_CAPABILITIES)
    needed += [c for c in needed_capabilities(f.kind for f in plan.faults) if c not in needed]
    return needed


class Campaign:
    """One live campaign of ``plan`` on ``platform``, reports into ``out_dir``."""

    def __init__(
        self,
        plan: Plan,
        platform: object,
        out_dir: Path,
        *,
        run_dir: Path | None = None,
        keep: bool = False,
        on_progress: ProgressSink | None = None,
        ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
        settle_s: float | None = None,
        progress_every_s: float = PROGRESS_EVERY_S,
    ) -> None:
        what = f"run the campaign of {plan.name}"
        for capability in campaign_capabilities(plan):
            require(platform, capability, what)
        self._deployer = require(platform, Deployer, what)
        self._nodes = require(platform, NodeAccess, what)
        self._prometheus = require(platform, PrometheusAccess, what)
        self._artifacts = require(platform, Artifacts, what)
        self.plan = plan
        self.platform = platform
        self.out_dir = Path(out_dir)
        self.run_dir = run_dir
        self.keep = keep
        self.on_progress = on_progress
        self.ready_timeout_s = ready_timeout_s
        recovery = plan.criteria.max_recovery_s
        self.settle_s = (
            settle_s if settle_s is not None else max(DEFAULT_SETTLE_S, (recovery or 0.0) + 5.0)
        )
        self.progress_every_s = progress_every_s
        self.started_mono = time.monotonic()
        self._prom: PromQuery | None = None

    # -- progress ----------------------------------------------------------------------------

    def _emit(
        self, stage: str, message: str = "", height: int | None = None, tps: float | None = None
    ) -> None:
        if self.on_progress is not None:
            elapsed = time.monotonic() - self.started_mono
            self.on_progress(ProgressEvent(stage, elapsed, height, tps, message))

    def _live_numbers(self) -> tuple[int | None, float | None]:
        """Chain height and committed TPS now, from Prometheus (best effort)."""
        if self._prom is None:
            return None, None
        try:
            height = self._prom.scalar(f"max({pq.height_by_validator()})")
            window_s = pq.rate_window_s(self._deployer.name, self.plan.network.validators)
            tps = self._prom.scalar(pq.committed_tps(window_s))
        except PlatformError:
            return None, None
        return (None if height is None else round(height)), tps

    def _show_ready(self) -> ReadyProgress:
        last = [0.0]

        def show(stage: str, count: int, height: int) -> None:
            if time.monotonic() - last[0] >= self.progress_every_s:
                last[0] = time.monotonic()
                self._emit("ready", f"{stage}: {count} validators", height=height)

        return show

    def _show_load(self, since: float) -> None:
        load = self.plan.load
        stage = (
            "warm-up"
            if since < load.warmup_s
            else "cool-down"
            if since >= load.duration_s - load.cooldown_s
            else "measure"
        )
        height, tps = self._live_numbers()
        self._emit(stage, f"t+{since:.0f}s of {load.duration_s:g}s", height, tps)

    # -- stages ------------------------------------------------------------------------------

    def run(self) -> CollectResult:
        plan, platform = self.plan, self.platform
        deployer, artifacts_of = self._deployer, self._artifacts
        started = datetime.now(UTC)
        run_start = time.time()
        deployed = False
        try:
            self._emit("up", f"deploying {plan.network.validators} validators")
            deployed = True
            self._emit("ready", f"waiting up to {self.ready_timeout_s:g} s for every validator")
            bring_up(
                platform,
                plan,
                ready_timeout_s=self.ready_timeout_s,
                on_progress=self._show_ready(),
            )
            url = self._prometheus.prometheus_url()
            if url is None:
                raise PlatformError(
                    f"platform {deployer.name} runs no Prometheus, so the run cannot be "
                    "measured: use --platform local (or sim for a simulated report)"
                )
            prom = PromQuery(url, timeout_s=PROMETHEUS_TIMEOUT_S, retries=0)
            self._prom = prom
            readers = node_readers(self._nodes)
            load = plan.load
            self._emit(
                "load",
                f"{load.shape} load, {load.tps:g} tx/s offered for {load.duration_s:g} s "
                f"(warm-up {load.warmup_s:g} s, cool-down {load.cooldown_s:g} s); "
                f"{len(plan.faults)} fault(s) scheduled",
            )
            window = run_load_window(
                platform,
                plan,
                faults=plan.faults,
                tick=self._show_load,
                tick_s=self.progress_every_s,
                on_fault_event=lambda line: self._emit("fault", line),
                log_hint=f"its log (logs/ in {self.out_dir / ARTIFACTS_DIR})",
            )
            if self.run_dir is not None:
                save_fault_records(window.records, self.run_dir)
            self._emit(
                "settle", f"waiting up to {self.settle_s:g} s for every validator to catch up"
            )
            settle(
                readers,
                self.settle_s,
                on_heights=lambda heights: self._emit(
                    "settle", f"heights {heights}", height=max(heights.values(), default=None)
                ),
            )
            wait_scraped_since(
                prom,
                time.time(),
                plan.network.validators,
                SCRAPED_BOUND_SCRAPES
                * pq.scrape_interval_s(deployer.name, plan.network.validators),
            )
            run_end = time.time()
            self._emit("collect", "measuring from Prometheus, reading every validator's chain")
            report, files = report_window(
                CollectInputs(
                    plan=plan,
                    platform=deployer.name,
                    prometheus_url=url,
                    readers=readers,
                    times=RunTimes(
                        run_start=run_start,
                        load_start=window.load_start,
                        load_end=window.load_end,
                        run_end=run_end,
                        warmup_s=load.warmup_s,
                        cooldown_s=load.cooldown_s,
                    ),
                    records=window.records,
                    started=started,
                    image_tag=deployer.image_tag(),
                ),
                artifacts_of,
                self.out_dir,
                self._emit,
            )
        except BaseException:
            if deployed and (self.run_dir is None or self.run_dir.exists()):
                with contextlib.suppress(Exception):
                    artifacts_of.collect_artifacts(self.out_dir / ARTIFACTS_DIR)
            raise
        finally:
            if self._prom is not None:
                self._prom.close()
            if deployed and not self.keep:
                self._emit("down", "stopping every process of the run")
                tear_down(platform)
        if self.keep:
            self._emit(
                "keep", "the testnet keeps running (--keep): stop it with aitbc-testnet down"
            )
        return CollectResult(report=report, files=files, run_dir=self.run_dir, kept=self.keep)
