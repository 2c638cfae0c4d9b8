"""The campaign's inputs to the safety check and report: the load generator's probe log and
summary (written with loadgen's own writers, so a format change breaks this test) and the fault
timeline's records."""

from __future__ import annotations

from pathlib import Path

from loadgen.metrics import LoadgenTotals
from loadgen.probe import PendingProbe, ProbeLog, ProbeTracker
from loadgen.summary import LoadgenSummary, write_summary
from orchestrator.faults.records import load_fault_records, save_fault_records
from orchestrator.faults.timeline import FaultRecord
from orchestrator.measure.load_results import read_load_totals, read_probe_log
from orchestrator.measure.measurer import ObservedFault
from orchestrator.measure.safety import Recovery
from orchestrator.scenario.loader import load_scenario
from orchestrator.scenario.plan import resolve_plan
from orchestrator.stages.collect import fault_results, observed_records, planned_restarts


def test_probe_log_written_by_loadgen_is_read(tmp_path: Path) -> None:
    path = tmp_path / "probe.jsonl"
    tracker = ProbeTracker("r1")
    log = ProbeLog(path)
    for n, tx in enumerate((b"\x01" * 32, b"\x02" * 32, b"\x03" * 32)):
        tracker.submitted(PendingProbe(tx, "127.0.0.1:1", n, 1000.0 + n, 10.0 + n))
    for record in tracker.committed([b"\x01" * 32], height=5, wall=1001.0, mono=11.25):
        log.write(record)
    log.write(tracker.failed(PendingProbe(b"\x02" * 32, "t", 1, 1001.0, 11.0), "rejected", "x"))
    for record in tracker.expire(mono=100.0):
        log.write(record)
    log.close()

    read = read_probe_log(path)
    assert read is not None
    entries, latencies = read
    assert [(e.tx_id[0], e.outcome) for e in entries] == [
        (1, "committed"),
        (2, "rejected"),
        (3, "timeout"),
    ]
    assert [(p.submitted_at, p.latency_s) for p in latencies] == [(1000.0, 1.25)]
    assert read_probe_log(tmp_path / "missing.jsonl") is None


def test_summary_written_by_loadgen_is_read(tmp_path: Path) -> None:
    totals = LoadgenTotals(
        offered=1000, sent=990, acked=980, missed=10, resent=0, backoffs=0,
        rejected={"rpc_UNAVAILABLE": 10}, probes={"committed": 60}, e2e_latency_count=60,
        e2e_latency_sum_s=70.0,
    )  # fmt: skip
    path = tmp_path / "summary.json"
    write_summary(path, LoadgenSummary(run_id="r1", written_at=1.0, settings={}, totals=totals))
    loaded = read_load_totals(path)
    assert loaded is not None
    assert (loaded.offered, loaded.sent, loaded.acked, loaded.missed) == (1000, 990, 980, 10)
    assert loaded.rejected == {"rpc_UNAVAILABLE": 10} and loaded.probes == {"committed": 60}
    path.write_text("{}")
    assert read_load_totals(path) is None


def record(index: int, kind: str, ids: tuple[int, ...], cleared: float | None) -> FaultRecord:
    return FaultRecord(
        index=index, kind=kind, ids=ids, planned_start_s=25.0, planned_end_s=35.0,
        applied_at=100.0, cleared_at=cleared, applied_verified=True,
        cleared_verified=cleared is not None, error=None,
    )  # fmt: skip


def test_planned_restarts_count_kills_that_were_restarted() -> None:
    records = [
        record(0, "kill", (2,), 110.0),
        record(1, "churn", (1,), 120.0),
        record(1, "churn", (2,), 130.0),
        record(2, "kill", (3,), None),  # never restarted
        record(3, "restart", (3,), None),
        record(4, "partition", (0,), 140.0),
    ]
    assert planned_restarts(records) == {2: 2, 1: 1, 3: 1}


def test_fault_results_carry_recovery_and_slashing() -> None:
    plan = resolve_plan(load_scenario("crash-recovery"), platform="local", run_id="r1")
    records = [record(0, "kill", plan.faults[0].ids, 110.0)]
    (result,) = fault_results(plan, records, [Recovery(0, 6.5, None)], slashing_events=None)
    assert (result.kind, result.target, result.recovery_s, result.recovered) == (
        "kill",
        "count 1",
        6.5,
        True,
    )
    assert result.slashed is None
    byzantine = resolve_plan(load_scenario("byzantine"), platform="local", run_id="r1")
    (slashed,) = fault_results(
        byzantine, [record(0, "equivocate", (1,), 160.0)], [Recovery(0, 1.0, None)], 2
    )
    assert slashed.slashed is True


def test_fault_records_survive_the_run_directory(tmp_path: Path) -> None:
    records = [record(0, "kill", (2,), 110.0), record(1, "partition", (0, 1), None)]
    save_fault_records(records, tmp_path)
    assert load_fault_records(tmp_path) == records
    assert load_fault_records(tmp_path / "nowhere") == []


def test_observed_faults_become_records() -> None:
    (converted,) = observed_records(
        [ObservedFault(kind="partition", ids=(0, 1, 2, 3), start=120.0, end=130.0)], 100.0
    )
    assert (converted.planned_start_s, converted.planned_end_s) == (20.0, 30.0)
    assert converted.cleared_at == 130.0 and converted.cleared_verified
