"""``search.json``: the record of a capacity search (pydantic: CI jobs and people read it), with
every trial of every point. The search itself (``bisection.py``) builds these records.

A trial is one open-loop load step at a constant offered rate; a point is the trials of one
rate, judged on their means: achieved/offered at least ``min_achieved_ratio``, end-to-end p99 at
most the SLO, the mempool not growing. Trials where the load generator was saturated do not
count (the search gave it more users and ran them again) but stay in the record.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import UsageError

__all__ = [
    "SEARCH_FILE",
    "SEARCH_SCHEMA_VERSION",
    "Estimate",
    "GeneratorSetting",
    "Limit",
    "Phase",
    "Point",
    "SearchReport",
    "SearchResult",
    "SearchSettings",
    "Trial",
    "Verdict",
    "read_search",
    "write_search",
]

SEARCH_SCHEMA_VERSION = 1
SEARCH_FILE = "search.json"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    GENERATOR_LIMITED = "generator-limited"
    """The load generator stayed saturated with every user and worker it may have: the
    network was not measured at this rate."""
    INCOMPLETE = "incomplete"
    """The search was interrupted before this rate's trials ended (not judged)."""


class Phase(StrEnum):
    RAMP = "ramp"
    DOWN = "down"
    BISECT = "bisect"


class Limit(StrEnum):
    """What ended the search above its knee."""

    NETWORK = "network"
    LOAD_GENERATOR = "load generator"
    MAX_RATE = "max rate"
    BUDGET = "budget"
    INTERRUPTED = "interrupted"
    """A failure or Ctrl-C stopped the search: what was measured is kept."""


class GeneratorSetting(_Model):
    users: int = Field(ge=1, description="load users of all load processes together")
    workers: int = Field(default=1, ge=1, description="load-generator processes")


class SearchSettings(_Model):
    start_tps: float = Field(gt=0, description="the first offered rate")
    max_tps: float = Field(gt=0, description="no rate above this is offered")
    min_tps: float = Field(default=1.0, gt=0, description="going down stops below this")
    slo_p99_ms: float = Field(gt=0, description="end-to-end p99 a passing point stays under")
    trials: int = Field(default=3, ge=1, le=30, description="trials per point")
    min_achieved_ratio: float = Field(default=0.95, gt=0, le=1)
    growth: float = Field(default=2.0, gt=1, description="factor between ramp steps")
    resolution: float = Field(
        default=0.1, gt=0, description="bisection stops when (fail - pass) / pass <= this"
    )
    max_points: int = Field(default=12, ge=1, description="distinct rates at most")
    max_duration_s: float = Field(gt=0, description="no point starts past this wall time")
    step_s: float = Field(gt=0, description="length of one trial's load step")
    warmup_s: float = Field(ge=0, description="start of each step left out of the measurement")
    cooldown_s: float = Field(ge=0, description="end of each step left out of the measurement")
    mempool_tolerance: float = Field(
        default=0.02,
        ge=0,
        description="the mempools may gain this share of the transactions offered in the window "
        "(at least two batches per validator) before they count as growing",
    )


class Trial(_Model):
    rate: float = Field(description="the offered rate asked for (tx/s)")
    index: int = Field(description="the trial's number at this rate, from 0")
    generator: GeneratorSetting
    started_at: float | None = Field(default=None, description="unix seconds (None: simulated)")
    window_s: float | None = Field(default=None, description="the measured window's length")
    offered_tps: float | None = Field(default=None, description="what the load generator offered")
    achieved_tps: float | None = Field(default=None, description="committed TPS over the window")
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    latency_samples: int | None = None
    latency_source: str = ""
    mempool_growth: float | None = Field(
        default=None, description="transactions the mempools gained over the window (fit)"
    )
    mempool_limit: float | None = Field(
        default=None, description="the growth this trial tolerates (mempool_tolerance)"
    )
    generator_saturated: bool = False
    generator_cpu_saturated: bool = False
    generator_verdict: str = ""
    notes: list[str] = Field(default_factory=list)

    @property
    def achieved_ratio(self) -> float | None:
        offered = self.offered_tps if self.offered_tps else self.rate
        return None if self.achieved_tps is None else self.achieved_tps / offered


class Estimate(_Model):
    """The mean of a point's trials with its 95 % confidence interval (Student's t; no
    interval from one trial)."""

    mean: float
    low: float | None
    high: float | None
    n: int

    def describe(self, digits: int = 4, *, count: bool = True) -> str:
        """``mean [low, high] (n trials)``; without the count when ``count`` is False."""
        if self.low is None or self.high is None:
            return f"{self.mean:.{digits}g}" + (" (1 trial)" if count else "")
        interval = f"{self.mean:.{digits}g} [{self.low:.{digits}g}, {self.high:.{digits}g}]"
        return interval + (f" ({self.n} trials)" if count else "")


class Point(_Model):
    rate: float
    phase: Phase
    verdict: Verdict
    reasons: list[str] = Field(default_factory=list)
    trials: list[Trial] = Field(default_factory=list, description="every trial, in order")
    achieved_tps: Estimate | None = None
    achieved_ratio: Estimate | None = None
    p50_ms: Estimate | None = None
    p99_ms: Estimate | None = None
    mempool_growth: Estimate | None = None

    @property
    def counted(self) -> list[Trial]:
        """The trials the verdict is based on (the load generator kept up)."""
        return [trial for trial in self.trials if not trial.generator_saturated]


class SearchResult(_Model):
    points: list[Point] = Field(default_factory=list, description="in the order measured")
    knee_tps: float | None = Field(default=None, description="the highest offered rate that passed")
    limited_by: Limit
    conclusion: str

    @property
    def knee(self) -> Point | None:
        return next((p for p in self.points if p.rate == self.knee_tps), None)


class SearchReport(_Model):
    schema_version: int = SEARCH_SCHEMA_VERSION
    run_id: str
    scenario: str
    description: str = ""
    platform: str
    simulated: bool = False
    params: dict[str, Any] = Field(default_factory=dict, description="the resolved plan")
    git_commit: str | None = None
    image_tag: str = "local"
    started: datetime
    ended: datetime
    settings: SearchSettings
    result: SearchResult
    notes: list[str] = Field(default_factory=list)


def write_search(report: SearchReport, out_dir: Path) -> Path:
    """Write ``search.json`` into ``out_dir`` (created) and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / SEARCH_FILE
    path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def read_search(location: Path) -> SearchReport:
    """A search report from ``search.json`` or its folder; UsageError (exit 2) otherwise."""
    path = location / SEARCH_FILE if location.is_dir() else location
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return SearchReport.model_validate(document)
    except (OSError, ValueError, ValidationError) as error:
        raise UsageError(
            f"{path}: not a search report of schema {SEARCH_SCHEMA_VERSION} ({error}): give "
            "the --out folder of `aitbc-testnet search`"
        ) from None
