"""A campaign: up -> ready -> warm-up -> load + fault timeline -> cool-down -> settle ->
collect -> safety check -> criteria -> report -> down.

``run_campaign`` drives a live platform (local today; any ``Platform``), ``run_simulated``
turns a simulator run into the same report (labelled simulated), and ``collect_run`` measures
a run that ``up``/``load``/``fault`` drove from separate invocations. Library code: progress
goes to an ``on_progress`` callback, failures are typed errors; the CLI prints and exits.

Teardown: ``run_campaign`` always stops the fault timeline (clearing every fault) and the load,
and destroys the testnet unless ``keep`` - also when a stage fails or on Ctrl-C
(KeyboardInterrupt propagates after the teardown). When a stage fails after deploy, the run's
artifacts are copied to ``<out>/artifacts`` first so the failure can be diagnosed.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, cast

from pydantic import ValidationError

from orchestrator import prom_query as pq
from orchestrator.criteria import judge, verdict
from orchestrator.fault_engine import FaultRecord, FaultTimeline
from orchestrator.measure import Measurer, ObservedFault, ProbeLatency, RunTimes, observed_faults
from orchestrator.node_client import NodeClient
from orchestrator.plan import Plan
from orchestrator.platforms.base import Platform, PlatformError
from orchestrator.platforms.local import LocalPlatform
from orchestrator.platforms.sim import SimPlatform, SimRunResult, default_timeout_s
from orchestrator.report import ReportFiles, write_outputs
from orchestrator.report_model import (
    FaultResult,
    FinalityMs,
    LoadTotals,
    Measurements,
    Report,
    SafetyReport,
    SafetyViolation,
    TpsMeasurement,
    Window,
)
from orchestrator.safety import (
    RECOVERY_LAG_BLOCKS,
    ChainReader,
    FaultWindow,
    ProbeEntry,
    Recovery,
    build_safety_report,
    check_recoveries,
    check_slashing,
    read_chains,
)

ARTIFACTS_DIR = "artifacts"
SUMMARY_FILE = Path("load") / "summary.json"
PROBE_LOG_FILE = Path("load") / "probe.jsonl"
FAULTS_FILE = "faults.json"
PROGRESS_EVERY_S = 5.0
LOAD_EXIT_GRACE_S = 20.0
"""Seconds after the planned end of load that the load generator may take to exit."""
DEFAULT_READY_TIMEOUT_S = 120.0
DEFAULT_SETTLE_S = 30.0
RESTARTING_KINDS = ("kill", "churn")


@dataclass(frozen=True)
class ProgressEvent:
    """One progress line: the stage, seconds since the campaign started, and the chain's
    height and committed TPS when known."""

    stage: str
    elapsed_s: float
    height: int | None = None
    tps: float | None = None
    message: str = ""


ProgressSink = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class CampaignResult:
    report: Report
    files: ReportFiles
    run_dir: Path | None
    kept: bool


class _ReadyWithProgress(Protocol):
    def wait_ready(
        self, timeout_s: float, on_progress: Callable[[str, int, int], None] | None = None
    ) -> None: ...


# ----------------------------------------------------------------------------- small helpers


def git_commit(start: Path | None = None) -> str | None:
    """The commit of the source tree this orchestrator runs from (``+dirty`` when tracked
    files differ from it); None outside a git checkout."""
    where = start or Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(where), "diff", "--quiet", "HEAD", "--"],
            capture_output=True,
            timeout=10,
        ).returncode
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty == 1 else head or None


def read_load_totals(path: Path) -> LoadTotals | None:
    """The load generator's summary JSON (``loadgen.summary``), None when absent/unreadable."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        totals = document["totals"]
        return LoadTotals(
            offered=int(totals["offered"]),
            sent=int(totals["sent"]),
            acked=int(totals["acked"]),
            missed=int(totals["missed"]),
            rejected={str(k): int(v) for k, v in dict(totals.get("rejected", {})).items()},
            probes={str(k): int(v) for k, v in dict(totals.get("probes", {})).items()},
        )
    except (OSError, ValueError, KeyError, TypeError, ValidationError):
        return None


def read_probe_log(path: Path) -> tuple[list[ProbeEntry], list[ProbeLatency]] | None:
    """(entries for the exactly-once check, latencies of committed probes) from the probe log
    (JSON lines), None when there is no log."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    entries: list[ProbeEntry] = []
    latencies: list[ProbeLatency] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            tx_id = bytes.fromhex(record["tx_id"])
            outcome = str(record["outcome"])
        except (ValueError, KeyError, TypeError):
            continue
        entries.append(ProbeEntry(tx_id=tx_id, outcome=outcome))
        latency, submitted = record.get("latency_s"), record.get("submitted_at")
        if outcome == "committed" and latency is not None and submitted is not None:
            latencies.append(ProbeLatency(float(submitted), float(latency)))
    return entries, latencies


def planned_restarts(records: Sequence[FaultRecord]) -> dict[int, int]:
    """Restarts the timeline made on purpose, per validator."""
    counts: Counter[int] = Counter()
    for record in records:
        restarted = (record.kind in RESTARTING_KINDS and record.cleared_at is not None) or (
            record.kind == "restart" and record.applied_at is not None
        )
        if restarted:
            counts.update(record.ids)
    return dict(counts)


def _image_tag(platform: Platform) -> str | None:
    """The node image tag a cluster platform runs (its ``image_tag``, or its options'), None
    when it does not say."""
    for holder in (platform, getattr(platform, "options", None)):
        tag = getattr(holder, "image_tag", None)
        if isinstance(tag, str) and tag:
            return tag
    return None


def node_readers(platform: Platform) -> list[NodeClient]:
    """A client per validator: the platform's own (``client(index)``: it knows how to reach a
    pod, and closes them itself) or plain ones to its endpoints."""
    client_of = getattr(platform, "client", None)
    if callable(client_of):
        return [client_of(endpoint.index) for endpoint in platform.endpoints()]
    return [NodeClient(endpoint, None) for endpoint in platform.endpoints()]


def fault_windows(records: Sequence[FaultRecord]) -> list[FaultWindow]:
    return [
        FaultWindow(index=r.index, kind=r.kind, ids=tuple(r.ids), cleared_at=r.cleared_at)
        for r in records
    ]


def fault_results(
    plan: Plan,
    records: Sequence[FaultRecord],
    recoveries: Sequence[Recovery],
    slashing_events: int | None,
) -> list[FaultResult]:
    targets = {fault.index: fault.target for fault in plan.faults}
    results = []
    for record, recovery in zip(records, recoveries, strict=True):
        slashed = None
        if record.kind == "equivocate":
            slashed = (slashing_events or 0) > 0
        results.append(
            FaultResult(
                index=record.index,
                kind=record.kind,
                target=targets.get(record.index, ""),
                ids=list(record.ids),
                start=record.planned_start_s,
                end=record.planned_end_s,
                applied_at=record.applied_at,
                cleared_at=record.cleared_at,
                applied_verified=record.applied_verified,
                cleared_verified=record.cleared_verified
                if record.kind not in ("heal", "restart")
                else None,
                recovery_s=recovery.recovery_s,
                recovered=None
                if record.kind in ("heal", "restart")
                else recovery.recovery_s is not None,
                slashed=slashed,
                error=record.error,
            )
        )
    return results


def save_fault_records(records: Sequence[FaultRecord], run_dir: Path) -> None:
    """Keep the timeline's records in the run directory (for a later stand-alone collect)."""
    document = [record.__dict__ for record in records]
    with contextlib.suppress(OSError):
        (run_dir / FAULTS_FILE).write_text(json.dumps(document, indent=2) + "\n")


def load_fault_records(run_dir: Path) -> list[FaultRecord]:
    try:
        document = json.loads((run_dir / FAULTS_FILE).read_text())
        return [FaultRecord(**{**item, "ids": tuple(item["ids"])}) for item in document]
    except (OSError, ValueError, TypeError, KeyError):
        return []


# ----------------------------------------------------------------------------- collect


@dataclass(frozen=True)
class CollectInputs:
    """Everything ``collect_report`` needs about a finished (or still running) run."""

    plan: Plan
    platform: str
    prometheus_url: str
    readers: Sequence[ChainReader]
    times: RunTimes
    records: Sequence[FaultRecord]
    artifacts: Path | None
    started: datetime
    notes: Sequence[str] = ()
    image_tag: str | None = None
    """The node image the validators ran (None: ``local`` on the local platform)."""


def collect_report(inputs: CollectInputs) -> Report:
    """Measure, check safety, judge: the report of a live run."""
    plan, times = inputs.plan, inputs.times
    probes = None
    totals = None
    if inputs.artifacts is not None:
        probes = read_probe_log(inputs.artifacts / PROBE_LOG_FILE)
        totals = read_load_totals(inputs.artifacts / SUMMARY_FILE)
    chain = read_chains(inputs.readers)
    with pq.PromQuery(inputs.prometheus_url) as prom:
        measured = Measurer(prom, times, inputs.platform).measure(
            blocks=chain.blocks if chain.hashes else None,
            load=totals,
            probes=None if probes is None else probes[1],
            planned_restarts=planned_restarts(inputs.records),
        )
    windows = fault_windows(inputs.records)
    recoveries = check_recoveries(windows, measured.heights, times.run_end)
    slashing_events = measured.measurements.slashing_events
    safety = build_safety_report(
        chain,
        None if probes is None else probes[0],
        recoveries,
        check_slashing(windows, slashing_events),
    )
    faults = fault_results(plan, inputs.records, recoveries, slashing_events)
    criteria = judge(plan.criteria, measured.measurements, safety, faults)
    notes = list(inputs.notes)
    if not plan.load.probe_enabled:
        notes.append("the latency probe is disabled (load.probe.enabled: false)")
    return Report(
        run_id=plan.run_id,
        scenario=plan.name,
        description=plan.description,
        platform=inputs.platform,
        params=plan.to_dict(),
        git_commit=git_commit(),
        image_tag=inputs.image_tag
        or ("local" if inputs.platform == "local" else "the chart's default"),
        started=inputs.started,
        ended=datetime.now(UTC),
        load_started=times.load_start,
        measured_window=Window(
            start=times.measure_start - times.load_start, end=times.measure_end - times.load_start
        ),
        measurements=measured.measurements,
        faults=faults,
        safety=safety,
        criteria=criteria,
        passed=verdict(criteria),
        series=measured.series,
        notes=notes,
    )


# ----------------------------------------------------------------------------- the campaign


class Campaign:
    """One live campaign of ``plan`` on ``platform``, reports into ``out_dir``."""

    def __init__(
        self,
        plan: Plan,
        platform: Platform,
        out_dir: Path,
        *,
        run_dir: Path | None = None,
        keep: bool = False,
        on_progress: ProgressSink | None = None,
        ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
        settle_s: float | None = None,
    ) -> None:
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
        self.started_mono = time.monotonic()
        self._prom: pq.PromQuery | None = None
        self._readers: list[NodeClient] = []

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
        now = time.time()
        try:
            height = self._prom.scalar(f"max({pq.height_by_validator()})", now)
            tps = self._prom.scalar(pq.committed_tps(pq.rate_window_s(self.platform.name)), now)
        except PlatformError:
            return None, None
        return (None if height is None else round(height)), tps

    # -- stages ------------------------------------------------------------------------------

    def run(self) -> CampaignResult:
        started = datetime.now(UTC)
        run_start = time.time()
        deployed = False
        try:
            self._emit("up", f"deploying {self.plan.network.validators} validators")
            deployed = True
            self.platform.deploy(self.plan)
            self._wait_ready()
            url = self.platform.prometheus_url()
            if url is None:
                raise PlatformError(
                    f"platform {self.platform.name} runs no Prometheus, so the run cannot be "
                    "measured: use --platform local (or sim for a simulated report)"
                )
            self._prom = pq.PromQuery(url, timeout_s=5.0, retries=0)
            self._readers = node_readers(self.platform)
            load_start, load_end, records = self._load_and_faults()
            if self.run_dir is not None:
                save_fault_records(records, self.run_dir)
            self._settle()
            run_end = time.time() + 2 * pq.scrape_interval_s(self.platform.name)
            time.sleep(max(0.0, run_end - time.time()))
            self._emit("collect", "measuring from Prometheus, reading every validator's chain")
            artifacts = self.out_dir / ARTIFACTS_DIR
            self.platform.collect_artifacts(artifacts)
            report = collect_report(
                CollectInputs(
                    plan=self.plan,
                    platform=self.platform.name,
                    prometheus_url=url,
                    readers=self._readers,
                    times=RunTimes(
                        run_start=run_start,
                        load_start=load_start,
                        load_end=load_end,
                        run_end=run_end,
                        warmup_s=self.plan.load.warmup_s,
                        cooldown_s=self.plan.load.cooldown_s,
                    ),
                    records=records,
                    artifacts=artifacts,
                    started=started,
                    image_tag=_image_tag(self.platform),
                )
            )
            self._emit("report", f"writing report.json, report.md, report.html in {self.out_dir}")
            files = write_outputs(report, self.out_dir)
        except BaseException:
            if deployed and (self.run_dir is None or self.run_dir.exists()):
                with contextlib.suppress(Exception):
                    self.platform.collect_artifacts(self.out_dir / ARTIFACTS_DIR)
            raise
        finally:
            self._close()
            if deployed and not self.keep:
                self._emit("down", "stopping every process of the run")
                self.platform.destroy()
        if self.keep:
            self._emit(
                "keep", "the testnet keeps running (--keep): stop it with aitbc-testnet down"
            )
        return CampaignResult(report=report, files=files, run_dir=self.run_dir, kept=self.keep)

    def _close(self) -> None:
        if self._prom is not None:
            self._prom.close()

    def _wait_ready(self) -> None:
        self._emit("ready", f"waiting up to {self.ready_timeout_s:g} s for every validator")
        last = [0.0]

        def show(stage: str, count: int, height: int) -> None:
            if time.monotonic() - last[0] >= PROGRESS_EVERY_S:
                last[0] = time.monotonic()
                self._emit("ready", f"{stage}: {count} validators", height=height)

        if "on_progress" in inspect.signature(self.platform.wait_ready).parameters:
            cast(_ReadyWithProgress, self.platform).wait_ready(
                self.ready_timeout_s, on_progress=show
            )
        else:
            self.platform.wait_ready(self.ready_timeout_s)

    def _load_and_faults(self) -> tuple[float, float, list[FaultRecord]]:
        load = self.plan.load
        self._emit(
            "load",
            f"{load.shape} load, {load.tps:g} tx/s offered for {load.duration_s:g} s "
            f"(warm-up {load.warmup_s:g} s, cool-down {load.cooldown_s:g} s); "
            f"{len(self.plan.faults)} fault(s) scheduled",
        )
        self.platform.start_load(self.plan)
        load_start = time.time()
        timeline = FaultTimeline(
            self.platform,
            self.plan.faults,
            horizon_s=load.duration_s,
            on_event=lambda line: self._emit("fault", line),
        )
        try:
            timeline.start(load_start)
            end = load_start + load.duration_s
            while (now := time.time()) < end:
                time.sleep(min(PROGRESS_EVERY_S, end - now))
                since = time.time() - load_start
                stage = (
                    "warm-up"
                    if since < load.warmup_s
                    else "cool-down"
                    if since >= load.duration_s - load.cooldown_s
                    else "measure"
                )
                height, tps = self._live_numbers()
                self._emit(stage, f"t+{since:.0f}s of {load.duration_s:g}s", height, tps)
                self._check_load_alive(since)
        except BaseException:  # a failure or Ctrl-C: clear the faults, stop the load now
            timeline.stop()
            self.platform.stop_load()
            raise
        records = timeline.stop()
        self._wait_load_exit()
        return load_start, load_start + load.duration_s, records

    def _check_load_alive(self, since: float) -> None:
        running = getattr(self.platform, "load_running", None)
        measure_end = self.plan.load.duration_s - self.plan.load.cooldown_s
        if callable(running) and since < measure_end - 1 and not running():
            raise PlatformError(
                f"the load generator exited {since:.0f} s into a {self.plan.load.duration_s:g} s "
                f"load: see its log (logs/locust.log in {self.out_dir / ARTIFACTS_DIR})"
            )

    def _wait_load_exit(self) -> None:
        waiter = getattr(self.platform, "wait_load", None)
        if callable(waiter):
            with contextlib.suppress(PlatformError):
                waiter(LOAD_EXIT_GRACE_S)
        self.platform.stop_load()

    def _heights(self) -> dict[int, int]:
        heights = {}
        for reader in self._readers:
            with contextlib.suppress(PlatformError):
                heights[reader.index] = reader.status().height
        return heights

    def _settle(self) -> None:
        """Wait (up to ``settle_s``) until every validator is within RECOVERY_LAG_BLOCKS of the
        highest and the chain advanced: faults cleared at the end of load get their recovery
        observed, and acknowledged probes their commit."""
        self._emit("settle", f"waiting up to {self.settle_s:g} s for every validator to catch up")
        deadline = time.monotonic() + self.settle_s
        start = self._heights()
        base = max(start.values(), default=0)
        heights = start
        while time.monotonic() < deadline:
            heights = self._heights()
            if (
                len(heights) == len(self._readers)
                and max(heights.values()) > base + 1
                and max(heights.values()) - min(heights.values()) <= RECOVERY_LAG_BLOCKS
            ):
                break
            time.sleep(0.5)
        self._emit("settle", f"heights {heights}", height=max(heights.values(), default=None))


def run_campaign(
    plan: Plan,
    platform: Platform,
    out_dir: Path,
    *,
    run_dir: Path | None = None,
    keep: bool = False,
    on_progress: ProgressSink | None = None,
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
) -> CampaignResult:
    """Run the whole campaign of ``plan`` on a live ``platform`` (see the module docstring)."""
    return Campaign(
        plan,
        platform,
        out_dir,
        run_dir=run_dir,
        keep=keep,
        on_progress=on_progress,
        ready_timeout_s=ready_timeout_s,
    ).run()


# ----------------------------------------------------------------------------- simulated


def simulated_report(
    plan: Plan, result: SimRunResult, started: datetime, ended: datetime
) -> Report:
    """The report of a simulator run: finality, safety, slashing and partition recovery as the
    simulator measured them; what it does not model (committed TPS, client latency, process
    restarts) is missing, so criteria on it fail and say so."""
    raw: Mapping[str, Any] = result.raw
    finality = raw.get("finality_ms", {}) if isinstance(raw.get("finality_ms"), dict) else {}
    measurements = Measurements(
        window_s=result.simulated_seconds,
        tps=TpsMeasurement(cross_check="not counted: the simulator reports no transactions"),
        finality_ms=FinalityMs(
            p50=finality.get("p50"), p90=finality.get("p90"), p99=finality.get("p99")
        ),
        timeouts=raw.get("timeouts"),
        mode=result.mode,
        slashing_events=result.slashed_validators,
        final_heights={"max": result.committed_height},
        notes=[*result.notes, *(f"not simulated: {item}" for item in result.not_simulated)],
    )
    violations = []
    if result.safety_violations:
        violations.append(
            SafetyViolation(
                kind="divergence",
                message=f"the simulator found {result.safety_violations} safety violation(s)",
            )
        )
    if raw.get("state_roots_agree") is False:
        violations.append(
            SafetyViolation(kind="divergence", message="the validators' state roots differ")
        )
    partitions = list(raw.get("partitions", []) or [])
    faults: list[FaultResult] = []
    for fault in plan.faults:
        recovery = None
        if fault.kind == "partition":
            match = next(
                (p for p in partitions if abs(float(p.get("start_s", -1)) - fault.start_s) < 1e-6),
                None,
            )
            if match is not None and match.get("resumed_after_heal_s") is not None:
                recovery = float(match["resumed_after_heal_s"])
        slashed = None
        if fault.kind == "equivocate":
            slashed = result.slashed_validators > 0
            if not slashed:
                violations.append(
                    SafetyViolation(
                        kind="not_slashed",
                        message=f"fault {fault.index}: the equivocators were not slashed",
                    )
                )
        faults.append(
            FaultResult(
                index=fault.index,
                kind=fault.kind,
                target=fault.target,
                ids=list(fault.ids),
                start=fault.start_s,
                end=fault.end_s,
                recovery_s=recovery,
                recovered=None if fault.kind in ("heal", "restart") else recovery is not None,
                slashed=slashed,
            )
        )
    safety = SafetyReport(
        ok=not violations,
        violations=violations,
        validators=list(range(plan.network.validators)),
        notes=["checked inside the simulator: every honest validator's committed blocks"],
    )
    criteria = judge(
        plan.criteria,
        measurements,
        safety,
        faults,
        platform_note="the simulator does not measure it (run on --platform local)",
    )
    return Report(
        run_id=plan.run_id,
        scenario=plan.name,
        description=plan.description,
        platform="sim",
        simulated=True,
        params=plan.to_dict(),
        git_commit=git_commit(),
        image_tag="sim",
        started=started,
        ended=ended,
        load_started=None,
        measured_window=None,
        measurements=measurements,
        faults=faults,
        safety=safety,
        criteria=criteria,
        passed=verdict(criteria),
        notes=[
            "SIMULATED: numbers come from the deterministic discrete-event simulator "
            f"({result.simulated_seconds:g} simulated s, crypto {result.crypto}), not from a "
            "running testnet; times are simulated seconds"
        ],
    )


def run_simulated(
    plan: Plan,
    platform: SimPlatform,
    out_dir: Path,
    *,
    on_progress: ProgressSink | None = None,
    timeout_s: float | None = None,
) -> CampaignResult:
    """Run ``plan`` in the simulator and write its (simulated) report into ``out_dir``."""
    began = time.monotonic()
    started = datetime.now(UTC)
    budget = timeout_s if timeout_s is not None else default_timeout_s(plan)
    if on_progress is not None:
        on_progress(
            ProgressEvent(
                "simulate",
                0.0,
                message=f"{plan.network.validators} validators, {plan.sim.blocks} blocks, "
                f"crypto {plan.sim.crypto} (up to {budget:g} s)",
            )
        )
    result = platform.run(plan, budget)
    platform.collect_artifacts(out_dir / ARTIFACTS_DIR)
    report = simulated_report(plan, result, started, datetime.now(UTC))
    if on_progress is not None:
        on_progress(
            ProgressEvent(
                "report",
                time.monotonic() - began,
                height=result.committed_height,
                message=f"writing the simulated report in {out_dir}",
            )
        )
    files = write_outputs(report, out_dir)
    return CampaignResult(report=report, files=files, run_dir=platform.run_dir, kept=False)


# ----------------------------------------------------------------------------- stand-alone


def observed_records(faults: Sequence[ObservedFault], load_start: float) -> list[FaultRecord]:
    """Fault records for node faults seen in Prometheus (a run driven by `fault` commands)."""
    return [
        FaultRecord(
            index=position,
            kind=fault.kind,
            ids=fault.ids,
            planned_start_s=round(fault.start - load_start, 3),
            planned_end_s=None if fault.end is None else round(fault.end - load_start, 3),
            applied_at=fault.start,
            cleared_at=fault.end,
            applied_verified=True,
            cleared_verified=fault.end is not None,
            error=None,
        )
        for position, fault in enumerate(faults)
    ]


def collect_run(
    platform: LocalPlatform, out_dir: Path, *, on_progress: ProgressSink | None = None
) -> CampaignResult:
    """Measure and judge a live local run that was driven stage by stage (``up``, ``load``,
    ``fault``): the measured window is the last load's (warm-up and cool-down trimmed), the
    faults are the campaign's records if a campaign ran (``--keep``), else the node faults that
    Prometheus saw. The run keeps running."""
    began = time.monotonic()
    state, plan = platform.state, platform.plan
    url = platform.prometheus_url()
    if url is None or state.prometheus.process is None:
        raise PlatformError(
            f"run {state.run_id} has no running Prometheus (stopped with `down`?): collect "
            "needs the live run; start a new one with `aitbc-testnet up` or `run`"
        )

    def emit(stage: str, message: str) -> None:
        if on_progress is not None:
            on_progress(ProgressEvent(stage, time.monotonic() - began, message=message))

    now = time.time()
    notes: list[str] = []
    warmup, cooldown = plan.load.warmup_s, plan.load.cooldown_s
    load_start = state.load.started_at
    if load_start is None:
        load_start, load_end = state.created, now
        warmup = cooldown = 0.0
        notes.append("no load ran in this run: measured from deploy to collect, nothing trimmed")
    else:
        duration = state.load.duration_s or plan.load.duration_s
        load_end = min(load_start + duration, now)
        if load_end < load_start + duration:
            notes.append(
                f"the load was still running at collect: measured up to "
                f"{load_end - load_start:.0f} s of {duration:g} s"
            )
        if warmup + cooldown >= load_end - load_start:
            warmup = cooldown = 0.0
            notes.append("the load was shorter than warm-up + cool-down: nothing trimmed")
    records = load_fault_records(platform.run_dir)
    emit("collect", f"measuring run {state.run_id} from {url}")
    if not records:
        with pq.PromQuery(url) as prom:
            seen = observed_faults(prom, state.created, now, pq.scrape_interval_s("local"))
        records = observed_records(seen, load_start)
        if records:
            notes.append(
                f"{len(records)} node fault(s) taken from aitbc_fault_active (kills are not "
                "visible there)"
            )
    artifacts = out_dir / ARTIFACTS_DIR
    platform.collect_artifacts(artifacts)
    report = collect_report(
        CollectInputs(
            plan=plan,
            platform="local",
            prometheus_url=url,
            readers=node_readers(platform),
            times=RunTimes(
                run_start=state.created,
                load_start=load_start,
                load_end=load_end,
                run_end=now,
                warmup_s=warmup,
                cooldown_s=cooldown,
            ),
            records=records,
            artifacts=artifacts,
            started=datetime.fromtimestamp(state.created, tz=UTC),
            notes=notes,
        )
    )
    emit("report", f"writing report.json, report.md, report.html in {out_dir}")
    files = write_outputs(report, out_dir)
    return CampaignResult(report=report, files=files, run_dir=platform.run_dir, kept=True)
