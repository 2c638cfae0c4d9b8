"""The plan: the resolved testnet that will run (CometBFT's "testnet" as opposed to the user's
manifest). Frozen dataclasses, computed once from a validated ``Scenario``:

* durations as float seconds,
* the genesis stake table (``voting_power.stake_table``),
* every fault's target resolved to concrete validator ids (fractions of *voting power* under the
  mode's quorum measures, not pod counts), its window ``[start_s, end_s)`` and the fractions
  (by count, stake, authorities) it achieved, so reports can say what was cut;
* byzantine faults checked: at every moment the validators they make byzantine stay below a
  third of the voting power by every quorum measure of the mode, unless the fault says
  ``allow_unsafe: true``.

Platforms, the fault engine and reports read only the plan.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.errors import ScenarioError, UsageError
from orchestrator.faults.kinds import Mechanism, cleared_by, fault_kind
from orchestrator.scenario.model import CountTarget, FaultSpec, Scenario
from orchestrator.scenario.voting_power import (
    PowerFractions,
    StakeEntry,
    StakeSpecError,
    TargetUnreachableError,
    power_fractions,
    resolve_count,
    resolve_fraction,
    stake_table,
    third_or_more,
)

MODE_BLOCK_INTERVAL_MS: Mapping[str, int] = {
    "fast": 100,
    "balanced": 500,
    "secure": 2000,
    "auto": 500,  # auto starts balanced and changes only at epoch boundaries
}
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


@dataclass(frozen=True)
class NetworkPlan:
    """The validator set. ``genesis_seed`` is the string seed of the testnet genesis
    (``aitbc_node.genesis.make_testnet_genesis(seed=...)``): keys and ``stake`` derive from it,
    so platforms must pass exactly this value."""

    validators: int
    authorities: int
    mode: str
    seed: int
    genesis_seed: str
    epoch_length: int
    block_interval_ms: int
    stake_spec: str | tuple[int, ...]
    stake: tuple[StakeEntry, ...]

    @property
    def total_stake(self) -> int:
        return sum(entry.stake for entry in self.stake)


@dataclass(frozen=True)
class LoadStepPlan:
    tps: float
    duration_s: float


@dataclass(frozen=True)
class RampPlan:
    from_tps: float
    to_tps: float


@dataclass(frozen=True)
class SpikePlan:
    at_s: float
    duration_s: float
    tps: float


@dataclass(frozen=True)
class LoadPlan:
    tps: float
    batch_size: int
    tx_size: int
    accounts: int
    duration_s: float
    warmup_s: float
    cooldown_s: float
    users: int
    shape: str
    steps: tuple[LoadStepPlan, ...]
    ramp: RampPlan | None
    spike: SpikePlan | None
    probe_enabled: bool
    probe_interval_s: float
    #: Validators the accounts are routed to (None: all; ``AITBC_ENTRY_VALIDATORS``).
    entry_validators: int | None = None

    @property
    def measure_start_s(self) -> float:
        """Start of the measured window, seconds since load start."""
        return self.warmup_s

    @property
    def measure_end_s(self) -> float:
        """End of the measured window, seconds since load start."""
        return self.duration_s - self.cooldown_s

    def shape_params(self) -> dict[str, Any]:
        """``AITBC_SHAPE_PARAMS`` of the load shape (loadgen/README.md, "Shapes")."""
        if self.shape == "step":
            return {"steps": [{"tps": s.tps, "duration_s": s.duration_s} for s in self.steps]}
        if self.shape == "ramp" and self.ramp is not None:
            return {
                "from_tps": self.ramp.from_tps,
                "to_tps": self.ramp.to_tps,
                "duration_s": self.duration_s,
            }
        if self.shape == "spike" and self.spike is not None:
            return {
                "at_s": self.spike.at_s,
                "duration_s": self.spike.duration_s,
                "tps": self.spike.tps,
            }
        return {}


@dataclass(frozen=True)
class PlannedFault:
    """One fault of the timeline, resolved.

    ``ids`` are concrete validator indices. For ``heal``/``restart`` without a target they are
    the validators of the faults still open at that time (what it clears); for ``churn`` they
    are the pool it cycles through (``churn_schedule`` gives each outage). ``end_s`` is
    ``start_s + duration``, or the time of a later ``heal``/``restart`` that clears every id,
    or None (open until the run's faults are all cleared at the end of load).
    ``params`` holds durations in seconds (churn: ``every``, ``downtime``).
    """

    index: int
    kind: str
    target: str
    ids: tuple[int, ...]
    start_s: float
    end_s: float | None
    params: Mapping[str, Any]
    fractions: PowerFractions
    behaviour: str | None = None
    """Byzantine kinds: the node behaviour the targets run (``equivocate`` for that kind)."""
    allow_unsafe: bool = False
    """Byzantine kinds: the targets were allowed to hold a third of the voting power or more."""

    @property
    def duration_s(self) -> float | None:
        return None if self.end_s is None else self.end_s - self.start_s

    @property
    def name(self) -> str:
        """The kind, with the behaviour of a ``byzantine`` fault: ``byzantine flood``."""
        if self.behaviour is None or self.behaviour == self.kind:
            return self.kind
        return f"{self.kind} {self.behaviour}"

    def describe(self) -> str:
        """``partition minority-third -> ids [2] at 20s until 30s (25.0% stake, ...)``."""
        until = "open" if self.end_s is None else f"until {self.end_s:g}s"
        return (
            f"{self.name} {self.target} -> ids {list(self.ids)} at {self.start_s:g}s {until} "
            f"({self.fractions.stake:.1%} of stake, {self.fractions.authorities:.1%} of "
            f"authorities, {self.fractions.count:.1%} of validators)"
        )


@dataclass(frozen=True)
class Outage:
    """One validator down from ``start_s`` to ``end_s`` (a churn step)."""

    index: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class CriteriaPlan:
    min_tps: float | None
    max_finality_p50_ms: float | None
    max_finality_p99_ms: float | None
    max_e2e_p99_ms: float | None
    safety: bool
    max_recovery_s: float | None
    max_restarts: int | None
    commits_resume_within_s: float | None = None
    equivocators_slashed_exactly_once_per_epoch: bool = False


@dataclass(frozen=True)
class ResourcesPlan:
    cpu: str
    memory: str


@dataclass(frozen=True)
class SimPlan:
    blocks: int
    latency_ms: float
    crypto: str


@dataclass(frozen=True)
class Plan:
    """Everything a platform needs to run a scenario, and what a report needs to reproduce it
    (``scenario`` is the validated scenario as a JSON-able dict)."""

    run_id: str
    platform: str
    name: str
    description: str
    created: str
    network: NetworkPlan
    resources: ResourcesPlan
    load: LoadPlan
    faults: tuple[PlannedFault, ...]
    criteria: CriteriaPlan
    sim: SimPlan
    scenario: Mapping[str, Any]
    source_path: Path | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for plan.json and reports)."""
        result = _jsonable(self)
        assert isinstance(result, dict)
        result["measure_window_s"] = [self.load.measure_start_s, self.load.measure_end_s]
        return result


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


# ----------------------------------------------------------------------------- resolution


def default_run_id(name: str, now: datetime | None = None) -> str:
    """``<scenario>-<UTC yyyymmdd-HHMMSS>``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{name}-{moment:%Y%m%d-%H%M%S}"


def resolve_plan(
    scenario: Scenario,
    *,
    platform: str,
    run_id: str | None = None,
    now: datetime | None = None,
) -> Plan:
    """Resolve ``scenario`` into the frozen plan for ``platform``.

    Raises ScenarioError (with the fault's file/line) when a voting-power target cannot be met
    by this validator set, UsageError for a malformed ``run_id``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    if run_id is None:
        run_id = default_run_id(scenario.name, moment)
    elif not _RUN_ID.match(run_id):
        raise UsageError(
            f"run id {run_id!r} must be 1-80 characters of letters, digits, '.', '_' and '-' "
            "(it names the run directory)"
        )
    network = _network_plan(scenario, platform)
    load = _load_plan(scenario)
    return Plan(
        run_id=run_id,
        platform=platform,
        name=scenario.name,
        description=scenario.description,
        created=moment.isoformat(timespec="seconds"),
        network=network,
        resources=ResourcesPlan(cpu=scenario.resources.cpu, memory=scenario.resources.memory),
        load=load,
        faults=_fault_plans(scenario, network),
        criteria=CriteriaPlan(**scenario.criteria.model_dump()),
        sim=SimPlan(**scenario.sim.model_dump()),
        scenario=scenario.model_dump(mode="json"),
        source_path=scenario.source_path,
    )


def genesis_seed(platform: str, seed: int) -> str:
    """The genesis seed string a platform's testnet uses: the simulator builds its genesis from
    ``sim-<seed>`` (aitbc_node.sim), the other platforms from ``<seed>``."""
    return f"sim-{seed}" if platform == "sim" else str(seed)


def _network_plan(scenario: Scenario, platform: str) -> NetworkPlan:
    spec = scenario.network
    stake_spec = spec.stake if isinstance(spec.stake, str) else tuple(spec.stake)
    seed_text = genesis_seed(platform, spec.seed)
    try:
        table = stake_table(spec.validators, spec.authorities, stake_spec, seed_text)
    except StakeSpecError as exc:  # the model checks this too; kept for bare dict callers
        raise ScenarioError([scenario.source.issue(("network", "stake"), str(exc))]) from None
    interval = spec.block_interval_ms or MODE_BLOCK_INTERVAL_MS[spec.mode]
    return NetworkPlan(
        validators=spec.validators,
        authorities=spec.authorities,
        mode=spec.mode,
        seed=spec.seed,
        genesis_seed=seed_text,
        epoch_length=spec.epoch_length,
        block_interval_ms=interval,
        stake_spec=stake_spec,
        stake=table,
    )


def _load_plan(scenario: Scenario) -> LoadPlan:
    load = scenario.load
    return LoadPlan(
        tps=load.tps,
        batch_size=load.batch_size,
        tx_size=load.tx_size,
        accounts=load.accounts,
        duration_s=load.duration,
        warmup_s=load.warmup,
        cooldown_s=load.cooldown,
        users=load.users,
        shape=load.shape,
        steps=tuple(LoadStepPlan(tps=s.tps, duration_s=s.duration) for s in load.steps),
        ramp=None if load.ramp is None else RampPlan(load.ramp.from_tps, load.ramp.to_tps),
        spike=None
        if load.spike is None
        else SpikePlan(at_s=load.spike.at, duration_s=load.spike.duration, tps=load.spike.tps),
        probe_enabled=load.probe.enabled,
        probe_interval_s=load.probe.interval,
        entry_validators=load.entry_validators,
    )


def _fault_plans(scenario: Scenario, network: NetworkPlan) -> tuple[PlannedFault, ...]:
    table = network.stake
    issues = []
    targeted: list[tuple[int, FaultSpec, str, tuple[int, ...]]] = []
    for index, fault in enumerate(scenario.faults):
        try:
            text, ids = _resolve_target(fault, network)
        except TargetUnreachableError as exc:
            issues.append(scenario.source.issue(("faults", index, "target"), str(exc)))
            continue
        targeted.append((index, fault, text, ids))
    if issues:
        raise ScenarioError(issues)

    # Targetless heal/restart: whatever is still open at that time. Then close open faults
    # that a later heal/restart clears completely.
    by_time = sorted(targeted, key=lambda item: (item[1].at, item[0]))
    ends: dict[int, float | None] = {
        i: (f.at + f.duration if f.duration is not None else None) for i, f, _, _ in targeted
    }
    resolved_ids: dict[int, tuple[int, ...]] = {i: ids for i, _, _, ids in targeted}
    for index, fault, _, _ in by_time:
        clears = cleared_by(fault.kind)
        if not clears:
            continue
        open_before = [
            other
            for other, spec, _, _ in by_time
            if spec.kind in clears
            and spec.at <= fault.at
            and other != index
            and (ends[other] is None or (ends[other] or 0.0) > fault.at)
        ]
        if fault.target is None:
            resolved_ids[index] = tuple(
                sorted({v for other in open_before for v in resolved_ids[other]})
            )
        cleared = set(resolved_ids[index])
        for other in open_before:
            if ends[other] is None and set(resolved_ids[other]) <= cleared:
                ends[other] = fault.at

    plans = []
    for index, fault, text, _ in targeted:
        ids = resolved_ids[index]
        plans.append(
            PlannedFault(
                index=index,
                kind=fault.kind,
                target=text,
                ids=ids,
                start_s=fault.at,
                end_s=ends[index],
                params=_fault_params(fault),
                fractions=power_fractions(table, ids),
                behaviour=fault.chosen_behaviour,
                allow_unsafe=fault.allow_unsafe,
            )
        )
    unsafe = [
        scenario.source.issue(("faults", fault.index, "target"), problem)
        for fault, problem in byzantine_share_problems(plans, network)
    ]
    if unsafe:
        raise ScenarioError(unsafe)
    return tuple(plans)


def byzantine_share_problems(
    faults: Sequence[PlannedFault], network: NetworkPlan
) -> list[tuple[PlannedFault, str]]:
    """(fault, why) for every byzantine fault (without ``allow_unsafe``) that, together with
    the byzantine faults active at the same time, makes a third of the voting power or more
    byzantine by a quorum measure of the mode (``voting_power.third_or_more``)."""
    byzantine = [f for f in faults if fault_kind(f.kind).byzantine]
    problems = []
    for fault in byzantine:
        if fault.allow_unsafe:
            continue
        together = [
            other
            for other in byzantine
            if windows_meet((fault.start_s, fault.end_s), (other.start_s, other.end_s))
        ]
        ids = sorted({i for other in together for i in other.ids})
        problem = third_or_more(network.stake, network.mode, ids)
        if problem is None:
            continue
        others = [other.index for other in together if other is not fault]
        alongside = (
            f" (with fault {', '.join(map(str, others))} at the same time)" if others else ""
        )
        problems.append(
            (
                fault,
                f"{problem}{alongside}: target fewer validators, or set allow_unsafe: true on "
                "the fault to run it anyway (the chain may fork)",
            )
        )
    return problems


def windows_meet(first: tuple[float, float | None], second: tuple[float, float | None]) -> bool:
    """Whether two windows ``(start, end)`` (``[start, end)``; end None: open) meet."""
    first_end = math.inf if first[1] is None else first[1]
    second_end = math.inf if second[1] is None else second[1]
    return first[0] < second_end and second[0] < first_end


def _resolve_target(fault: FaultSpec, network: NetworkPlan) -> tuple[str, tuple[int, ...]]:
    """(target as written, ids). Raises TargetUnreachableError."""
    target = fault.target
    if target is None:
        if fault_kind(fault.kind).mechanism is Mechanism.CHURN:
            pool = tuple(range(1, network.validators)) or (0,)
            return ("any but validator 0" if network.validators > 1 else "validator 0", pool)
        return ("all", ())  # heal/restart: filled in from the open faults
    if isinstance(target, list):
        return (str(sorted(target)), tuple(sorted(target)))
    if isinstance(target, CountTarget):
        return (
            f"count {target.count}",
            resolve_count(network.stake, network.mode, target.count, network.seed),
        )
    return (target, resolve_fraction(network.stake, network.mode, target, network.seed))


def _fault_params(fault: FaultSpec) -> dict[str, Any]:
    params = dict(fault.params)
    if fault_kind(fault.kind).mechanism is Mechanism.CHURN:
        params.setdefault("downtime", params["every"] / 2)
    return params


def churn_schedule(fault: PlannedFault, horizon_s: float) -> tuple[Outage, ...]:
    """The outages of a churn fault: every ``every`` seconds from its start until its end (or
    ``horizon_s``), the next validator of its pool (round robin) is killed for ``downtime``."""
    if fault_kind(fault.kind).mechanism is not Mechanism.CHURN:
        raise ValueError(f"fault {fault.index} is {fault.kind}, not churn")
    every, downtime = float(fault.params["every"]), float(fault.params["downtime"])
    end = fault.end_s if fault.end_s is not None else horizon_s
    outages = []
    step = 0
    while fault.start_s + step * every < end and fault.ids:
        start = fault.start_s + step * every
        outages.append(
            Outage(index=fault.ids[step % len(fault.ids)], start_s=start, end_s=start + downtime)
        )
        step += 1
    return tuple(outages)
