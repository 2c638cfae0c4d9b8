"""A plan as the simulator's flags (pure functions).

``sim_flags`` maps a plan to the flags of ``aitbc-node sim`` (``external/simulator.py``):
partitions -> ``--partition`` with the fraction of voting power cut, kill/churn/pause ->
``--crash``, equivocate -> ``--equivocators``, delay -> a higher global
``--latency-ms``/``--jitter-ms``, loss -> a global ``--drop-rate``. A fault kind without an
equivalent is listed in ``not_simulated``; every approximation is said in ``notes``. Nothing is
dropped silently.

The node's CLI also takes ``--jitter-ms``, ``--drop-rate``, ``--stake``, ``--epoch-length``,
``--block-interval-ms`` and ``--load-tps`` (beyond the contract; the integration test runs the
real command, so a change there fails a test rather than a user's run).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from orchestrator.external.simulator import sim_argv
from orchestrator.faults.kinds import fault_kind
from orchestrator.scenario.plan import Plan, PlannedFault, churn_schedule
from orchestrator.scenario.voting_power import quorum_measures

__all__ = [
    "SimFlags",
    "default_timeout_s",
    "mean_offered_tps",
    "sim_command",
    "sim_flags",
    "sim_fraction",
]


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
        if fault.start_s >= expected_s and not fault_kind(fault.kind).instantaneous:
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
        elif not fault_kind(fault.kind).instantaneous:
            not_simulated.append(f"{label}: the simulator has no {fault.kind} fault")
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
    return sim_argv(python or sys.executable, sim_flags(plan).argv)


def default_timeout_s(plan: Plan) -> float:
    """A generous wall-clock budget for a simulation: 120 s plus 20 ms per validator-block
    (``real`` crypto: 5x)."""
    per = 0.02 * (5 if plan.sim.crypto == "real" else 1)
    return 120.0 + per * plan.network.validators * plan.sim.blocks
