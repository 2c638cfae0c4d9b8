"""The run state of a local run (``state.json``): every process the run started (pid and
kernel start time), ports, paths, the scenario; written atomically under a file lock so stages
running at the same time (a ``load`` during a ``fault kill``) never lose each other's changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from orchestrator.errors import PlatformError
from orchestrator.platforms.run_dirs import STATE_FILE, StateRecord

__all__ = [
    "STATE_LOCK_FILE",
    "STATE_VERSION",
    "LoadRecord",
    "ProcessRecord",
    "PrometheusRecord",
    "RunState",
    "RunStateFile",
    "StartedProcess",
    "ValidatorRecord",
    "all_processes",
    "forget_load",
    "refuse_if_stopped",
]

STATE_LOCK_FILE = ".state.lock"
STATE_VERSION = 1


class ProcessRecord(StateRecord):
    """A process this run started: its pid, its kernel start time (clock ticks since boot,
    ``/proc/<pid>/stat`` field 22: the pid is ours only while this matches) and its log."""

    pid: int
    start_ticks: int
    argv: list[str]
    log: str
    started_at: float


class ValidatorRecord(StateRecord):
    index: int
    grpc: str
    ops: str
    config: str
    data_dir: str
    log: str
    process: ProcessRecord | None = None
    restarts: int = 0
    killed_at: float | None = None


class PrometheusRecord(StateRecord):
    url: str
    listen: str
    dir: str
    log: str
    process: ProcessRecord | None = None


class LoadRecord(StateRecord):
    dir: str
    log: str
    metrics_port: int
    csv_prefix: str
    stats_json: str
    summary: str
    probe_log: str
    process: ProcessRecord | None = None
    started_at: float | None = None
    duration_s: float | None = None
    tps: float | None = None


class StartedProcess(StateRecord):
    """One process the run ever started (``RunState.history``)."""

    name: str
    process: ProcessRecord


class RunState(StateRecord):
    """``state.json``: everything a later CLI invocation needs to reach and stop this run."""

    version: int = STATE_VERSION
    platform: str = "local"
    run_id: str
    created: float
    host: str
    net_dir: str
    genesis: str
    chain_id: str
    admin_token_file: str
    validators: list[ValidatorRecord]
    prometheus: PrometheusRecord
    load: LoadRecord
    scenario: dict[str, Any]
    plan: dict[str, Any]
    stopped_at: float | None = None
    history: list[StartedProcess] = []
    """Every process the run started, in order (restarted validators included): what a
    check that "nothing of the run is left alive" walks."""


class RunStateFile:
    """``<run dir>/state.json`` of one run, cached in memory (``state``)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / STATE_FILE
        self._lock = threading.RLock()
        self._state: RunState | None = None

    @property
    def loaded(self) -> bool:
        return self._state is not None

    @property
    def state(self) -> RunState:
        """The run's state (PlatformError before it was created or read)."""
        if self._state is None:
            raise PlatformError(
                f"run {self.run_dir.name} has no state yet: deploy it (aitbc-testnet up) or "
                "attach to an existing run directory"
            )
        return self._state

    def read(self) -> RunState:
        """Read state.json (PlatformError naming what to do when it is missing or damaged)."""
        if not self.path.is_file():
            raise PlatformError(
                f"{self.run_dir} is not a run directory (no {STATE_FILE}): give the --run-id of "
                "a run started with `aitbc-testnet up` (they live in the --run-dir folder)"
            )
        try:
            self._state = RunState.model_validate_json(self.path.read_text())
        except (OSError, ValueError) as error:
            raise PlatformError(
                f"{self.path} cannot be read ({str(error)[:200]}): the run directory is damaged "
                "or from another version; stop its processes by hand"
            ) from None
        return self._state

    def create(self, state: RunState) -> None:
        """Write a new run's first state."""
        with self._locked():
            self._write(state)

    def update(self, change: Callable[[RunState], None]) -> RunState:
        """Read state.json again, apply ``change``, write it back, all under the file lock.
        Returns the new state (also ``self.state``)."""
        with self._locked():
            state = self.state
            if self.path.is_file():
                with contextlib.suppress(OSError, ValueError):
                    state = RunState.model_validate_json(self.path.read_text())
            change(state)
            self._write(state)
            return state

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """This object's lock and an exclusive lock on the run's lock file (other CLI
        invocations of the same run wait)."""
        with self._lock:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with (self.run_dir / STATE_LOCK_FILE).open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def _write(self, state: RunState) -> None:
        temporary = self.path.with_name(f".{STATE_FILE}.tmp{os.getpid()}.{threading.get_ident()}")
        temporary.write_text(state.model_dump_json(indent=2) + "\n")
        os.replace(temporary, self.path)
        self._state = state


def forget_load(state: RunState, record: ProcessRecord) -> None:
    """The load of ``record`` is over (unless state.json already names a newer one)."""
    current = state.load.process
    if current is not None and current.pid == record.pid:
        state.load.process = None


def all_processes(state: RunState) -> Iterator[tuple[str, ProcessRecord]]:
    """Every process record of the run that is set: the load, the validators, Prometheus."""
    if state.load.process is not None:
        yield "locust", state.load.process
    for validator in state.validators:
        if validator.process is not None:
            yield f"validator-{validator.index}", validator.process
    if state.prometheus.process is not None:
        yield "prometheus", state.prometheus.process


def refuse_if_stopped(state: RunState, what: str) -> None:
    """PlatformError when the run was stopped (``down``): ``what`` cannot be done any more."""
    if state.stopped_at is not None:
        raise PlatformError(
            f"cannot {what}: run {state.run_id} was stopped (aitbc-testnet down); start a new "
            "run with `aitbc-testnet up`"
        )
