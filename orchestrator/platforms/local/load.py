"""The load generator of a local run: Locust headless (``external/locust.py``) as a process of
the run, with the plan's load (``platforms/loadgen_env.py``), its results in ``load/``
(CSV and JSON stats, the summary, the probe log) and its metrics on the port the run's
Prometheus scrapes (job ``aitbc-loadgen``)."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.errors import PlatformError
from orchestrator.external.locust import locust_argv
from orchestrator.platforms.capabilities import LoadFiles
from orchestrator.platforms.loadgen_env import loadgen_environment
from orchestrator.platforms.local.processes import ProcessSupervisor
from orchestrator.platforms.local.state import (
    RunState,
    RunStateFile,
    StartedProcess,
    forget_load,
    refuse_if_stopped,
)
from orchestrator.scenario.plan import LoadPlan, Plan

__all__ = ["LocalLoad", "local_loadgen_environment"]


def local_loadgen_environment(state: RunState, load: LoadPlan) -> dict[str, str]:
    """The ``AITBC_*`` variables of ``load`` on the run of ``state``."""
    return loadgen_environment(
        load,
        state.run_id,
        genesis=state.genesis,
        targets=[v.grpc for v in state.validators],
        probe_log=state.load.probe_log,
        summary=state.load.summary,
        metrics_port=state.load.metrics_port,
    )


class LocalLoad:
    """Starts, watches and stops the Locust process of one run."""

    def __init__(
        self, state_file: RunStateFile, supervisor: ProcessSupervisor, python: str, load_dir: Path
    ) -> None:
        self._state_file = state_file
        self._supervisor = supervisor
        self._python = python
        self._load_dir = load_dir

    def start(self, plan: Plan) -> None:
        """Start Locust with the plan's load section: load users plus the probe user."""
        state = self._state_file.state
        refuse_if_stopped(state, "start a load")
        record = state.load
        if self._supervisor.running(record.process):
            assert record.process is not None
            raise PlatformError(
                f"run {state.run_id}: a load is already running (pid {record.process.pid}): "
                "wait for it or stop it first"
            )
        load = plan.load
        env = dict(os.environ)
        env.update(local_loadgen_environment(state, load))
        users = load.users + (1 if load.probe_enabled else 0)
        argv = locust_argv(
            self._python,
            users=users,
            run_time_s=load.duration_s,
            csv_prefix=record.csv_prefix,
            json_file=str(Path(record.stats_json).with_suffix("")),
        )
        for stale in (record.summary, record.probe_log):
            Path(stale).unlink(missing_ok=True)
        process = self._supervisor.spawn(argv, Path(record.log), cwd=self._load_dir, env=env)

        def started(fresh: RunState) -> None:
            fresh.load.process = process
            fresh.load.started_at = process.started_at
            fresh.load.duration_s = load.duration_s
            fresh.load.tps = load.tps
            fresh.history.append(StartedProcess(name="locust", process=process))

        self._state_file.update(started)

    def running(self) -> bool:
        return self._supervisor.running(self._state_file.state.load.process)

    def wait(self, timeout_s: float) -> bool:
        """Wait until Locust exits by itself (True) or ``timeout_s`` passes."""
        record = self._state_file.state.load.process
        if record is None:
            return True
        done = self._supervisor.wait_gone(record, timeout_s)
        if done:
            self._state_file.update(lambda state: forget_load(state, record))
        return done

    def stop(self) -> None:
        """Stop Locust (SIGTERM: it writes its stats and summary; SIGKILL after the grace
        period). Idempotent."""
        record = self._state_file.state.load.process
        if record is None:
            return
        self._supervisor.stop("locust", record)
        self._state_file.update(lambda state: forget_load(state, record))

    def files(self) -> LoadFiles:
        record = self._state_file.state.load
        return LoadFiles(
            dir=self._load_dir,
            log=Path(record.log),
            summary=Path(record.summary),
            probe_log=Path(record.probe_log),
        )
