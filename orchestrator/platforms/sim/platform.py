"""The ``sim`` platform: a plan run through the node's deterministic network simulator
(``external/simulator.py``; the flags are ``flags.py``). ``run`` is the whole simulation;
``deploy`` starts it, ``wait_ready`` waits for its result, ``destroy`` kills it if it still
runs. There are no live validators, no Prometheus and no load generator: the faults of the
plan run inside the simulation. Files go to the run directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from orchestrator.errors import PlatformError
from orchestrator.external.simulator import SIM_MODULE, SimRunResult, parse_sim_output
from orchestrator.platforms.capabilities import (
    Artifacts,
    Deployer,
    ReadyProgress,
    Simulator,
    Stopped,
    Teardown,
)
from orchestrator.platforms.sim.flags import SimFlags, default_timeout_s, sim_command, sim_flags
from orchestrator.scenario.plan import Plan

__all__ = ["COMMAND_FILE", "PLAN_FILE", "RESULT_FILE", "SimPlatform"]

RESULT_FILE = "sim-result.json"
STDOUT_FILE = "sim-stdout.txt"
STDERR_FILE = "sim-stderr.txt"
COMMAND_FILE = "sim-command.txt"
PLAN_FILE = "plan.json"


class SimPlatform(Deployer, Teardown, Artifacts, Simulator):
    """Runs a plan in the simulator (see the module docstring)."""

    name = "sim"

    def __init__(self, run_dir: Path, python: str | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.python = python or sys.executable
        self._plan: Plan | None = None
        self._flags: SimFlags | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._outputs: list[IO[bytes]] = []
        self._started = 0.0
        self._result: SimRunResult | None = None

    def image_tag(self) -> str:
        return "sim"

    # -- Deployer, Teardown, Artifacts, Simulator -------------------------------------------

    def deploy(self, plan: Plan) -> None:
        if self._process is not None:
            raise PlatformError(f"sim platform for {self.run_dir} already ran {plan.run_id}")
        self._plan, self._flags = plan, sim_flags(plan)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / PLAN_FILE).write_text(json.dumps(plan.to_dict(), indent=2) + "\n")
        command = self.command()
        (self.run_dir / COMMAND_FILE).write_text(" ".join(command) + "\n")
        stdout = (self.run_dir / STDOUT_FILE).open("wb")
        stderr = (self.run_dir / STDERR_FILE).open("wb")
        self._outputs = [stdout, stderr]
        try:
            self._process = subprocess.Popen(
                command, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            self._close_outputs()
            raise PlatformError(f"cannot start the simulator ({command[0]}): {exc}") from exc
        self._started = time.monotonic()

    def wait_ready(self, timeout_s: float, on_progress: ReadyProgress | None = None) -> None:
        """Wait for the simulation to finish (the sim is "ready" when it has a result)."""
        if self._result is not None:
            return
        process, plan, flags = self._process, self._plan, self._flags
        if process is None or plan is None or flags is None:
            raise PlatformError("sim platform: nothing deployed; call deploy(plan) first")
        remaining = max(0.0, timeout_s - (time.monotonic() - self._started))
        try:
            returncode = process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            self.destroy()
            advice = "raise --timeout or lower sim.blocks"
            if plan.sim.crypto == "real":
                advice += " or use sim.crypto: modeled"
            raise PlatformError(
                f"the simulation of {plan.run_id} did not finish within {timeout_s:g} s "
                f"({plan.network.validators} validators, {plan.sim.blocks} blocks, crypto "
                f"{plan.sim.crypto}); {advice}"
            ) from None
        finally:
            self._close_outputs()
        stdout = (self.run_dir / STDOUT_FILE).read_text(errors="replace")
        stderr = (self.run_dir / STDERR_FILE).read_text(errors="replace")
        if f"No module named {SIM_MODULE}" in stderr or "No module named 'aitbc_node" in stderr:
            raise PlatformError(
                f"the node simulator is not installed ({SIM_MODULE} is missing for "
                f"{self.python}); run `make install`"
            )
        try:
            self._result = parse_sim_output(
                stdout,
                run_id=plan.run_id,
                scenario=plan.name,
                notes=flags.notes,
                not_simulated=flags.not_simulated,
                command=self.command(),
                returncode=returncode,
            )
        except PlatformError as exc:
            tail = "\n".join(stderr.strip().splitlines()[-15:])
            raise PlatformError(
                f"{exc}; see {STDOUT_FILE}/{STDERR_FILE} in {self.run_dir}\n"
                f"simulator stderr (last lines):\n{tail}"
            ) from None
        (self.run_dir / RESULT_FILE).write_text(json.dumps(self._result.to_dict(), indent=2) + "\n")

    def collect_artifacts(self, dest: Path) -> None:
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        if dest.resolve() == self.run_dir.resolve():
            return
        for name in (PLAN_FILE, COMMAND_FILE, STDOUT_FILE, STDERR_FILE, RESULT_FILE):
            source = self.run_dir / name
            if source.is_file():
                (dest / name).write_bytes(source.read_bytes())

    def destroy(self) -> list[Stopped]:
        """Kill the simulation if it still runs (its whole process group, by pid)."""
        process = self._process
        stopped: list[Stopped] = []
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            stopped.append(Stopped("simulator", process.pid, "SIGKILL"))
        self._close_outputs()
        return stopped

    # -- helpers ---------------------------------------------------------------------------

    @property
    def result(self) -> SimRunResult:
        if self._result is None:
            raise PlatformError("sim platform: no result yet; deploy(plan) then wait_ready()")
        return self._result

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def command(self) -> tuple[str, ...]:
        if self._plan is None:
            raise PlatformError("sim platform: nothing deployed; call deploy(plan) first")
        return sim_command(self._plan, self.python)

    def budget_s(self, plan: Plan) -> float:
        return default_timeout_s(plan)

    def run(self, plan: Plan, timeout_s: float) -> SimRunResult:
        """deploy + wait_ready: the whole simulation. Kills it on any failure."""
        self.deploy(plan)
        try:
            self.wait_ready(timeout_s)
        finally:
            self.destroy()
        return self.result

    def _close_outputs(self) -> None:
        for handle in self._outputs:
            handle.close()
        self._outputs = []
