"""Helpers shared by the orchestrator tests (a uniquely named module: tests folders are not
packages)."""

from __future__ import annotations

import importlib
import importlib.util
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.platforms.local.state import (
    LoadRecord,
    PrometheusRecord,
    RunState,
    ValidatorRecord,
)
from orchestrator.platforms.run_dirs import STATE_FILE
from orchestrator.scenario.loader import load_scenario
from orchestrator.scenario.plan import resolve_plan


def simulator_missing() -> str | None:
    """Why the node's simulator cannot run here, or None when it can."""
    try:
        importlib.import_module("aitbc_node.sim")
    except ImportError as exc:
        return f"aitbc_node.sim cannot be imported ({exc}): the node's simulator has not landed"
    if importlib.util.find_spec("aitbc_node.cli") is None:
        return "aitbc_node.cli (the `aitbc-node sim` entry point) does not exist yet"
    return None


needs_simulator = pytest.mark.skipif(
    simulator_missing() is not None, reason=str(simulator_missing())
)


def write_run_state(directory: Path, validators: int = 4, **changes: Any) -> RunState:
    """A local run's state.json as deploy writes it (devnet-smoke, ``validators`` validators,
    nothing running, Prometheus on a port nothing answers), with ``changes`` applied."""
    plan = resolve_plan(load_scenario("devnet-smoke"), platform="local", run_id=directory.name)
    state = RunState(
        run_id=directory.name,
        created=time.time(),
        host="127.0.0.1",
        net_dir=str(directory / "net"),
        genesis=str(directory / "net" / "genesis.json"),
        chain_id="aitbc-testnet-test",
        admin_token_file=str(directory / "net" / "admin-token"),
        validators=[
            ValidatorRecord(
                index=i,
                grpc=f"127.0.0.1:{20000 + i}",
                ops=f"127.0.0.1:{21000 + i}",
                config=str(directory / "net" / f"node-{i}.yaml"),
                data_dir=str(directory / "net" / "data" / f"node-{i}"),
                log=str(directory / "logs" / f"node-{i}.log"),
            )
            for i in range(validators)
        ],
        prometheus=PrometheusRecord(
            url="http://127.0.0.1:1", listen="127.0.0.1:1", dir="p", log="p.log"
        ),
        load=LoadRecord(
            dir=str(directory / "load"),
            log=str(directory / "logs" / "locust.log"),
            metrics_port=9646,
            csv_prefix=str(directory / "load" / "locust"),
            stats_json=str(directory / "load" / "locust.json"),
            summary=str(directory / "load" / "summary.json"),
            probe_log=str(directory / "load" / "probe.jsonl"),
        ),
        scenario=dict(plan.scenario),
        plan=plan.to_dict(),
    ).model_copy(update=changes)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / STATE_FILE).write_text(state.model_dump_json())
    return state
