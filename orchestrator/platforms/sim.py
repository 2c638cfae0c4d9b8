"""The ``sim`` platform: a plan run through the node's deterministic network simulator.

The simulator's command line is a fixed contract (the node owns it)::

    aitbc-node sim --validators N --authorities K --mode fast|balanced|secure|auto --blocks B
        --seed S [--latency-ms M] [--partition START:END:FRACTION]... [--crash START:END:COUNT]...
        [--equivocators COUNT] [--crypto real|modeled] [--json]

Times are simulated seconds; ``--json`` prints one object with at least committed_height,
safety_violations, slashed_validators, simulated_seconds, wall_seconds, messages_sent, mode,
crypto and finality_ms {p50, p99}.

The node's CLI also takes ``--jitter-ms``, ``--drop-rate``, ``--stake``, ``--epoch-length``,
``--block-interval-ms`` and ``--load-tps`` (beyond the contract above; the integration test
runs the real command, so a change there fails a test rather than a user's run).

``sim_flags`` maps a plan to those flags (a pure function): partitions -> ``--partition`` with
the fraction of voting power cut, kill/churn/pause -> ``--crash``, equivocate ->
``--equivocators``, delay -> a higher global ``--latency-ms``/``--jitter-ms``, loss -> a global
``--drop-rate``. What has no equivalent is listed in ``not_simulated``; every approximation is
said in ``notes``. Nothing is dropped silently. The simulator runs as
``sys.executable -m aitbc_node.cli sim ...`` so no PATH is needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.plan import Plan, PlannedFault, churn_schedule
from orchestrator.platforms.base import Endpoint, PlatformError
from orchestrator.voting_power import quorum_measures

SIM_MODULE = "aitbc_node.cli"
RESULT_FILE = "sim-result.json"
STDOUT_FILE = "sim-stdout.txt"
STDERR_FILE = "sim-stderr.txt"
COMMAND_FILE = "sim-command.txt"
PLAN_FILE = "plan.json"


# ----------------------------------------------------------------------------- flag mapping


@dataclass(frozen=True)
class SimFlags:
    """The simulator arguments for a plan (after ``sim``), what was approximated (``notes``)
    and which faults the simulator cannot reproduce (``not_simulated``)."""

    argv: tuple[str, ...]
    notes: tuple[str, ...] = ()
    not_simulated: tuple[str, ...] = ()


def _num(value: float) -> str:
    """Seconds/milliseconds for the command line: no exponent, no trailing zeros."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


def sim_fraction(fault: PlannedFault, mode: str) -> float:
    """The fraction of voting power a fault cuts, under the measure(s) of ``mode``: fast ->
    authorities, secure -> stake, balanced/auto -> the larger of the two. The plan chose the
    ids so that every measure of the mode satisfies the target (e.g. both below 1/3), so
    either value keeps the target's meaning; the larger one is the harsher cut."""
    values = {"authorities": fault.fractions.authorities, "stake": fault.fractions.stake}
    return max(values[m] for m in quorum_measures(mode))


def mean_offered_tps(plan: Plan) -> float:
    """The offered load averaged over the load duration (step: time-weighted steps, the last
    step held to the end; ramp: the mean of its ends; spike: the base rate plus the spike)."""
    load = plan.load
    if load.shape == "step" and load.steps:
        covered = sum(step.duration_s for step in load.steps)
        total = sum(step.tps * step.duration_s for step in load.steps)
        total += load.steps[-1].tps * max(0.0, load.duration_s - covered)
        return total / load.duration_s
    if load.shape == "ramp" and load.ramp is not None:
        return (load.ramp.from_tps + load.ramp.to_tps) / 2
    if load.shape == "spike" and load.spike is not None:
        extra = (load.spike.tps - load.tps) * load.spike.duration_s / load.duration_s
        return load.tps + max(0.0, extra)
    return load.tps


def sim_flags(plan: Plan) -> SimFlags:
    """Map ``plan`` to the simulator's command line (see the module docstring)."""
    network, sim = plan.network, plan.sim
    offered = mean_offered_tps(plan)
    notes: list[str] = [
        f"load is modelled by the simulator at {_num(round(offered, 3))} tps (--load-tps; no "
        "Locust, no real transactions)",
        "times are simulated seconds since the start of the simulation (= scenario seconds "
        "since load start)",
    ]
    if plan.load.shape != "constant":
        notes.append(f"{plan.load.shape} load shape passed as its mean offered rate")
    not_simulated: list[str] = []
    partitions: list[str] = []
    crashes: list[str] = []
    equivocators: set[int] = set()
    latency_ms = sim.latency_ms
    jitter_ms: float | None = None
    drop_rate = 0.0
    load_end = plan.load.duration_s
    expected_s = sim.blocks * network.block_interval_ms / 1000

    stake_flag: list[str] = []
    if isinstance(network.stake_spec, str):
        if network.stake_spec != "equal":
            stake_flag = ["--stake", network.stake_spec]
    else:
        notes.append(
            "the explicit stake list is not passed (the simulator takes equal, zipf or "
            "uniform:LO:HI): it runs with equal stake"
        )
    interval_flag: list[str] = []
    if plan.scenario.get("network", {}).get("block_interval_ms") is not None:
        interval_flag = ["--block-interval-ms", str(network.block_interval_ms)]

    for fault in plan.faults:
        label = f"{fault.kind} #{fault.index} ({fault.target}, ids {list(fault.ids)})"
        end = fault.end_s if fault.end_s is not None else load_end
        if fault.end_s is None and fault.kind in ("partition", "kill", "pause"):
            notes.append(f"{label} has no end: mapped until the end of load ({_num(load_end)}s)")
        if fault.start_s >= expected_s and fault.kind not in ("heal", "restart"):
            notes.append(
                f"{label} starts at {_num(fault.start_s)}s, after the ~{_num(expected_s)}s that "
                f"{sim.blocks} blocks take in {network.mode} mode: raise sim.blocks to reach it"
            )
        if fault.kind == "partition":
            fraction = sim_fraction(fault, network.mode)
            if not 0 < fraction < 1:
                not_simulated.append(
                    f"{label}: cuts {fraction:.0%} of the voting power in {network.mode} mode; "
                    "the simulator cuts a fraction strictly between 0 and 1"
                )
                continue
            partitions.append(f"{_num(fault.start_s)}:{_num(end)}:{fraction:.4f}")
        elif fault.kind in ("kill", "pause"):
            crashes.append(f"{_num(fault.start_s)}:{_num(end)}:{len(fault.ids)}")
            if fault.kind == "pause":
                notes.append(
                    f"{label} mapped to --crash (a paused validator is silent like a crashed "
                    "one, but keeps its memory)"
                )
        elif fault.kind == "churn":
            outages = churn_schedule(fault, load_end)
            crashes += [f"{_num(o.start_s)}:{_num(o.end_s)}:1" for o in outages]
            notes.append(f"{label} mapped to {len(outages)} --crash windows of one validator")
        elif fault.kind == "equivocate":
            equivocators.update(fault.ids)
            if fault.start_s > 0 or fault.end_s is not None:
                notes.append(
                    f"{label} is byzantine for the whole simulation: the simulator's "
                    "--equivocators has no time window"
                )
        elif fault.kind == "delay":
            delay = float(fault.params.get("delay_ms", 0))
            jitter = float(fault.params.get("jitter_ms", 0))
            latency_ms = max(latency_ms, sim.latency_ms + delay)
            if jitter:
                jitter_ms = max(jitter_ms or 0.0, jitter)
            notes.append(
                f"{label} (+{_num(delay)} ms, jitter {_num(jitter)} ms) mapped to the global "
                "--latency-ms/--jitter-ms of every link for the whole simulation (the simulator "
                "has one latency for all links)"
            )
        elif fault.kind == "loss":
            rate = float(fault.params.get("rate", 0))
            drop_rate = max(drop_rate, rate)
            notes.append(
                f"{label} (rate {_num(rate)}) mapped to the global --drop-rate of every link for "
                "the whole simulation"
            )
        # heal/restart are reflected in the end of the faults they clear.

    if partitions:
        notes.append(
            "partitions are passed as fractions of voting power; the simulator picks which "
            "validators are cut (the plan's ids are not passed)"
        )
    if crashes:
        notes.append("crashes are passed as counts; the simulator picks which validators crash")
    argv: list[str] = [
        "--validators", str(network.validators),
        "--authorities", str(network.authorities),
        "--mode", network.mode,
        "--blocks", str(sim.blocks),
        "--seed", str(network.seed),
        "--latency-ms", _num(latency_ms),
    ]  # fmt: skip
    if jitter_ms is not None:
        argv += ["--jitter-ms", _num(jitter_ms)]
    if drop_rate:
        argv += ["--drop-rate", _num(drop_rate)]
    for spec in partitions:
        argv += ["--partition", spec]
    for spec in crashes:
        argv += ["--crash", spec]
    if equivocators:
        argv += ["--equivocators", str(len(equivocators))]
    argv += [
        *stake_flag,
        "--epoch-length", str(network.epoch_length),
        *interval_flag,
        "--load-tps", _num(round(offered, 3)),
        "--crypto", sim.crypto,
        "--json",
    ]  # fmt: skip
    return SimFlags(argv=tuple(argv), notes=tuple(notes), not_simulated=tuple(not_simulated))


def sim_command(plan: Plan, python: str | None = None) -> tuple[str, ...]:
    """The full command: ``python -m aitbc_node.cli sim <flags>``."""
    return (python or sys.executable, "-m", SIM_MODULE, "sim", *sim_flags(plan).argv)


# ----------------------------------------------------------------------------- results


class _SimFinality(BaseModel):
    model_config = ConfigDict(extra="allow")
    p50: float | None = None
    p99: float | None = None


class SimOutput(BaseModel):
    """The simulator's ``--json`` object (the contract's fields; anything else is kept)."""

    model_config = ConfigDict(extra="allow")
    committed_height: int
    safety_violations: int | list[Any]
    slashed_validators: int | list[Any]
    simulated_seconds: float
    wall_seconds: float
    messages_sent: int
    mode: str
    crypto: str
    finality_ms: _SimFinality


@dataclass(frozen=True)
class SimRunResult:
    """One finished simulation. Always ``simulated: True``: these numbers come from the
    discrete-event simulator, not from a running testnet."""

    run_id: str
    scenario: str
    command: tuple[str, ...]
    returncode: int
    committed_height: int
    safety_violations: int
    slashed_validators: int
    slashed_ids: tuple[int, ...]
    simulated_seconds: float
    wall_seconds: float
    messages_sent: int
    mode: str
    crypto: str
    finality_p50_ms: float | None
    finality_p99_ms: float | None
    notes: tuple[str, ...]
    not_simulated: tuple[str, ...]
    raw: Mapping[str, Any] = field(default_factory=dict)
    simulated: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "simulated": self.simulated,
            "run_id": self.run_id,
            "scenario": self.scenario,
            "command": list(self.command),
            "returncode": self.returncode,
            "committed_height": self.committed_height,
            "safety_violations": self.safety_violations,
            "slashed_validators": self.slashed_validators,
            "slashed_ids": list(self.slashed_ids),
            "simulated_seconds": self.simulated_seconds,
            "wall_seconds": self.wall_seconds,
            "messages_sent": self.messages_sent,
            "mode": self.mode,
            "crypto": self.crypto,
            "finality_ms": {"p50": self.finality_p50_ms, "p99": self.finality_p99_ms},
            "notes": list(self.notes),
            "not_simulated": list(self.not_simulated),
            "output": dict(self.raw),
        }


def parse_sim_output(
    stdout: str, *, plan: Plan, flags: SimFlags, command: Sequence[str], returncode: int
) -> SimRunResult:
    """Build the result from the simulator's stdout. Raises PlatformError when it holds no
    JSON object that follows the contract."""
    payload = _json_object(stdout)
    if payload is None:
        raise PlatformError(
            f"the simulator (exit {returncode}) printed no JSON object on stdout; see "
            f"{STDOUT_FILE}/{STDERR_FILE} in the run directory"
        )
    try:
        output = SimOutput.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise PlatformError(
            f"the simulator's JSON does not follow the contract ({problems}); check that the "
            "node package matches this orchestrator"
        ) from None
    slashed = output.slashed_validators
    slashed_ids = (
        tuple(v for v in slashed if isinstance(v, int) and not isinstance(v, bool))
        if isinstance(slashed, list)
        else ()
    )
    violations = output.safety_violations
    return SimRunResult(
        run_id=plan.run_id,
        scenario=plan.name,
        command=tuple(command),
        returncode=returncode,
        committed_height=output.committed_height,
        safety_violations=len(violations) if isinstance(violations, list) else violations,
        slashed_validators=len(slashed) if isinstance(slashed, list) else slashed,
        slashed_ids=slashed_ids,
        simulated_seconds=output.simulated_seconds,
        wall_seconds=output.wall_seconds,
        messages_sent=output.messages_sent,
        mode=output.mode,
        crypto=output.crypto,
        finality_p50_ms=output.finality_ms.p50,
        finality_p99_ms=output.finality_ms.p99,
        notes=flags.notes,
        not_simulated=flags.not_simulated,
        raw=payload,
    )


def _json_object(stdout: str) -> dict[str, Any] | None:
    text = stdout.strip()
    candidates = [text] + [line for line in reversed(text.splitlines()) if line.startswith("{")]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


# ----------------------------------------------------------------------------- the platform


class SimPlatform:
    """Runs a plan in the simulator: ``deploy`` starts the simulation process,
    ``wait_ready(timeout_s)`` waits for it to finish and reads the result (``result``);
    ``destroy`` kills it if it still runs. There are no live validators: kill/restart and
    faults outside the plan raise PlatformError; faults of the plan already run inside the
    simulation, so apply/clear of those are no-ops. Files go to ``run_dir``."""

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

    # -- protocol --------------------------------------------------------------------------

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

    def wait_ready(self, timeout_s: float) -> None:
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
                stdout, plan=plan, flags=flags, command=self.command(), returncode=returncode
            )
        except PlatformError as exc:
            tail = "\n".join(stderr.strip().splitlines()[-15:])
            raise PlatformError(f"{exc}\nsimulator stderr (last lines):\n{tail}") from None
        (self.run_dir / RESULT_FILE).write_text(json.dumps(self._result.to_dict(), indent=2) + "\n")

    def endpoints(self) -> list[Endpoint]:
        return []

    def kill(self, index: int) -> None:
        raise PlatformError(self._no_live(f"kill validator {index}"))

    def restart(self, index: int) -> None:
        raise PlatformError(self._no_live(f"restart validator {index}"))

    def apply_fault(self, fault: PlannedFault) -> None:
        self._check_planned(fault, "apply")

    def clear_fault(self, fault: PlannedFault) -> None:
        self._check_planned(fault, "clear")

    def prometheus_url(self) -> str | None:
        return None

    def start_load(self, plan: Plan) -> None:
        """No-op: the simulator drives consensus only (said in the result's notes)."""

    def stop_load(self) -> None:
        """No-op, see start_load."""

    def collect_artifacts(self, dest: Path) -> None:
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        if dest.resolve() == self.run_dir.resolve():
            return
        for name in (PLAN_FILE, COMMAND_FILE, STDOUT_FILE, STDERR_FILE, RESULT_FILE):
            source = self.run_dir / name
            if source.is_file():
                (dest / name).write_bytes(source.read_bytes())

    def destroy(self) -> None:
        """Kill the simulation if it still runs (its whole process group, by pid)."""
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        self._close_outputs()

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

    def _no_live(self, action: str) -> str:
        return (
            f"cannot {action} on the sim platform: it has no live validators; put the fault in "
            "the scenario's faults (it runs inside the simulation) or use --platform local"
        )

    def _check_planned(self, fault: PlannedFault, action: str) -> None:
        if self._plan is None or fault not in self._plan.faults:
            raise PlatformError(self._no_live(f"{action} {fault.kind} on ids {list(fault.ids)}"))


def default_timeout_s(plan: Plan) -> float:
    """A generous wall-clock budget for a simulation: 120 s plus 20 ms per validator-block
    (``real`` crypto: 5x)."""
    per = 0.02 * (5 if plan.sim.crypto == "real" else 1)
    return 120.0 + per * plan.network.validators * plan.sim.blocks
