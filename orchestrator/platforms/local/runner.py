"""How the validators of a run on this host are started, watched, killed and stopped: the
``ValidatorRunner`` Protocol that ``host.HostPlatform`` drives, and ``ProcessRunner``, the
local platform's (each validator a process of this machine, by pid). The docker platform's
runner starts containers instead (``platforms/docker/containers.py``); everything else of a
run (network files, Prometheus, Locust, faults, state) is the host platform's and the same.

A runner records what it started in the run's state (``state.RunStateFile``) as it goes, so a
later invocation attached to the run finds it.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Protocol

from aitbc_node.commands.genesis_cmd import LocalTestnet

from orchestrator.errors import FaultNotVerified
from orchestrator.platforms.capabilities import Stopped
from orchestrator.platforms.local.network import launcher_argv, validator_argv
from orchestrator.platforms.local.processes import ProcessSupervisor, tail
from orchestrator.platforms.local.state import (
    ProcessRecord,
    RunState,
    RunStateFile,
    StartedProcess,
    ValidatorRecord,
)
from orchestrator.scenario.plan import Plan

__all__ = ["ProcessRunner", "ValidatorRunner"]


class ValidatorRunner(Protocol):
    """What ``HostPlatform`` needs to run its validators one way or another."""

    def preflight(self, plan: Plan) -> None:
        """Check, before any file is written, that the validators of ``plan`` can start
        (PlatformError otherwise, with what to do)."""

    def prepare(self, testnet: LocalTestnet) -> None:
        """After the network files and the first state are written: what the validators need
        beyond them (recorded in the state)."""

    def start(self, index: int, *, restart: bool = False) -> None:
        """Start validator ``index`` (again, with its data, when ``restart``); recorded."""

    def start_all(self, indices: Sequence[int]) -> None:
        """Start these validators for the first time, together (a runner may share their
        start-up work); recorded."""

    def running(self, index: int) -> bool:
        """Whether validator ``index`` runs now."""

    def exited(self) -> list[int]:
        """The validators that were started and no longer run (one look at all of them)."""

    def kill(self, index: int) -> None:
        """Kill validator ``index`` at once (SIGKILL), verified; a stopped one is left as it
        is. Records the kill."""

    def stop(self, index: int) -> None:
        """Stop validator ``index`` gracefully (SIGTERM, SIGKILL after a grace period)."""

    def holder(self, index: int) -> Hashable | None:
        """What identifies validator ``index``'s current incarnation (a restart changes it)."""

    def describe(self, index: int) -> str:
        """Validator ``index`` and the end of its log, for error messages: ``validator 2 (pid
        123): <last lines> (see <log>)``."""

    def release(self) -> list[Stopped]:
        """Stop and remove what the runner made beyond the run's recorded processes (the
        host platform stops those by pid); what it did."""

    def append_live_logs(self, logs_dir: Path) -> None:
        """Append the output of the validators' current incarnations to ``logs_dir``'s
        ``node-<i>.log`` (nothing when they write to the run's log files themselves)."""

    def close(self) -> None:
        """Release connections (the validators keep running)."""


class ProcessRunner:
    """Validators as processes of this machine: ``aitbc-node run --config node-<i>.yaml`` from
    the network folder, each in its own process group, output in ``logs/node-<i>.log``. The
    first start of a run's validators forks them all from one ``aitbc-node launch`` (one
    import of the node: about 1 CPU-second saved per validator); a restart starts one
    process."""

    def __init__(
        self,
        state_file: RunStateFile,
        processes: ProcessSupervisor,
        python: str,
        net_dir: Path,
    ) -> None:
        self._state_file = state_file
        self._processes = processes
        self._python = python
        self._net_dir = net_dir

    def _validator(self, index: int) -> ValidatorRecord:
        return self._state_file.state.validators[index]

    def preflight(self, plan: Plan) -> None:
        """Nothing to check: the processes run this checkout's code."""

    def prepare(self, testnet: LocalTestnet) -> None:
        """Nothing beyond the network files."""

    def start(self, index: int, *, restart: bool = False) -> None:
        validator = self._validator(index)
        argv = validator_argv(self._python, validator.config)
        process = self._processes.spawn(argv, Path(validator.log), cwd=self._net_dir, env=None)
        self._record_started([(index, process)], restart=restart)

    def start_all(self, indices: Sequence[int]) -> None:
        validators = [self._validator(index) for index in indices]
        processes = self._processes.fork_many(
            launcher_argv(self._python),
            [(validator_argv(self._python, v.config), Path(v.log), v.config) for v in validators],
            cwd=self._net_dir,
        )
        self._record_started(list(zip(indices, processes, strict=True)), restart=False)

    def _record_started(
        self, started: Sequence[tuple[int, ProcessRecord]], *, restart: bool
    ) -> None:
        """Record the new incarnations of validators (one state update for all)."""

        def record(state: RunState) -> None:
            for index, process in started:
                entry = state.validators[index]
                entry.process = process
                entry.killed_at = None
                if restart:
                    entry.restarts += 1
                state.history.append(StartedProcess(name=f"validator-{index}", process=process))

        self._state_file.update(record)

    def running(self, index: int) -> bool:
        return self._processes.running(self._validator(index).process)

    def exited(self) -> list[int]:
        return [
            validator.index
            for validator in self._state_file.state.validators
            if validator.process is not None and not self._processes.running(validator.process)
        ]

    def kill(self, index: int) -> None:
        """SIGKILL the validator's process group; verified: the pid is gone."""
        record = self._validator(index).process
        if record is None or not self._processes.running(record):
            return
        if not self._processes.kill(record):
            raise FaultNotVerified(
                f"validator {index} (pid {record.pid}) still runs after SIGKILL: check the "
                "process by hand"
            )
        killed_at = time.time()

        def killed(state: RunState) -> None:
            entry = state.validators[index]
            if entry.process is not None and entry.process.pid == record.pid:
                entry.process = None
                entry.killed_at = killed_at

        self._state_file.update(killed)

    def stop(self, index: int) -> None:
        record = self._validator(index).process
        if record is not None:
            self._processes.stop(f"validator-{index}", record)

    def holder(self, index: int) -> Hashable | None:
        process = self._validator(index).process
        return None if process is None else (process.pid, process.start_ticks)

    def describe(self, index: int) -> str:
        validator = self._validator(index)
        pid = f" (pid {validator.process.pid})" if validator.process is not None else ""
        return f"validator {index}{pid}: {tail(validator.log)} (see {validator.log})"

    def release(self) -> list[Stopped]:
        """Nothing: the validators are processes of the run, stopped with the others."""
        return []

    def append_live_logs(self, logs_dir: Path) -> None:
        """Nothing: the validators write ``logs/node-<i>.log`` themselves."""

    def close(self) -> None:
        """Nothing to release."""
