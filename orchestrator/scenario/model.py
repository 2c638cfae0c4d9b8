"""The scenario: what the user wrote (the manifest), validated once.

Pydantic v2 models, one per section, ``extra="forbid"`` and frozen. Structural checks live on
the fields; cross-field checks raise one ``ValidationError`` per problem with the exact location
(``faults.1.target``), so the loader can point at the YAML line of each. Durations are float
seconds here (``durations.parse_duration``). The resolved testnet (validator ids, stake table,
fault windows) is ``plan.Plan``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from orchestrator.errors import ScenarioIssue
from orchestrator.faults.kinds import (
    BEHAVIOURS,
    Mechanism,
    behaviour_of,
    fault_kind,
    kind_names,
    params_model,
)
from orchestrator.scenario.durations import format_duration, parse_duration
from orchestrator.scenario.voting_power import FRACTION_LABELS, StakeSpecError, check_stake_spec

Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds; the YAML may say ``500ms``, ``10s``, ``2m``, ``1h`` or a number of seconds."""

Mode = Literal["fast", "balanced", "secure", "auto"]
if TYPE_CHECKING:
    FaultKindName = str
    BehaviourName = str
else:  # the names of faults.kinds.KINDS and of the node's byzantine behaviours, so pydantic
    # lists them in its error message
    FaultKindName = Literal[kind_names()]
    BehaviourName = Literal[BEHAVIOURS]
FractionLabel = Literal["minority-third", "half", "majority", "supermajority"]
LoadShape = Literal["constant", "step", "ramp", "spike"]
Crypto = Literal["real", "modeled"]

MAX_VALIDATORS = 1000

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_CPU = re.compile(r"^\d+(\.\d+)?m?$")
_MEMORY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|K|M|G|T)?$")

Loc = tuple[str | int, ...]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _raise_issues(title: str, issues: Sequence[tuple[Loc, Any, str]]) -> None:
    """Raise one ValidationError holding every (location, input, message) in ``issues``."""
    if not issues:
        return
    raise ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(
                type=PydanticCustomError("scenario", "{reason}", {"reason": message}),
                loc=loc,
                input=value,
            )
            for loc, value, message in issues
        ],
    )


# ----------------------------------------------------------------------------- network


class NetworkSpec(_Section):
    """Who validates: counts, consensus mode, stake distribution, the seed of every choice."""

    validators: int = Field(default=4, ge=1, le=MAX_VALIDATORS)
    authorities: int = Field(
        default=4,
        ge=1,
        description="the first `authorities` validators (index < K) are authorities",
    )
    mode: Mode = "balanced"
    stake: str | list[int] = "equal"
    seed: int = Field(
        default=1, ge=0, description="keys, genesis and every random choice derive from it"
    )
    epoch_length: int = Field(default=100, ge=1, description="blocks per epoch")
    block_interval_ms: int | None = Field(
        default=None,
        ge=1,
        description="None: the mode's target (fast 100, balanced 500, secure 2000)",
    )

    @model_validator(mode="before")
    @classmethod
    def _authorities_default(cls, data: Any) -> Any:
        """``authorities`` left out: every validator is an authority."""
        if isinstance(data, dict) and "authorities" not in data:
            validators = data.get("validators", 4)
            if isinstance(validators, int) and not isinstance(validators, bool):
                return {**data, "authorities": validators}
        return data

    @field_validator("authorities")
    @classmethod
    def _authorities_within_validators(cls, value: int, info: ValidationInfo) -> int:
        validators = info.data.get("validators")
        if validators is not None and value > validators:
            raise ValueError(
                f"authorities ({value}) must not exceed validators ({validators}): "
                "lower authorities or raise validators"
            )
        return value

    @field_validator("stake", mode="before")
    @classmethod
    def _stake_spec(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, list):
            for position, stake in enumerate(value):
                if isinstance(stake, bool) or not isinstance(stake, int):
                    raise ValueError(
                        f"stake list entry {position} is {stake!r}: stakes are integers >= 0"
                    )
        elif not isinstance(value, str):
            raise ValueError(
                f"expected equal, zipf, uniform:LO:HI or a list of stakes, got {value!r}"
            )
        validators = info.data.get("validators")
        try:
            check_stake_spec(value, validators if validators is not None else len(value))
        except StakeSpecError as exc:
            raise ValueError(str(exc)) from exc
        return value


# ----------------------------------------------------------------------------- resources


class ResourcesSpec(_Section):
    """Per-validator requests/limits on Kubernetes (the local and sim platforms ignore them)."""

    cpu: str = "500m"
    memory: str = "512Mi"

    @field_validator("cpu", "memory", mode="before")
    @classmethod
    def _number_as_text(cls, value: Any) -> Any:
        return (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        )

    @field_validator("cpu")
    @classmethod
    def _cpu_quantity(cls, value: str) -> str:
        if not _CPU.match(value):
            raise ValueError(f"cpu {value!r} is not a Kubernetes CPU quantity such as 500m or 2")
        return value

    @field_validator("memory")
    @classmethod
    def _memory_quantity(cls, value: str) -> str:
        if not _MEMORY.match(value):
            raise ValueError(f"memory {value!r} is not a Kubernetes quantity such as 512Mi or 2Gi")
        return value


# ----------------------------------------------------------------------------- load


class LoadStep(_Section):
    tps: float = Field(ge=0)
    duration: Duration = Field(gt=0)


class RampSpec(_Section):
    from_tps: float = Field(ge=0)
    to_tps: float = Field(ge=0)


class SpikeSpec(_Section):
    at: Duration = Field(ge=0, description="since load start")
    duration: Duration = Field(gt=0)
    tps: float = Field(gt=0)


class ProbeSpec(_Section):
    """The low-rate latency probe that measures submit-to-commit through the commit stream."""

    enabled: bool = True
    interval: Duration = Field(default=1.0, gt=0)


class LoadSpec(_Section):
    """Offered load. ``duration`` includes warm-up and cool-down, which are not measured."""

    tps: float = Field(default=100, gt=0, description="offered transactions per second, all users")
    batch_size: int = Field(default=50, ge=1, le=10_000, description="transactions per submit call")
    tx_size: int = Field(default=200, ge=1, le=65_536, description="bytes per transaction")
    accounts: int = Field(default=64, ge=1, le=1_000_000, description="pre-funded sender accounts")
    duration: Duration = Field(default=60.0, gt=0)
    warmup: Duration = 10.0
    cooldown: Duration = 5.0
    users: int = Field(default=4, ge=1, le=10_000, description="Locust users")
    entry_validators: int | None = Field(
        default=None, ge=1, description="validators (evenly spaced) taking the load; None: all"
    )
    shape: LoadShape = "constant"
    steps: list[LoadStep] = Field(default_factory=list)
    ramp: RampSpec | None = None
    spike: SpikeSpec | None = None
    probe: ProbeSpec = ProbeSpec()

    @model_validator(mode="after")
    def _windows_and_shape(self) -> LoadSpec:
        issues: list[tuple[Loc, Any, str]] = []
        if self.warmup + self.cooldown >= self.duration:
            issues.append(
                (
                    ("warmup",),
                    self.warmup,
                    f"warmup ({format_duration(self.warmup)}) + cooldown "
                    f"({format_duration(self.cooldown)}) must be shorter than duration "
                    f"({format_duration(self.duration)}): nothing would be measured",
                )
            )
        for name, given in (
            ("steps", bool(self.steps)),
            ("ramp", self.ramp),
            ("spike", self.spike),
        ):
            wanted = {"steps": "step"}.get(name, name)
            if given and self.shape != wanted:
                issues.append(
                    (
                        (name,),
                        None,
                        f"{name} is set but shape is {self.shape}: "
                        f"set shape: {wanted} or remove {name}",
                    )
                )
        if self.shape == "step":
            total = sum(step.duration for step in self.steps)
            if not self.steps:
                issues.append(
                    (("steps",), [], "shape step needs steps: [{tps: 100, duration: 20s}]")
                )
            elif total > self.duration + 1e-9:
                issues.append(
                    (
                        ("steps",),
                        None,
                        f"steps last {format_duration(total)} in total, longer than the load "
                        f"duration ({format_duration(self.duration)})",
                    )
                )
        if self.shape == "ramp" and self.ramp is None:
            issues.append((("ramp",), None, "shape ramp needs ramp: {from_tps: 10, to_tps: 500}"))
        if self.shape == "spike":
            if self.spike is None:
                issues.append(
                    (
                        ("spike",),
                        None,
                        "shape spike needs spike: {at: 20s, duration: 5s, tps: 2000}",
                    )
                )
            elif self.spike.at + self.spike.duration > self.duration + 1e-9:
                issues.append(
                    (
                        ("spike", "at"),
                        self.spike.at,
                        f"the spike ends at {format_duration(self.spike.at + self.spike.duration)}"
                        f", after the load duration ({format_duration(self.duration)})",
                    )
                )
        _raise_issues("LoadSpec", issues)
        return self


# ----------------------------------------------------------------------------- faults


class CountTarget(_Section):
    """``{count: N}``: N validators, chosen by the plan (seeded; voters first, 0 last)."""

    count: int = Field(ge=1)


TargetSpec = list[int] | CountTarget | FractionLabel
TARGET_FORMS = "a list of validator ids such as [1, 2], {count: N}, or one of " + ", ".join(
    FRACTION_LABELS
)


def _check_target(value: Any) -> Any:
    """One clear error for a malformed target (instead of one per union member)."""
    if value is None:
        return None
    if isinstance(value, str):
        if value not in FRACTION_LABELS:
            raise ValueError(f"unknown target {value!r}: use {TARGET_FORMS}")
        return value
    if isinstance(value, list):
        if not value:
            raise ValueError(f"target is an empty list: use {TARGET_FORMS}")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int) or item < 0:
                raise ValueError(f"target id {item!r} is not a validator index (an integer >= 0)")
        if len(set(value)) != len(value):
            raise ValueError(f"target {value} lists a validator twice")
        return value
    if isinstance(value, dict):
        if set(value) != {"count"}:
            raise ValueError(f"target {value!r} is not {{count: N}}: use {TARGET_FORMS}")
        count = value["count"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"target count {count!r} must be an integer >= 1")
        return value
    raise ValueError(f"target {value!r} is not valid: use {TARGET_FORMS}")


class FaultSpec(_Section):
    """One entry of the fault timeline (times since load start; several may overlap).
    Byzantine kinds name the node's ``behaviour`` and take its parameters as ``params``."""

    at: Duration
    kind: FaultKindName
    behaviour: BehaviourName | None = None
    target: Annotated[TargetSpec | None, BeforeValidator(_check_target)] = None
    duration: Duration | None = Field(default=None, gt=0)
    params: dict[str, Any] = Field(default_factory=dict, validate_default=True)
    allow_unsafe: bool = Field(
        default=False,
        description="byzantine kinds: allow targets holding a third of the voting power or more "
        "(the run may fork)",
    )

    @field_validator("params")
    @classmethod
    def _params_for_kind(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("kind")
        if kind is None:
            return value
        model = params_model(kind, info.data.get("behaviour"))
        if model is None:  # a byzantine kind whose behaviour is missing: said on that field
            return value
        if fault_kind(kind).byzantine:  # the node applies the defaults: keep what was given
            return model.model_validate(value).model_dump(exclude_unset=True)
        return model.model_validate(value).model_dump(exclude_none=True)

    @model_validator(mode="after")
    def _kind_rules(self) -> FaultSpec:
        issues: list[tuple[Loc, Any, str]] = []
        kind = fault_kind(self.kind)
        if kind.needs_target and self.target is None:
            issues.append((("target",), None, f"{self.kind} needs a target: {TARGET_FORMS}"))
        issues += self._byzantine_rules()
        if kind.instantaneous and self.duration is not None:
            issues.append(
                (
                    ("duration",),
                    self.duration,
                    f"{self.kind} is instantaneous and takes no duration "
                    "(it clears earlier faults)",
                )
            )
        every = self.params.get("every") if kind.mechanism is Mechanism.CHURN else None
        if every is not None and self.params.get("downtime", 0) >= every:
            issues.append(
                (
                    ("params", "downtime"),
                    self.params["downtime"],
                    "downtime must be shorter than every (a validator is back before the next)",
                )
            )
        _raise_issues("FaultSpec", issues)
        return self

    def _byzantine_rules(self) -> list[tuple[Loc, Any, str]]:
        kind, given = fault_kind(self.kind), self.behaviour
        if not kind.byzantine:
            extra = {"behaviour": given, "allow_unsafe": self.allow_unsafe or None}
            return [
                (
                    (name,),
                    value,
                    f"{name} is for byzantine faults (kind: byzantine), not {self.kind}",
                )
                for name, value in extra.items()
                if value is not None
            ]
        if kind.behaviour is not None and given not in (None, kind.behaviour):
            fix = "leave behaviour out, or use kind: byzantine"
            return [
                (("behaviour",), given, f"{self.kind} is the behaviour {kind.behaviour}: {fix}")
            ]
        if kind.behaviour is None and given is None:
            names = ", ".join(BEHAVIOURS)
            return [(("behaviour",), None, f"{self.kind} needs a behaviour: one of {names}")]
        return []

    @property
    def chosen_behaviour(self) -> str | None:
        """The byzantine behaviour this fault runs (None: not a byzantine fault)."""
        return behaviour_of(self.kind, self.behaviour)


# ----------------------------------------------------------------------------- criteria, sim


class CriteriaSpec(_Section):
    """Pass/fail thresholds of a run. None: not judged."""

    min_tps: float | None = Field(default=None, ge=0, description="committed TPS, measured window")
    max_finality_p50_ms: float | None = Field(default=None, gt=0)
    max_finality_p99_ms: float | None = Field(default=None, gt=0)
    max_e2e_p99_ms: float | None = Field(default=None, gt=0)
    safety: bool = Field(default=True, description="no divergent committed hashes")
    max_recovery_s: Duration | None = Field(
        default=None, description="per fault: height advancing again after it clears"
    )
    max_restarts: int | None = Field(default=None, ge=0, description="unplanned restarts")
    commits_resume_within_s: Duration | None = Field(
        default=None,
        gt=0,
        description="per byzantine fault: the longest time without a commit, from its start to "
        "the first commit after its end",
    )
    equivocators_slashed_exactly_once_per_epoch: bool = Field(
        default=False,
        description="every validator a fault made equivocate is slashed, once per offender and "
        "epoch, and nobody else",
    )


class SimSpec(_Section):
    """Used by ``--platform sim`` only."""

    blocks: int = Field(default=50, ge=1, le=1_000_000)
    latency_ms: float = Field(default=50, ge=0, le=60_000)
    crypto: Crypto = "modeled"


# ----------------------------------------------------------------------------- scenario


@dataclass(frozen=True)
class ScenarioSource:
    """Where a scenario's values came from: the file and the 1-based line of every field
    path, and the ``--set`` flag of every overridden path. Used for error messages."""

    file: str
    path: Path | None = None
    lines: Mapping[Loc, int] = field(default_factory=dict)
    overrides: Mapping[Loc, str] = field(default_factory=dict)

    def issue(self, loc: Sequence[str | int], message: str) -> ScenarioIssue:
        """A ScenarioIssue for ``loc``: the override flag that set it, else the YAML line of
        the deepest part of ``loc`` that is in the file."""
        loc = tuple(loc)
        flag = next(
            (
                text
                for prefix, text in sorted(self.overrides.items(), key=lambda kv: -len(kv[0]))
                if loc[: len(prefix)] == prefix
            ),
            None,
        )
        line = None
        for depth in range(len(loc), -1, -1):
            if loc[:depth] in self.lines:
                line = self.lines[loc[:depth]]
                break
        return ScenarioIssue(
            file=self.file, line=line, field=format_loc(loc), message=message, flag=flag
        )


def format_loc(loc: Sequence[str | int]) -> str:
    """``('faults', 1, 'target')`` -> ``faults[1].target``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class Scenario(_Section):
    """A campaign: network, resources, load, faults, criteria and the simulator settings."""

    name: str
    description: str = ""
    network: NetworkSpec = NetworkSpec()
    resources: ResourcesSpec = ResourcesSpec()
    load: LoadSpec = LoadSpec()
    faults: list[FaultSpec] = Field(default_factory=list)
    criteria: CriteriaSpec = CriteriaSpec()
    sim: SimSpec = SimSpec()

    _source: ScenarioSource | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _name_format(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                f"name {value!r} must be 1-40 characters of a-z, 0-9 and '-', starting with a "
                "letter or digit (it becomes part of run ids and Kubernetes names)"
            )
        return value

    @field_validator("description")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value.strip():
            raise ValueError("description must be one line (it is listed by `scenarios`)")
        return value.strip()

    @model_validator(mode="after")
    def _faults_fit_network_and_load(self) -> Scenario:
        issues: list[tuple[Loc, Any, str]] = []
        validators, authorities = self.network.validators, self.network.authorities
        load_s = self.load.duration
        for i, fault in enumerate(self.faults):
            if fault.at >= load_s:
                issues.append(
                    (
                        ("faults", i, "at"),
                        fault.at,
                        f"at {format_duration(fault.at)} is not within the load duration "
                        f"({format_duration(load_s)}); faults start between 0 and the end of load",
                    )
                )
            target = fault.target
            if isinstance(target, list):
                missing = [v for v in target if v >= validators]
                if missing:
                    issues.append(
                        (
                            ("faults", i, "target"),
                            target,
                            f"validator {', '.join(map(str, missing))} does not exist: there are "
                            f"{validators} validators (ids 0..{validators - 1})",
                        )
                    )
                elif fault_kind(fault.kind).voters_only and self.network.mode == "fast":
                    voters = [v for v in target if v >= authorities]
                    if voters:
                        issues.append(
                            (
                                ("faults", i, "target"),
                                target,
                                f"validator {', '.join(map(str, voters))} is not an authority "
                                f"(ids 0..{authorities - 1}) and does not vote in fast mode, so "
                                f"it cannot take the {fault.kind} fault",
                            )
                        )
            elif isinstance(target, CountTarget) and target.count > validators:
                issues.append(
                    (
                        ("faults", i, "target", "count"),
                        target.count,
                        f"count {target.count} exceeds the {validators} validators",
                    )
                )
        _raise_issues("Scenario", issues)
        return self

    @property
    def source(self) -> ScenarioSource:
        """Where this scenario came from (set by the loader; a bare model says ``<scenario>``)."""
        return self._source if self._source is not None else ScenarioSource(file="<scenario>")

    @property
    def source_path(self) -> Path | None:
        return self.source.path

    def with_source(self, source: ScenarioSource) -> Scenario:
        """This scenario, remembering where it came from (the model is frozen: this sets a
        private attribute only)."""
        self._source = source
        return self
