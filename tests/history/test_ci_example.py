"""docs/ci/nightly.yml, the GitHub Actions example of a nightly benchmark: it runs a scenario,
adds the report to the history and checks it, and carries the history from run to run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / "docs" / "ci" / "nightly.yml"


def steps() -> list[dict[str, Any]]:
    document = yaml.safe_load(WORKFLOW.read_text())
    (job,) = document["jobs"].values()
    return list(job["steps"])


def position(predicate: str) -> int:
    for index, step in enumerate(steps()):
        if predicate in str(step.get("run", "")) or predicate in str(step.get("uses", "")):
            return index
    raise AssertionError(f"no step with {predicate!r} in {WORKFLOW}")


def test_the_workflow_runs_nightly_and_by_hand() -> None:
    document = yaml.safe_load(WORKFLOW.read_text())
    triggers = document[True]  # YAML 1.1 reads the key `on` as true
    (schedule,) = triggers["schedule"]
    assert len(schedule["cron"].split()) == 5
    assert "workflow_dispatch" in triggers
    assert document["concurrency"]["cancel-in-progress"] is False


def test_the_history_is_restored_added_to_checked_and_saved_in_order() -> None:
    order = [
        position("make install"),
        position("actions/cache/restore"),
        position('aitbc-testnet run "$SCENARIO"'),
        position("aitbc-testnet history add out/nightly"),
        position("aitbc-testnet history check"),
        position("actions/cache/save"),
    ]
    assert order == sorted(order)
    every = steps()
    add = every[position("aitbc-testnet history add")]
    save = every[position("actions/cache/save")]
    assert add["if"].startswith("always()") and save["if"].startswith("always()")
    restore = every[position("actions/cache/restore")]
    assert restore["with"]["restore-keys"] == "aitbc-history-"
    assert save["with"]["key"] == restore["with"]["key"]
