"""The fault kinds: the one definition that scenario validation, the plan, the ``fault``
command, the fault driver, the timeline, the reports and the simulator mapping all read.

Each kind says how it is applied (``Mechanism``), whether it needs a target, which parameters
it takes (a pydantic model, validated in scenario files) and, for kinds applied through the
validators' fault API (``PUT /admin/faults``), the node spec fields its parameters become.

Adding a kind is one entry in ``KINDS`` plus its handler where its mechanism needs one: a
node-API kind needs nothing else (every platform with node faults applies it, ``heal`` clears
it); the simulator (``platforms/sim/flags.py``) and Chaos Mesh
(``platforms/kubernetes/chaos.py``) map the kinds they know and say so for the others. The
``fault`` command offers every kind with ``cli=True``; a kind with parameters adds its flags
there.

This module is a leaf: it imports nothing of the orchestrator but durations (the scenario
model imports it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from orchestrator.scenario.durations import parse_duration

__all__ = [
    "KINDS",
    "ChurnParams",
    "DelayParams",
    "FaultKind",
    "LossParams",
    "Mechanism",
    "NoParams",
    "cleared_by",
    "cli_kinds",
    "fault_kind",
    "instantaneous_kinds",
    "kind_names",
    "slashable_kinds",
]


class Mechanism(StrEnum):
    """How a fault kind is applied."""

    NODE = "node"
    """Through each target validator's fault API (``/admin/faults``); ``heal`` clears it."""
    KILL = "kill"
    """The target validators' processes (pods) are killed; clearing starts them again."""
    RESTART = "restart"
    """Starts killed validators again (clears ``kill``); instantaneous."""
    HEAL = "heal"
    """Clears every node-API fault of its targets; instantaneous."""
    CHURN = "churn"
    """The timeline expands it into a kill and a restart per outage (``plan.churn_schedule``)."""


_Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class NoParams(_Params):
    pass


class DelayParams(_Params):
    delay_ms: int = Field(ge=0, le=60_000)
    jitter_ms: int = Field(default=0, ge=0, le=60_000)


class LossParams(_Params):
    rate: float = Field(gt=0, lt=1, description="fraction of messages dropped (1: use partition)")


class ChurnParams(_Params):
    every: _Duration = Field(gt=0, description="one validator killed and restarted per period")
    downtime: _Duration | None = Field(
        default=None, gt=0, description="how long each stays down; default half of every"
    )


def _no_node_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {}


def _delay_node_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "delay_ms": float(params.get("delay_ms", 0)),
        "jitter_ms": float(params.get("jitter_ms", 0)),
    }


def _loss_node_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {"rate": float(params["rate"])}


@dataclass(frozen=True)
class FaultKind:
    """One fault kind (see the module docstring)."""

    name: str
    mechanism: Mechanism
    summary: str
    """What it does, in a few words (``aitbc-testnet fault --help``, docs)."""
    needs_target: bool = True
    params: type[BaseModel] = NoParams
    """The ``params`` of a scenario fault of this kind."""
    node_params: Callable[[Mapping[str, Any]], dict[str, Any]] = _no_node_params
    """NODE kinds: the fault API spec fields made from the plan's params."""
    two_sided: bool = False
    """NODE kinds: the target set and the rest both apply it, each naming the other side as
    ``peers`` (a partition cuts both ways)."""
    voters_only: bool = False
    """Only validators that vote can take it (the scenario refuses non-voters in fast mode)."""
    slashable: bool = False
    """Its targets should be slashed (the report checks it)."""
    cli: bool = True
    """Offered by ``aitbc-testnet fault``."""

    @property
    def instantaneous(self) -> bool:
        """Takes no duration and has nothing to clear (it clears other faults)."""
        return self.mechanism in (Mechanism.HEAL, Mechanism.RESTART)

    @property
    def restarts_validators(self) -> bool:
        """Its clear (kill, churn) or its apply (restart) restarts validators on purpose."""
        return self.mechanism in (Mechanism.KILL, Mechanism.CHURN, Mechanism.RESTART)


KINDS: tuple[FaultKind, ...] = (
    FaultKind(
        "partition",
        Mechanism.NODE,
        "the target set is cut from the rest, both ways",
        two_sided=True,
    ),
    FaultKind(
        "heal",
        Mechanism.HEAL,
        "clears the fault-API faults of the targets (default: every validator)",
        needs_target=False,
    ),
    FaultKind("kill", Mechanism.KILL, "SIGKILL / pod deletion with grace 0"),
    FaultKind(
        "restart",
        Mechanism.RESTART,
        "starts killed validators again with their data",
        needs_target=False,
    ),
    FaultKind(
        "delay",
        Mechanism.NODE,
        "added latency (delay_ms, jitter_ms) on the targets' messages",
        params=DelayParams,
        node_params=_delay_node_params,
    ),
    FaultKind(
        "loss",
        Mechanism.NODE,
        "a share of the targets' messages dropped (rate)",
        params=LossParams,
        node_params=_loss_node_params,
    ),
    FaultKind("pause", Mechanism.NODE, "the targets stop processing, as if frozen"),
    FaultKind(
        "equivocate",
        Mechanism.NODE,
        "byzantine double signing",
        voters_only=True,
        slashable=True,
    ),
    FaultKind(
        "churn",
        Mechanism.CHURN,
        "one validator of the pool killed and restarted every period (every, downtime)",
        needs_target=False,
        params=ChurnParams,
        cli=False,
    ),
)

_BY_NAME: Mapping[str, FaultKind] = {kind.name: kind for kind in KINDS}


def kind_names() -> tuple[str, ...]:
    """Every kind's name, in definition order."""
    return tuple(_BY_NAME)


def cli_kinds() -> tuple[str, ...]:
    """The kinds ``aitbc-testnet fault`` offers, in definition order."""
    return tuple(kind.name for kind in KINDS if kind.cli)


def fault_kind(name: str) -> FaultKind:
    """The kind called ``name``; ValueError naming the known ones for any other."""
    kind = _BY_NAME.get(name)
    if kind is None:
        raise ValueError(f"unknown fault kind {name!r}: use one of {', '.join(_BY_NAME)}")
    return kind


def cleared_by(name: str) -> tuple[str, ...]:
    """The kinds an instantaneous kind clears: heal -> every node-API kind, restart -> kill
    kinds; () for the others."""
    mechanism = fault_kind(name).mechanism
    target = {Mechanism.HEAL: Mechanism.NODE, Mechanism.RESTART: Mechanism.KILL}.get(mechanism)
    return tuple(kind.name for kind in KINDS if target is not None and kind.mechanism is target)


def instantaneous_kinds() -> tuple[str, ...]:
    """The kinds that take no duration and clear other faults (heal, restart)."""
    return tuple(kind.name for kind in KINDS if kind.instantaneous)


def slashable_kinds() -> tuple[str, ...]:
    """The kinds whose targets should be slashed (equivocate)."""
    return tuple(kind.name for kind in KINDS if kind.slashable)
