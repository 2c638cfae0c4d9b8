"""The byzantine behaviours a node can be switched into, and their parameters.

One name per attack (``BEHAVIOURS``); each has a pydantic model of its parameters (strict, no
unknown fields), shared by the fault API (``{"kind": "byzantine", "behaviour": NAME, ...}``),
the node config key ``byzantine:`` and the simulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aitbc_node.errors import ConfigError
from aitbc_node.validation import describe

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class NoParams(BaseModel):
    model_config = _STRICT


class SelectiveParams(BaseModel):
    """``fraction``: share of the other validators the proposal reaches (the lowest indices)."""

    model_config = _STRICT

    fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5


class SkewParams(BaseModel):
    """``skew_ms``: added to the timestamp of every proposal (negative: into the past)."""

    model_config = _STRICT

    skew_ms: Annotated[int, Field(ge=-86_400_000, le=86_400_000)] = 60_000


class ReplayParams(BaseModel):
    """``count``: old messages re-sent with each batch of outgoing actions."""

    model_config = _STRICT

    count: Annotated[int, Field(ge=1, le=64)] = 4


class WrongChainParams(BaseModel):
    """``chain_id``: the chain signatures are made for (default: this chain's id + "-fork")."""

    model_config = _STRICT

    chain_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class FloodParams(BaseModel):
    """Every ``interval_ms``: ``count`` votes and ``count`` timeouts for rounds far ahead (and a
    few just inside the window), plus one oversized message when ``oversized``."""

    model_config = _STRICT

    count: Annotated[int, Field(ge=1, le=500)] = 20
    interval_ms: Annotated[int, Field(ge=10, le=60_000)] = 200
    oversized: bool = True


class RegistrationFloodParams(BaseModel):
    """Every ``interval_ms``: a batch of ``count`` validator registrations with ``stake`` and
    ``fee`` each, signed by this validator's reward account."""

    model_config = _STRICT

    count: Annotated[int, Field(ge=1, le=256)] = 8
    stake: Annotated[int, Field(ge=0, lt=2**63)] = 1
    fee: Annotated[int, Field(ge=0, lt=2**63)] = 0
    interval_ms: Annotated[int, Field(ge=10, le=60_000)] = 500


#: Every behaviour, its parameters, and what it does (one line, for CLIs and docs).
CATALOGUE: dict[str, tuple[type[BaseModel], str]] = {
    "equivocate": (NoParams, "a second, conflicting vote and proposal in every round"),
    "silent-leader": (NoParams, "never sends its proposals"),
    "withhold-votes": (NoParams, "never sends its votes"),
    "selective-proposal": (SelectiveParams, "sends each proposal to part of the validators"),
    "stale-fallback-qc": (
        NoParams,
        "as fallback leader after a TC, builds on an older QC than the TC's highest",
    ),
    "tc-high-qc-swap": (
        NoParams,
        "like stale-fallback-qc, and swaps the TC's unsigned high QC for that older QC",
    ),
    "tamper-certificate": (
        NoParams,
        "relays QCs and TCs with altered unsigned fields (height, padded signer bitmap)",
    ),
    "timestamp-skew": (SkewParams, "stamps its proposals far from the clock"),
    "invalid-batch": (
        NoParams,
        "proposes a batch with a badly signed transaction, served via FetchBatches and Sync",
    ),
    "replay": (ReplayParams, "re-sends its old votes, timeouts, proposals and evidence"),
    "wrong-chain": (WrongChainParams, "signs its messages for another chain id"),
    "flood": (FloodParams, "far-future votes and timeouts and oversized messages"),
    "unstake-escape": (
        NoParams,
        "equivocates and unstakes all its stake before the evidence commits",
    ),
    "registration-flood": (RegistrationFloodParams, "floods tiny validator registrations"),
}
BEHAVIOURS: tuple[str, ...] = tuple(CATALOGUE)


@dataclass(frozen=True)
class BehaviourSpec:
    """One behaviour with validated parameters (plain JSON values)."""

    name: str
    params: dict[str, Any]

    def model(self) -> BaseModel:
        return CATALOGUE[self.name][0].model_validate(self.params)


class BehaviourError(ConfigError):
    """A behaviour spec is malformed: ``field`` names the offending field, ``detail`` says what
    is wrong with it (the message is ``field FIELD: DETAIL``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field
        self.detail = message.removeprefix(f"field {field}: ")


def parse_behaviour(name: object, params: Mapping[str, object], where: str = "") -> BehaviourSpec:
    """Validate ``name`` and its ``params``; raises ``BehaviourError`` naming the field (with
    the ``where`` prefix, e.g. ``"params."``)."""
    if not isinstance(name, str) or name not in CATALOGUE:
        shown = repr(name)[:40]
        raise BehaviourError(
            f"field {where}behaviour: {shown} is no behaviour: use one of {', '.join(BEHAVIOURS)}",
            f"{where}behaviour",
        )
    model = CATALOGUE[name][0]
    try:
        validated = model.model_validate(dict(params))
    except ValidationError as error:
        message, field = describe(error, name, model, where)
        raise BehaviourError(message, field) from None
    return BehaviourSpec(name, validated.model_dump(exclude_none=True))
