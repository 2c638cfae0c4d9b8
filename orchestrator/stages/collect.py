"""The collect stage: measure, check and judge a run into a report.

``collect_report`` is the measurement of a window (Prometheus over the measured window, every
validator's chain for safety, the faults' recovery, the criteria); the campaign calls it after
its load, a capacity search after each load step. ``settle`` waits until every validator
caught up after the load, so late recoveries and commits are seen. ``collect_run`` is the
stand-alone ``collect`` of a live run driven stage by stage (``up``, ``load``, ``fault``), on
any platform that attaches to a live run.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.errors import PlatformError
from orchestrator.external.node_client import NodeClient
from orchestrator.external.prometheus import PromQuery
from orchestrator.faults.kinds import Mechanism, behaviour_of, fault_kind, may_be_slashed
from orchestrator.faults.records import load_fault_records
from orchestrator.faults.timeline import FaultRecord
from orchestrator.measure import promql as pq
from orchestrator.measure.byzantine import ByzantineWindow, measure_byzantine
from orchestrator.measure.criteria import judge, verdict
from orchestrator.measure.latency import ExactWindow, exact_window_latency
from orchestrator.measure.load_results import read_load_totals, read_probe_log
from orchestrator.measure.measurer import Measurer, ObservedFault, RunTimes, observed_faults
from orchestrator.measure.safety import (
    RECOVERY_LAG_BLOCKS,
    ChainReader,
    FaultWindow,
    Recovery,
    build_safety_report,
    check_recoveries,
    check_slashing,
    read_chains,
    sampling_lag_blocks,
)
from orchestrator.platforms.capabilities import (
    Artifacts,
    LiveRun,
    NodeAccess,
    PrometheusAccess,
    require,
)
from orchestrator.report.model import FaultResult, Report, Window
from orchestrator.report.provenance import git_commit
from orchestrator.report.render import ReportFiles, write_outputs
from orchestrator.scenario.plan import Plan
from orchestrator.stages.events import ProgressEvent, ProgressSink

__all__ = [
    "ARTIFACTS_DIR",
    "CollectInputs",
    "CollectResult",
    "collect_report",
    "collect_run",
    "fault_results",
    "node_readers",
    "observed_records",
    "planned_restarts",
    "report_window",
    "settle",
    "wait_scraped_since",
]

ARTIFACTS_DIR = "artifacts"
LOAD_DIR = "load"
"""The load generator's results inside the artifacts (summary, probe log, samples)."""
PROBE_LOG_NAME = "probe.jsonl"
SUMMARY_NAME = "summary.json"
SETTLE_POLL_S = 0.5


@dataclass(frozen=True)
class CollectResult:
    report: Report
    files: ReportFiles
    run_dir: Path | None
    kept: bool


@dataclass(frozen=True)
class CollectInputs:
    """Everything ``collect_report`` needs about a finished (or still running) window."""

    plan: Plan
    platform: str
    prometheus_url: str
    readers: Sequence[ChainReader]
    times: RunTimes
    records: Sequence[FaultRecord]
    started: datetime
    image_tag: str
    """The node image the validators ran."""
    notes: Sequence[str] = ()


def planned_restarts(records: Sequence[FaultRecord]) -> dict[int, int]:
    """Restarts the timeline made on purpose, per validator: a kill or churn outage cleared,
    a restart applied."""
    counts: Counter[int] = Counter()
    for record in records:
        mechanism = fault_kind(record.kind).mechanism
        restarted = (
            mechanism in (Mechanism.KILL, Mechanism.CHURN) and record.cleared_at is not None
        ) or (mechanism is Mechanism.RESTART and record.applied_at is not None)
        if restarted:
            counts.update(record.ids)
    return dict(counts)


def node_readers(platform: NodeAccess) -> list[NodeClient]:
    """A client per validator (the platform's own: it knows how to reach a pod and closes
    them itself)."""
    return [platform.client(endpoint.index) for endpoint in platform.endpoints()]


def fault_windows(records: Sequence[FaultRecord]) -> list[FaultWindow]:
    return [
        FaultWindow(
            index=r.index,
            kind=r.kind,
            ids=tuple(r.ids),
            cleared_at=r.cleared_at,
            behaviour=r.behaviour,
        )
        for r in records
    ]


def byzantine_windows(records: Sequence[FaultRecord]) -> list[ByzantineWindow]:
    """The byzantine faults among ``records`` (equivocate's behaviour filled in)."""
    return [
        ByzantineWindow(
            index=r.index,
            behaviour=behaviour_of(r.kind, r.behaviour),
            attackers=tuple(r.ids),
            planned_start_s=r.planned_start_s,
            planned_end_s=r.planned_end_s,
            cleared_at=r.cleared_at,
        )
        for r in records
        if fault_kind(r.kind).byzantine
    ]


def fault_results(
    plan: Plan,
    records: Sequence[FaultRecord],
    recoveries: Sequence[Recovery],
    slashing_events: int | None,
    offenders: Collection[int] | None = None,
) -> list[FaultResult]:
    """One result per record. ``offenders``: the validators the committed evidence slashed
    (None: not known; then a slashing counter above 0 counts as slashed)."""
    targets = {fault.index: fault.target for fault in plan.faults}
    results = []
    for record, recovery in zip(records, recoveries, strict=True):
        kind = fault_kind(record.kind)
        slashed = None
        if may_be_slashed(record.kind, record.behaviour):
            slashed = (
                all(i in offenders for i in record.ids)
                if offenders is not None
                else (slashing_events or 0) > 0
            )
        results.append(
            FaultResult(
                index=record.index,
                kind=record.kind,
                target=targets.get(record.index, ""),
                ids=list(record.ids),
                start=record.planned_start_s,
                end=record.planned_end_s,
                behaviour=behaviour_of(record.kind, record.behaviour),
                applied_at=record.applied_at,
                cleared_at=record.cleared_at,
                applied_verified=record.applied_verified,
                cleared_verified=None if kind.instantaneous else record.cleared_verified,
                recovery_s=recovery.recovery_s,
                recovered=None if kind.instantaneous else recovery.recovery_s is not None,
                slashed=slashed,
                error=record.error,
            )
        )
    return results


def collect_report(inputs: CollectInputs, artifacts: Path | None) -> Report:
    """Measure, check safety, judge: the report of a live window (the load generator's
    results, its exact latency samples included, are read from the copied ``artifacts``,
    when there are any)."""
    plan, times = inputs.plan, inputs.times
    probes = None
    totals = None
    exact: ExactWindow | None = None
    if artifacts is not None:
        load_dir = artifacts / LOAD_DIR
        probes = read_probe_log(load_dir / PROBE_LOG_NAME)
        totals = read_load_totals(load_dir / SUMMARY_NAME)
        exact = exact_window_latency(load_dir, times.measure_start, times.measure_end)
    chain = read_chains(inputs.readers)
    blocks = chain.blocks if chain.hashes else None
    restarts = planned_restarts(inputs.records)
    with PromQuery(inputs.prometheus_url) as prom:
        measurer = Measurer(prom, times, inputs.platform, inputs.plan.network.validators)
        measured = measurer.measure(
            blocks=blocks,
            load=totals,
            probes=None if probes is None else probes[1],
            planned_restarts=restarts,
            exact=exact,
            faults=bool(inputs.records),
        )
        byzantine = measure_byzantine(
            prom,
            byzantine_windows(inputs.records),
            load_start=times.load_start,
            run_end=times.run_end,
            validators=plan.network.validators,
            heights=measured.heights,
            blocks=blocks,
            final_heights=measured.measurements.final_heights,
            restarted=list(restarts),
        )
    windows = fault_windows(inputs.records)
    recoveries = check_recoveries(
        windows,
        measured.heights,
        times.run_end,
        lag_blocks=sampling_lag_blocks(measurer.step_s, plan.network.block_interval_ms),
    )
    slashing_events = measured.measurements.slashing_events
    offenders = (  # None: not read (no byzantine fault needs them, or no blocks)
        None
        if byzantine is None or blocks is None
        else {event.validator for event in byzantine.slashings}
    )
    safety = build_safety_report(
        chain,
        None if probes is None else probes[0],
        recoveries,
        check_slashing(windows, slashing_events, offenders),
    )
    faults = fault_results(plan, inputs.records, recoveries, slashing_events, offenders)
    criteria = judge(plan.criteria, measured.measurements, safety, faults, byzantine=byzantine)
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
        image_tag=inputs.image_tag,
        started=inputs.started,
        ended=datetime.now(UTC),
        load_started=times.load_start,
        measured_window=Window(
            start=times.measure_start - times.load_start, end=times.measure_end - times.load_start
        ),
        measurements=measured.measurements,
        faults=faults,
        byzantine=byzantine,
        safety=safety,
        criteria=criteria,
        passed=verdict(criteria),
        series=measured.series,
        notes=notes,
    )


def report_window(
    inputs: CollectInputs,
    platform: Artifacts,
    out_dir: Path,
    on_stage: Callable[[str, str], None],
) -> tuple[Report, ReportFiles]:
    """The report of a window into ``out_dir``: the platform's artifacts copied to
    ``<out>/artifacts``, measured and judged (``collect_report``), and its files written."""
    artifacts = out_dir / ARTIFACTS_DIR
    platform.collect_artifacts(artifacts)
    report = collect_report(inputs, artifacts)
    on_stage("report", f"writing report.json, report.md, report.html in {out_dir}")
    return report, write_outputs(report, out_dir)


def settle(
    readers: Sequence[ChainReader],
    timeout_s: float,
    on_heights: Callable[[dict[int, int]], None] | None = None,
) -> dict[int, int]:
    """Wait (up to ``timeout_s``) until every validator is within RECOVERY_LAG_BLOCKS of the
    highest and the chain advanced: faults cleared at the end of load get their recovery
    observed, and acknowledged probes their commit. Returns the last heights."""

    def heights() -> dict[int, int]:
        seen = {}
        for reader in readers:
            with contextlib.suppress(PlatformError):
                seen[reader.index] = reader.status().height
        return seen

    deadline = time.monotonic() + timeout_s
    start = heights()
    base = max(start.values(), default=0)
    now = start
    while time.monotonic() < deadline:
        now = heights()
        if (
            len(now) == len(readers)
            and max(now.values()) > base + 1
            and max(now.values()) - min(now.values()) <= RECOVERY_LAG_BLOCKS
        ):
            break
        time.sleep(SETTLE_POLL_S)
    if on_heights is not None:
        on_heights(now)
    return now


def wait_scraped_since(prom: PromQuery, since: float, validators: int, bound_s: float) -> None:
    """Wait (up to ``bound_s``) until Prometheus holds a sample of every validator scraped
    after ``since`` (unix seconds), so the measurement sees the chain as it settled."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        try:
            stamps = [s.value for s in prom.instant(pq.height_sample_times()) if s.value]
        except PlatformError:
            stamps = []
        if len(stamps) >= validators and min(stamps) > since:
            return
        time.sleep(SETTLE_POLL_S)


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
    platform: object, out_dir: Path, *, on_progress: ProgressSink | None = None
) -> CollectResult:
    """Measure and judge a live run that was driven stage by stage (``up``, ``load``,
    ``fault``): the measured window is the last load's (warm-up and cool-down trimmed), the
    faults are the campaign's records if a campaign ran (``--keep``), else the node faults that
    Prometheus saw. The run keeps running."""
    live = require(platform, LiveRun, "collect a live run")
    nodes = require(platform, NodeAccess, "collect a live run")
    prometheus = require(platform, PrometheusAccess, "collect a live run")
    artifacts_of = require(platform, Artifacts, "collect a live run")
    began = time.monotonic()
    record, plan = live.run_record(), live.plan()
    url = prometheus.prometheus_url()
    if url is None or record.stopped_at is not None:
        raise PlatformError(
            f"run {record.run_id} has no running Prometheus (stopped with `down`?): collect "
            "needs the live run; start a new one with `aitbc-testnet up` or `run`"
        )

    def emit(stage: str, message: str) -> None:
        if on_progress is not None:
            on_progress(ProgressEvent(stage, time.monotonic() - began, message=message))

    now = time.time()
    notes: list[str] = []
    warmup, cooldown = plan.load.warmup_s, plan.load.cooldown_s
    load_start = record.load_started_at
    if load_start is None:
        load_start, load_end = record.created, now
        warmup = cooldown = 0.0
        notes.append("no load ran in this run: measured from deploy to collect, nothing trimmed")
    else:
        duration = record.load_duration_s or plan.load.duration_s
        load_end = min(load_start + duration, now)
        if load_end < load_start + duration:
            notes.append(
                f"the load was still running at collect: measured up to "
                f"{load_end - load_start:.0f} s of {duration:g} s"
            )
        if warmup + cooldown >= load_end - load_start:
            warmup = cooldown = 0.0
            notes.append("the load was shorter than warm-up + cool-down: nothing trimmed")
    records = load_fault_records(live.run_dir)
    emit("collect", f"measuring run {record.run_id} from {url}")
    if not records:
        with PromQuery(url) as prom:
            seen = observed_faults(
                prom, record.created, now, pq.scrape_interval_s(live.name, plan.network.validators)
            )
        records = observed_records(seen, load_start)
        if records:
            notes.append(
                f"{len(records)} node fault(s) taken from aitbc_fault_active (kills are not "
                "visible there)"
            )
    report, files = report_window(
        CollectInputs(
            plan=plan,
            platform=live.name,
            prometheus_url=url,
            readers=node_readers(nodes),
            times=RunTimes(
                run_start=record.created,
                load_start=load_start,
                load_end=load_end,
                run_end=now,
                warmup_s=warmup,
                cooldown_s=cooldown,
            ),
            records=records,
            started=datetime.fromtimestamp(record.created, tz=UTC),
            image_tag=live.image_tag(),
            notes=notes,
        ),
        artifacts_of,
        out_dir,
        emit,
    )
    return CollectResult(report=report, files=files, run_dir=live.run_dir, kept=True)
