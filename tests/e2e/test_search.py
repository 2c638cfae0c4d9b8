"""`aitbc-testnet search` end to end on the local platform: real validators, a real
Prometheus, a real Locust for every trial, short steps. What the search does is checked (one
deploy, every trial measured from exact samples with the load generator's self check, the
mempools followed, the report and its curves written, everything stopped), not how fast this
machine is: the service level is set out of a busy machine's reach (speed figures come from
running the search by hand, docs/architecture.md)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from orchestrator.search.model import Verdict, read_search

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

needs_prometheus = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus not on PATH: `make install` (Debian package prometheus)",
)
SEARCH_TIMEOUT_S = 900.0
"""A bound on the search (about a minute and a half on an idle machine)."""
OUT_OF_REACH = (
    "--slo-p99-ms", "600000", "--min-achieved", "0.01", "--mempool-tolerance", "1000",
)  # fmt: skip


@needs_prometheus
def test_a_short_local_search_measures_every_trial_on_one_testnet(
    cli: Any, run_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = cli.run(
        "search", "devnet-smoke", "--run-dir", str(run_root), "--out", str(out),
        "--start-tps", "100", "--trials", "2", "--max-points", "2",
        "--step", "8s", "--warmup", "2s", "--cooldown", "1s", *OUT_OF_REACH,
        timeout_s=SEARCH_TIMEOUT_S,
    )  # fmt: skip
    assert result.code == 0, result.output
    assert "devnet-smoke: passed up to 200 tx/s; higher rates not tried" in result.stdout
    assert result.stderr.count("] up: deploying 4 validators") == 1  # deployed once
    report = read_search(out)
    assert [p.rate for p in report.result.points] == [100, 200]
    for point in report.result.points:
        assert point.verdict is Verdict.PASS
        assert len(point.counted) == 2  # saturated trials (if any) ran again
        for trial in point.counted:
            assert trial.latency_source.startswith("exact"), trial.latency_source
            assert trial.latency_samples and trial.p99_ms and trial.achieved_tps
            assert trial.mempool_growth is not None and trial.offered_tps
            assert "load generator kept up" in trial.generator_verdict
    assert report.result.knee is not None and report.result.knee.p99_ms is not None
    assert report.result.knee.p99_ms.low is not None  # two trials: an interval
    assert any("1 fault(s) are not run" in note for note in report.notes)
    assert (out / "search.html").read_text().count("<svg ") == 2
    assert (out / "artifacts" / "load").is_dir()
    alive = cli.alive_processes(run_root)
    assert not alive, f"`search` left processes running: {alive}"
