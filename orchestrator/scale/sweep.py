"""Running a scale sweep: one campaign per validator count, each on a platform of its own
(a live campaign through ``stages.campaign``, a simulated one through ``stages.simulate``),
its report under ``<out>/n-<N>/``, then the sweep's report of all of them.

A count whose campaign fails on infrastructure (``PlatformError``: the machine could not run
that many validators) is recorded with its error and the sweep goes on with the next; bad input
is found before anything runs (every plan is resolved first, by the caller) and Ctrl-C stops
the sweep after the running campaign's teardown."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.errors import PlatformError
from orchestrator.platforms.capabilities import Simulator
from orchestrator.report.provenance import git_commit
from orchestrator.scale.model import ScaleReport, ScaleRow, row_from_report
from orchestrator.scale.plan import ScalePoint
from orchestrator.scale.render import ScaleFiles, write_scale_outputs
from orchestrator.scenario.plan import Plan
from orchestrator.stages.campaign import DEFAULT_READY_TIMEOUT_S, Campaign
from orchestrator.stages.collect import CollectResult
from orchestrator.stages.events import ProgressEvent, ProgressSink
from orchestrator.stages.simulate import run_simulated

__all__ = ["PlannedPoint", "ScaleOutcome", "Sweep", "point_dir"]

PlatformFor = Callable[[ScalePoint, Path], object]
"""A new platform for a point, given the point's run directory (the command's registry)."""


@dataclass(frozen=True)
class PlannedPoint:
    """A point of the sweep and its resolved plan."""

    point: ScalePoint
    plan: Plan


@dataclass(frozen=True)
class ScaleOutcome:
    report: ScaleReport
    files: ScaleFiles

    @property
    def infrastructure_failed(self) -> bool:
        return any(row.error is not None for row in self.report.rows)


def point_dir(out_dir: Path, point: ScalePoint) -> Path:
    """Where a point's campaign report goes."""
    return out_dir / f"n-{point.validators}"


@dataclass(frozen=True)
class Sweep:
    """The sweep of ``scenario``: ``points`` in order, real ones on ``platform``."""

    scenario: str
    description: str
    platform: str
    simulate_above: int | None
    points: Sequence[PlannedPoint]
    platform_for: PlatformFor
    out_dir: Path
    run_root: Path
    on_progress: ProgressSink | None = None
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S

    def _emit(self, began: float, message: str) -> None:
        if self.on_progress is not None:
            self.on_progress(ProgressEvent("scale", time.monotonic() - began, message=message))

    def _campaign(self, planned: PlannedPoint) -> CollectResult:
        plan = planned.plan
        run_dir = self.run_root / plan.run_id
        out = point_dir(self.out_dir, planned.point)
        platform = self.platform_for(planned.point, run_dir)
        if isinstance(platform, Simulator):
            return run_simulated(plan, platform, out, on_progress=self.on_progress, run_dir=run_dir)
        return Campaign(
            plan,
            platform,
            out,
            run_dir=run_dir,
            on_progress=self.on_progress,
            ready_timeout_s=self.ready_timeout_s,
        ).run()

    def _row(self, planned: PlannedPoint, began: float) -> ScaleRow:
        point = planned.point
        source = "simulated" if point.simulated else f"real, {self.platform}"
        self._emit(
            began,
            f"N = {point.validators} ({point.authorities} authorities, {source}): "
            f"run {planned.plan.run_id}",
        )
        started = time.monotonic()
        try:
            result = self._campaign(planned)
        except PlatformError as exc:
            self._emit(began, f"N = {point.validators} failed: {exc}")
            return ScaleRow(
                validators=point.validators,
                authorities=point.authorities,
                simulated=point.simulated,
                platform="sim" if point.simulated else self.platform,
                error=str(exc),
                wall_s=round(time.monotonic() - started, 3),
            )
        report_path = result.files.json.resolve().relative_to(self.out_dir.resolve()).as_posix()
        return row_from_report(
            result.report,
            validators=point.validators,
            authorities=point.authorities,
            report_path=report_path,
            wall_s=time.monotonic() - started,
        )

    def run(self) -> ScaleOutcome:
        began = time.monotonic()
        started = datetime.now(UTC)
        rows = [self._row(planned, began) for planned in self.points]
        report = ScaleReport(
            scenario=self.scenario,
            description=self.description,
            platform=self.platform,
            simulate_above=self.simulate_above,
            git_commit=git_commit(),
            started=started,
            ended=datetime.now(UTC),
            rows=rows,
            notes=[
                "each count runs the scenario with network.validators and network.authorities "
                "replaced (authorities keep the scenario's proportion, at least 4); load, "
                "faults (by voting-power fraction) and criteria are the scenario's"
            ],
        )
        files = write_scale_outputs(report, self.out_dir)
        return ScaleOutcome(report=report, files=files)
