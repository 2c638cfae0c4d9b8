"""``report.json``: the versioned record of one campaign (pydantic, it crosses a boundary: CI
jobs, dashboards and later ``aitbc-testnet report --baseline`` runs read it).

Times: ``started``/``ended`` are ISO 8601 UTC; fault ``start``/``end`` and every time series
point are seconds since load start (``load_started`` is that moment as unix seconds), so plots,
fault windows and the measured window share one axis. Missing values are ``null`` and the
criterion that needed them fails (``criteria.py``). Bump ``SCHEMA_VERSION`` on any change that
removes or renames a field (readers refuse another version); an additive change (a new optional
field) bumps ``SCHEMA_MINOR`` (readers of this version read every minor; a report written
before ``schema_minor`` existed reads as minor 0).

Minors: 1 adds ``byzantine`` (what each byzantine fault's behaviour did: actions, refusals,
slashing, commits), ``faults[].behaviour`` and ``schema_minor``; 2 adds ``measurements.latency``
(exact end-to-end quantiles beside the node histograms) and ``e2e_latency_ms.p90``/``max``;
3 adds ``measurements.resources`` (validators' CPU and memory).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import UsageError

SCHEMA_VERSION = 1
SCHEMA_MINOR = 3
REPORT_FILE = "report.json"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TpsMeasurement(_Model):
    """Throughput over the measured window (transactions per second)."""

    mean: float | None = Field(
        default=None,
        description="committed TPS from Prometheus: max over validators of the rate of "
        "aitbc_txs_committed_total over the whole measured window",
    )
    offered: float | None = Field(default=None, description="what the load generator offered")
    acked: float | None = Field(default=None, description="what validators acknowledged")
    achieved_ratio: float | None = Field(default=None, description="mean / offered")
    from_blocks: float | None = Field(
        default=None, description="transactions counted in the committed blocks of the window"
    )
    blocks_agree: bool | None = Field(
        default=None, description="mean and from_blocks within 2 % of each other"
    )
    cross_check: str = Field(default="", description="how from_blocks was counted, or why not")


class FinalityMs(_Model):
    """Node-side finality (arrival at a validator to commit), from aitbc_tx_finality_seconds."""

    p50: float | None = None
    p90: float | None = None
    p99: float | None = None


class E2eLatencyMs(_Model):
    """Client-observed submit-to-commit latency: exact over every acknowledged transaction
    submitted in the measured window when the load generator's samples exist (``source``
    says), else the probes' (their Prometheus histogram, or their log)."""

    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None
    samples: int | None = None
    source: str = ""


class ExactLatencyMs(_Model):
    """Exact submit-to-commit latency of every acknowledged transaction submitted in the
    measured window, from the load generator's samples files (``loadgen.quantiles``)."""

    count: int
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None
    mean: float | None = None
    files: int = Field(default=0, description="samples files read (one per load process)")
    uncommitted: int | None = Field(
        default=None,
        description="acknowledged transactions never seen committed (whole load, all processes)",
    )


class NodeQuantileMs(_Model):
    """A quantile of the validators' finality histogram (aitbc_tx_finality_seconds, every
    validator's observations in the window pooled): Prometheus's interpolated estimate and
    the bucket that holds the rank (``bucket_upper`` None: past the last bucket)."""

    estimate: float | None
    bucket_lower: float
    bucket_upper: float | None


class QuantileComparison(_Model):
    """One quantile, exact end to end beside the node histogram, and why they differ."""

    q: float
    exact_ms: float | None = None
    node: NodeQuantileMs | None = None
    within_bucket: bool | None = Field(
        default=None, description="the exact value lies in the node histogram's bucket"
    )
    explanation: str = ""


class LatencyComparison(_Model):
    """Exact end-to-end latency and the node histograms side by side (see criteria.py for
    which one each criterion judges)."""

    exact: ExactLatencyMs | None = None
    exact_unavailable: str | None = Field(
        default=None, description="why there are no exact samples for the window"
    )
    node_source: str = ""
    quantiles: list[QuantileComparison] = Field(default_factory=list)


class LoadTotals(_Model):
    """The load generator's own counters for the whole load (its summary JSON)."""

    offered: int
    sent: int
    acked: int
    missed: int
    rejected: dict[str, int] = Field(default_factory=dict)
    probes: dict[str, int] = Field(default_factory=dict)


class ResourceUsage(_Model):
    """What the validator processes used over the measured window, from the node's process
    metrics (``process_cpu_seconds_total``, ``process_resident_memory_bytes``; every validator
    exports them)."""

    validators: int = Field(description="validators with process metrics in the window")
    cpu_cores_mean: float | None = Field(
        default=None, description="CPU cores per validator (rate of CPU seconds), mean"
    )
    cpu_cores_max: float | None = Field(default=None, description="the busiest validator")
    cpu_cores_total: float | None = Field(default=None, description="all validators together")
    cpu_ms_per_block: float | None = Field(
        default=None,
        description="CPU milliseconds one validator spends per committed block (mean "
        "validator's CPU seconds in the window / blocks committed in the window)",
    )
    rss_mib_mean: float | None = Field(
        default=None, description="resident memory per validator (MiB, average over the window)"
    )
    rss_mib_max: float | None = Field(
        default=None, description="the largest resident memory any validator reached (MiB)"
    )


class Measurements(_Model):
    window_s: float | None = Field(default=None, description="length of the measured window")
    tps: TpsMeasurement = TpsMeasurement()
    finality_ms: FinalityMs = FinalityMs()
    e2e_latency_ms: E2eLatencyMs = E2eLatencyMs()
    latency: LatencyComparison | None = Field(
        default=None, description="exact end-to-end quantiles beside the node histograms"
    )
    block_interval_ms: float | None = None
    timeouts: int | None = Field(default=None, description="rounds timed out (max validator)")
    mode: str | None = Field(default=None, description="consensus mode at the end of the window")
    slashing_events: int | None = Field(default=None, description="whole run, max validator")
    restarts: int | None = Field(default=None, description="unplanned validator restarts/deaths")
    final_heights: dict[str, int] = Field(default_factory=dict)
    load: LoadTotals | None = None
    resources: ResourceUsage | None = Field(
        default=None, description="validator CPU and memory (None: no process metrics)"
    )
    notes: list[str] = Field(default_factory=list)


class FaultResult(_Model):
    """One fault of the timeline: the plan (``start``/``end``, seconds since load start) and
    what happened (``applied_at``/``cleared_at`` unix seconds, recovery)."""

    index: int
    kind: str
    target: str
    ids: list[int]
    start: float
    end: float | None
    behaviour: str | None = Field(default=None, description="byzantine kinds: the behaviour")
    applied_at: float | None = None
    cleared_at: float | None = None
    applied_verified: bool | None = None
    cleared_verified: bool | None = None
    recovery_s: float | None = Field(
        default=None,
        description="seconds from clear/restart until the affected validators are within 2 "
        "blocks of the others and the chain advances",
    )
    recovered: bool | None = None
    slashed: bool | None = Field(
        default=None,
        description="byzantine behaviours that deserve it: every target was slashed (from the "
        "committed evidence; the slashing counter when the chain could not be read)",
    )
    error: str | None = None


class SafetyViolation(_Model):
    """``kind``: divergence, batch_duplicate, probe_missing, liveness, not_slashed,
    unchecked."""

    kind: str
    message: str
    height: int | None = None
    hashes: dict[str, str] = Field(default_factory=dict)


class SafetyReport(_Model):
    ok: bool
    violations: list[SafetyViolation] = Field(default_factory=list)
    checked_height: int | None = Field(
        default=None, description="heights 1..checked_height compared on every validator"
    )
    validators: list[int] = Field(default_factory=list)
    probes_checked: int | None = None
    notes: list[str] = Field(default_factory=list)


class CriterionResult(_Model):
    name: str
    threshold: float | bool | None
    value: float | bool | None
    passed: bool
    unit: str = ""
    explanation: str = ""


class SlashingEvent(_Model):
    """One slashing: ``validator`` punished for equivocating in ``epoch`` (the ledger slashes
    an offender once per epoch, however often its evidence is included)."""

    validator: int
    epoch: int
    height: int | None = Field(
        default=None, description="the first committed block carrying the evidence"
    )
    included: int | None = Field(
        default=None, description="committed blocks carrying evidence of it (replays included)"
    )


class ByzantineFault(_Model):
    """What one byzantine fault's behaviour did, over its window (``start``/``end``: seconds
    since load start, as the fault's)."""

    index: int = Field(description="the fault's index in the timeline")
    behaviour: str
    attackers: list[int]
    honest: list[int] = Field(
        default_factory=list, description="the validators no byzantine fault targeted meanwhile"
    )
    start: float
    end: float | None
    actions: int | None = Field(
        default=None,
        description="what the attackers sent: increase of aitbc_byzantine_actions_total"
        "{behaviour} on them over the window",
    )
    rejected: dict[str, int] = Field(
        default_factory=dict,
        description="what the honest validators refused: increase of "
        "aitbc_byzantine_rejected_total{reason} over the window, summed over them, by reason",
    )
    slashing: str = Field(
        default="none",
        description="required (the behaviour equivocates), possible (it may) or none",
    )
    slashed: list[SlashingEvent] = Field(
        default_factory=list,
        description="behaviours that deserve it (slashing required or possible): the slashings "
        "of the attackers",
    )
    longest_stall_s: float | None = Field(
        default=None,
        description="the longest time without a commit by the honest validators, from the "
        "fault's start to their first commit after its end (None: they did not commit after it)",
    )
    notes: list[str] = Field(default_factory=list)


class ByzantineReport(_Model):
    """Proof that the byzantine faults happened, and what the honest validators did about it."""

    faults: list[ByzantineFault] = Field(default_factory=list)
    slashings: list[SlashingEvent] = Field(
        default_factory=list, description="every slashing in the committed evidence"
    )
    slashings_counted: dict[str, int] = Field(
        default_factory=dict,
        description="validator -> its aitbc_slashing_events_total at the end of the run",
    )
    slashings_expected: dict[str, int] = Field(
        default_factory=dict,
        description="validator -> the (offender, epoch) pairs in the evidence of the blocks it "
        "had committed then: equal to the count when each was slashed exactly once",
    )
    source: str = ""
    notes: list[str] = Field(default_factory=list)


class Series(_Model):
    label: str
    points: list[tuple[float, float]] = Field(default_factory=list)


class TimeSeries(_Model):
    """What the plots draw; x = seconds since load start."""

    tps: list[Series] = Field(default_factory=list)
    finality_ms: list[Series] = Field(default_factory=list)
    height: list[Series] = Field(default_factory=list)


class Window(_Model):
    start: float
    end: float


class Report(_Model):
    schema_version: int = SCHEMA_VERSION
    schema_minor: int = SCHEMA_MINOR
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
    load_started: float | None = Field(default=None, description="unix seconds; x = 0")
    measured_window: Window | None = None
    measurements: Measurements = Measurements()
    faults: list[FaultResult] = Field(default_factory=list)
    byzantine: ByzantineReport | None = Field(
        default=None, description="None: the run had no byzantine fault"
    )
    safety: SafetyReport
    criteria: list[CriterionResult] = Field(default_factory=list)
    passed: bool
    series: TimeSeries = TimeSeries()
    notes: list[str] = Field(default_factory=list)

    def failed_criteria(self) -> list[CriterionResult]:
        return [criterion for criterion in self.criteria if not criterion.passed]


def write_report(report: Report, out_dir: Path) -> Path:
    """Write ``report.json`` into ``out_dir`` (created) and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_FILE
    path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def find_report(location: Path) -> Path:
    """The ``report.json`` of ``location``: the file itself, an output folder holding it, or a
    run directory whose ``report/`` holds it. UsageError (exit 2) when there is none."""
    candidates = [location, location / REPORT_FILE, location / "report" / REPORT_FILE]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise UsageError(
        f"no {REPORT_FILE} at {location} (looked at {', '.join(str(c) for c in candidates[1:])}): "
        "give the --out folder of `aitbc-testnet run`/`collect`, or run `aitbc-testnet collect` "
        "for that run first"
    )


def read_report(location: Path) -> Report:
    """Load a report from a file or folder (see ``find_report``). UsageError (exit 2) when the
    file is not a report of this schema."""
    path = find_report(location)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read a JSON report ({exc})") from None
    version = document.get("schema_version") if isinstance(document, dict) else None
    if version != SCHEMA_VERSION:
        raise UsageError(
            f"{path}: schema_version {version!r} is not {SCHEMA_VERSION}: re-collect the run "
            "with this version of aitbc-testnet"
        )
    minor = document.setdefault("schema_minor", 0)
    if not isinstance(minor, int) or minor > SCHEMA_MINOR:
        raise UsageError(
            f"{path}: schema {version}.{minor} is newer than the {SCHEMA_VERSION}.{SCHEMA_MINOR} "
            "this aitbc-testnet reads: read it with the version that wrote it (or newer)"
        )
    try:
        return Report.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise UsageError(f"{path}: not a valid report ({problems})") from None
