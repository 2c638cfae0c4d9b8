"""The SQLite history store: keys, headline metrics, idempotent adds, clear errors."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from history_support import PARAMS, make_report

from orchestrator.history.errors import HistoryStoreError
from orchestrator.history.metrics import HEADLINE_METRICS, headline_values
from orchestrator.history.store import HistoryStore, key_params, params_digest, series_key
from orchestrator.report.model import FaultResult, SafetyViolation


def test_a_report_is_kept_with_its_key_commit_and_headline_metrics(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h" / "history.sqlite") as store:
        result = store.add(make_report(1), tmp_path / "out" / "report.json")
        assert result.added
        record = result.record
        assert record.run_id == "devnet-smoke-001"
        assert record.key == series_key(make_report(1))
        assert record.commit_label == "c00100000000"
        assert record.passed and record.report_path == str(tmp_path / "out" / "report.json")
        assert record.metrics["tps.mean"] == 300.0
        assert record.metrics["finality_ms.p99"] == 1200.0
        assert record.metrics["safety.violations"] == 0.0
        assert "recovery_s.max" not in record.metrics  # no fault: not recorded
    reopened = HistoryStore(tmp_path / "h" / "history.sqlite")
    assert [run.run_id for run in reopened.runs()] == ["devnet-smoke-001"]
    reopened.close()


def test_adding_the_same_report_twice_keeps_one_run(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "history.sqlite") as store:
        first = store.add(make_report(1))
        again = store.add(make_report(1))
        assert not again.added and again.record.id == first.record.id
        assert len(store.runs()) == 1


def test_run_id_criteria_and_times_do_not_split_a_series(tmp_path: Path) -> None:
    other_criteria = {**PARAMS, "run_id": "x", "criteria": {"min_tps": 999}}
    more_load = {**PARAMS, "load": {"tps": 600, "duration_s": 60}}
    with HistoryStore(tmp_path / "history.sqlite") as store:
        for number in range(3):
            store.add(make_report(number))
        store.add(make_report(3, params=other_criteria))
        store.add(make_report(4, params=more_load))
        store.add(make_report(5, platform="sim"))
        summaries = {(s.key.platform, s.key.params_hash): s for s in store.series()}
    _, base = params_digest(PARAMS)
    _, heavier = params_digest(more_load)
    assert summaries[("local", base)].runs == 4
    assert summaries[("local", heavier)].runs == 1
    assert summaries[("sim", base)].runs == 1
    assert '"load":{"duration_s":60,"tps":300}' in summaries[("local", base)].params_json
    assert key_params({"run_id": "r", "x": 1}) == {"run_id": "r", "x": 1}  # nothing to pick


def test_runs_of_a_key_come_oldest_first(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "history.sqlite") as store:
        for number in (3, 1, 2):
            store.add(make_report(number))
        key = series_key(make_report(1))
        assert [run.run_id[-3:] for run in store.runs(key)] == ["001", "002", "003"]


def test_every_headline_metric_is_read_from_a_full_report() -> None:
    report = make_report(1).model_copy(
        update={
            "faults": [
                FaultResult(
                    index=0, kind="kill", target="1", ids=[1], start=5, end=9, recovery_s=4
                ),
                FaultResult(index=1, kind="pause", target="2", ids=[2], start=9, end=12),
            ],
        }
    )
    report = report.model_copy(
        update={
            "measurements": report.measurements.model_copy(
                update={
                    "block_interval_ms": 510.0,
                    "tps": report.measurements.tps.model_copy(update={"achieved_ratio": 0.98}),
                }
            ),
            "safety": report.safety.model_copy(
                update={"violations": [SafetyViolation(kind="divergence", message="x")]}
            ),
        }
    )
    values = headline_values(report)
    assert set(values) == {metric.name for metric in HEADLINE_METRICS}
    assert values["recovery_s.max"] == 4.0
    assert values["safety.violations"] == 1.0
    assert values["tps.achieved_ratio"] == 0.98


def test_a_store_that_cannot_be_opened_says_where(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(
        HistoryStoreError, match=re.escape(f"history {blocker / 'h.sqlite'}: cannot open")
    ):
        HistoryStore(blocker / "h.sqlite")
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(HistoryStoreError, match="give a writable --history path") as caught:
        HistoryStore(garbage)
    assert caught.value.exit_code == 3


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    HistoryStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(HistoryStoreError, match="schema version 99 is not 1"):
        HistoryStore(path)
