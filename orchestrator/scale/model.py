"""``scale.json``: the record of one ``aitbc-testnet scale`` sweep (pydantic: it crosses a
boundary). One ``ScaleRow`` per validator count, its figures taken from that campaign's own
``report.json`` (kept beside it under ``n-<N>/``); ``simulated`` rows come from the simulator
and say so. Bump ``SCALE_SCHEMA_VERSION`` on any change that removes or renames a field."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.report.model import Report

SCALE_SCHEMA_VERSION = 1
SCALE_FILE = "scale.json"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScaleRow(_Model):
    """One validator count: what its campaign measured (None: not measured or failed)."""

    validators: int
    authorities: int
    simulated: bool = Field(description="numbers from the simulator, not a running testnet")
    platform: str
    report: str | None = Field(default=None, description="its report.json, relative")
    passed: bool | None = Field(default=None, description="the scenario's criteria")
    safe: bool | None = Field(default=None, description="the safety check found nothing")
    error: str | None = Field(default=None, description="why the campaign did not finish")
    wall_s: float | None = Field(default=None, description="the campaign's wall time")
    tps: float | None = Field(default=None, description="committed TPS, measured window")
    offered_tps: float | None = None
    finality_p50_ms: float | None = None
    finality_p99_ms: float | None = None
    cpu_ms_per_block: float | None = Field(
        default=None,
        description="CPU ms one validator spends per committed block (simulated: the cost "
        "model's signature operations only)",
    )
    cpu_cores_per_validator: float | None = None
    rss_mib_per_validator: float | None = None
    block_interval_ms: float | None = None
    timeouts: int | None = None

    @property
    def ok(self) -> bool:
        """A real count passed its criteria; a simulated one was safe (the simulator measures
        no TPS, so criteria on it cannot pass there)."""
        return bool(self.safe if self.simulated else self.passed)

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return f"error: {self.error}"
        if self.simulated:
            return "safe" if self.safe else "UNSAFE"
        return "passed" if self.passed else "FAILED"


class ScaleReport(_Model):
    schema_version: int = SCALE_SCHEMA_VERSION
    scenario: str
    description: str = ""
    platform: str = Field(description="where the real counts ran")
    simulate_above: int | None = Field(
        default=None, description="counts above this were simulated (None: none)"
    )
    git_commit: str | None = None
    started: datetime
    ended: datetime
    rows: list[ScaleRow] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every count ok (``ScaleRow.ok``)."""
        return all(row.ok for row in self.rows)


def row_from_report(
    report: Report, *, validators: int, authorities: int, report_path: str | None, wall_s: float
) -> ScaleRow:
    """A sweep row from one campaign's report."""
    m = report.measurements
    resources = m.resources
    return ScaleRow(
        validators=validators,
        authorities=authorities,
        simulated=report.simulated,
        platform=report.platform,
        report=report_path,
        passed=report.passed,
        safe=report.safety.ok,
        wall_s=round(wall_s, 3),
        tps=m.tps.mean,
        offered_tps=m.tps.offered,
        finality_p50_ms=m.finality_ms.p50,
        finality_p99_ms=m.finality_ms.p99,
        cpu_ms_per_block=None if resources is None else resources.cpu_ms_per_block,
        cpu_cores_per_validator=None if resources is None else resources.cpu_cores_mean,
        rss_mib_per_validator=None if resources is None else resources.rss_mib_mean,
        block_interval_ms=m.block_interval_ms,
        timeouts=m.timeouts,
    )


def write_scale_report(report: ScaleReport, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / SCALE_FILE
    path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path
