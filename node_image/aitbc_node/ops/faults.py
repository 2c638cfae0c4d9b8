"""Injected faults of one node: what the fault API set, and the questions the runtime asks about
every message. Pure logic: no I/O, no clock reads except through the clocks it is given, and
thread-safe (one lock for changes; queries read an immutable snapshot).

Kinds and their parameters (a spec is ``{"kind": ..., <params>..., "duration_s": ...}`` or
``{"kind": ..., "params": {...}, "duration_s": ...}``; ``duration_s`` is optional):

- ``partition`` ``{peers: [ids]}``: drop all traffic, both ways, with those peers.
- ``delay`` ``{delay_ms, jitter_ms = 0, peers = all}``: hold each message ``delay_ms`` plus a
  uniform draw in ``[-jitter_ms, +jitter_ms]`` (never below 0). Several delays add up.
- ``loss`` ``{rate: 0..1, peers = all}``: drop each message with probability ``rate``.
- ``pause`` ``{}``: stop processing consensus events and timers until cleared (gRPC still
  answers status).
- ``byzantine`` ``{behaviour: NAME, <the behaviour's params>}``: switch the node into one of
  ``aitbc_node.byzantine.BEHAVIOURS`` (several byzantine faults stack, applied in the order they
  were set).
- ``equivocate`` ``{}``: kept as an alias of ``{"kind": "byzantine", "behaviour":
  "equivocate"}`` (its ``aitbc_fault_active`` label stays ``equivocate``).

Clearing every fault (``clear(None)``, HTTP ``DELETE /admin/faults``) heals the node.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aitbc_node.byzantine import BehaviourError, BehaviourSpec, parse_behaviour
from aitbc_node.errors import AitbcError
from aitbc_node.validation import describe

if TYPE_CHECKING:
    from aitbc_node.ops.metrics import NodeMetrics

FAULT_KINDS: tuple[str, ...] = ("partition", "delay", "loss", "pause", "byzantine", "equivocate")
#: Faults active at once, at most (a bound on memory for a hostile client).
MAX_ACTIVE_FAULTS = 64
#: Peer ids in one spec, at most (the staging network has 1,000 validators).
MAX_PEERS_PER_FAULT = 10_000
#: Longest delay or jitter (ms) and longest duration (s) a spec may ask for.
MAX_DELAY_MS = 60_000.0
MAX_DURATION_S = 7 * 24 * 3600.0


class FaultSpecError(AitbcError):
    """A fault spec is malformed; ``field`` names the offending field (dotted), if any."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class FaultLimitError(FaultSpecError):
    """Too many faults are active to add another."""


class FaultNotFoundError(AitbcError):
    """No active fault has the given id."""


# -- specs ----------------------------------------------------------------------------------
_PARAMS = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)
PeerId = Annotated[int, Field(ge=0, lt=2**32)]
PeerList = Annotated[list[PeerId], Field(min_length=1, max_length=MAX_PEERS_PER_FAULT)]
Milliseconds = Annotated[float, Field(ge=0.0, le=MAX_DELAY_MS)]


class PartitionParams(BaseModel):
    model_config = _PARAMS

    peers: PeerList


class DelayParams(BaseModel):
    model_config = _PARAMS

    delay_ms: Milliseconds
    jitter_ms: Milliseconds = 0.0
    peers: PeerList | None = None


class LossParams(BaseModel):
    model_config = _PARAMS

    rate: Annotated[float, Field(ge=0.0, le=1.0)]
    peers: PeerList | None = None


class NoParams(BaseModel):
    model_config = _PARAMS


PARAMS_BY_KIND: dict[str, type[BaseModel]] = {
    "partition": PartitionParams,
    "delay": DelayParams,
    "loss": LossParams,
    "pause": NoParams,
    "equivocate": NoParams,
}
#: The byzantine kind's params: ``behaviour`` plus that behaviour's own (``byzantine.CATALOGUE``).
BYZANTINE = "byzantine"
_TOP_LEVEL = ("kind", "duration_s", "params")


@dataclass(frozen=True)
class FaultSpec:
    """A validated spec: kind, its params (plain JSON values) and the optional duration."""

    kind: str
    params: dict[str, Any]
    duration_s: float | None


def parse_fault_spec(spec: object, peer_ids: Collection[int] | None = None) -> FaultSpec:
    """Validate one fault spec (a JSON object as a dict). ``peer_ids``: the ids a ``peers`` list
    may name (None: any). Raises ``FaultSpecError`` naming the field."""
    if not isinstance(spec, Mapping):
        raise FaultSpecError(
            f'a fault spec must be a JSON object like {{"kind": "partition", "peers": [1]}}, '
            f"not {type(spec).__name__}",
            field="<body>",
        )
    kind = spec.get("kind")
    if kind is None:
        raise FaultSpecError(
            f"field kind is missing: use one of {', '.join(FAULT_KINDS)}", field="kind"
        )
    if not isinstance(kind, str) or kind not in FAULT_KINDS:
        shown = repr(kind)[:40]
        raise FaultSpecError(
            f"field kind is {shown}: use one of {', '.join(FAULT_KINDS)}", field="kind"
        )
    duration_s = _duration(spec.get("duration_s"))
    if "params" in spec:
        params = spec["params"]
        prefix = "params."
        extra = [str(key) for key in spec if key not in _TOP_LEVEL]
        if extra:
            raise FaultSpecError(
                f"field {extra[0][:40]}: with a params object, give {kind}'s parameters inside "
                "it, not beside it",
                field=extra[0][:40],
            )
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise FaultSpecError(
                f"field params must be an object, not {type(params).__name__}", field="params"
            )
    else:
        params = {key: value for key, value in spec.items() if key not in _TOP_LEVEL}
        prefix = ""
    if kind == BYZANTINE:
        rest = {key: value for key, value in params.items() if key != "behaviour"}
        try:
            behaviour = parse_behaviour(params.get("behaviour"), rest, prefix)
        except BehaviourError as error:
            raise FaultSpecError(str(error), field=error.field) from None
        return FaultSpec(kind, {"behaviour": behaviour.name, **behaviour.params}, duration_s)
    model = PARAMS_BY_KIND[kind]
    try:
        validated = model.model_validate(params)
    except ValidationError as error:
        message, field = describe(error, kind, model, prefix)
        raise FaultSpecError(message, field=field) from None
    values = validated.model_dump(exclude_none=True)
    if "peers" in values:
        values["peers"] = sorted(set(values["peers"]))
        _check_peers(values["peers"], peer_ids, f"{prefix}peers")
    return FaultSpec(kind=kind, params=values, duration_s=duration_s)


def _duration(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultSpecError(
            f"field duration_s must be a number of seconds, not {type(value).__name__}",
            field="duration_s",
        )
    seconds = float(value)
    if not 0.0 < seconds <= MAX_DURATION_S:  # also false for NaN
        raise FaultSpecError(
            f"field duration_s is {value!r}: use 0 < duration_s <= {MAX_DURATION_S:.0f} "
            "(or leave it out for a fault that lasts until cleared)",
            field="duration_s",
        )
    return seconds


def _check_peers(peers: list[int], peer_ids: Collection[int] | None, where: str) -> None:
    if peer_ids is None:
        return
    for position, peer in enumerate(peers):
        if peer not in peer_ids:
            known = sorted(peer_ids)
            shown = f"{known[0]}..{known[-1]}" if known else "none"
            raise FaultSpecError(
                f"field {where}.{position}: {peer} is not a peer of this node (its peers: "
                f"{shown}, itself excluded)",
                field=f"{where}.{position}",
            )


# -- active faults --------------------------------------------------------------------------
@dataclass(frozen=True)
class ActiveFault:
    """A fault in force: ``since`` is wall-clock unix seconds; ``expires_at`` is on the
    controller's monotonic clock (None: until cleared)."""

    id: str
    kind: str
    params: dict[str, Any]
    since: float
    duration_s: float | None = None
    expires_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "params": {
                key: list(value) if isinstance(value, list) else value
                for key, value in self.params.items()
            },
            "since": self.since,
            "duration_s": self.duration_s,
        }


@dataclass(frozen=True)
class _Effects:
    """What the active faults mean for traffic, precomputed on every change."""

    partitioned: frozenset[int] = frozenset()
    #: (rate, peers or None for every peer)
    losses: tuple[tuple[float, frozenset[int] | None], ...] = ()
    #: (delay s, jitter s, peers or None for every peer)
    delays: tuple[tuple[float, float, frozenset[int] | None], ...] = ()
    paused: bool = False
    #: Byzantine behaviours, in the order their faults were applied.
    behaviours: tuple[BehaviourSpec, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)


def _effects(faults: Collection[ActiveFault]) -> _Effects:
    partitioned: set[int] = set()
    losses: list[tuple[float, frozenset[int] | None]] = []
    delays: list[tuple[float, float, frozenset[int] | None]] = []
    counts = dict.fromkeys(FAULT_KINDS, 0)
    behaviours: list[BehaviourSpec] = []
    for fault in faults:
        counts[fault.kind] += 1
        if fault.kind == BYZANTINE:
            params = dict(fault.params)
            behaviours.append(BehaviourSpec(str(params.pop("behaviour")), params))
        elif fault.kind == "equivocate":
            behaviours.append(BehaviourSpec("equivocate", {}))
        peers = fault.params.get("peers")
        scope = frozenset(peers) if peers is not None else None
        if fault.kind == "partition":
            partitioned.update(peers or ())
        elif fault.kind == "loss":
            losses.append((float(fault.params["rate"]), scope))
        elif fault.kind == "delay":
            delays.append(
                (
                    float(fault.params["delay_ms"]) / 1000.0,
                    float(fault.params.get("jitter_ms", 0.0)) / 1000.0,
                    scope,
                )
            )
    return _Effects(
        partitioned=frozenset(partitioned),
        losses=tuple(losses),
        delays=tuple(delays),
        paused=counts["pause"] > 0,
        behaviours=tuple(behaviours),
        counts=counts,
    )


class FaultController:
    """The node's active faults. ``apply``/``clear``/``expire`` change them (then call
    ``on_change`` and, when given, update ``aitbc_fault_active{kind}`` on ``metrics``); the
    runtime's per-message queries (``drops``, ``delay_s``, ``paused``, ``behaviours``) read a
    precomputed snapshot and take no lock.

    ``peer_ids``: the peers a ``peers`` list may name (None: any id). ``clock`` (monotonic
    seconds) stamps expiry times; ``wall_clock`` the ``since`` of a fault."""

    def __init__(
        self,
        *,
        peer_ids: Collection[int] | None = None,
        metrics: NodeMetrics | None = None,
        on_change: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        max_active: int = MAX_ACTIVE_FAULTS,
    ) -> None:
        self.on_change = on_change
        self._peer_ids = frozenset(peer_ids) if peer_ids is not None else None
        self._metrics = metrics
        self._clock = clock
        self._wall_clock = wall_clock
        self._max_active = max_active
        self._lock = threading.Lock()
        self._faults: dict[str, ActiveFault] = {}
        self._next_id = 1
        self._effects = _Effects()

    # -- changes ----------------------------------------------------------------------------
    def apply(self, spec: object) -> ActiveFault:
        """Validate ``spec`` and activate it. Raises ``FaultSpecError`` (naming the field) or
        ``FaultLimitError`` when ``max_active`` faults are already active."""
        parsed = parse_fault_spec(spec, self._peer_ids)
        with self._lock:
            if len(self._faults) >= self._max_active:
                raise FaultLimitError(
                    f"{len(self._faults)} faults are active, the most this node holds: clear "
                    "some (DELETE /admin/faults/ID) or heal all (DELETE /admin/faults) first",
                    field=None,
                )
            now = self._clock()
            fault = ActiveFault(
                id=f"{parsed.kind}-{self._next_id}",
                kind=parsed.kind,
                params=parsed.params,
                since=self._wall_clock(),
                duration_s=parsed.duration_s,
                expires_at=None if parsed.duration_s is None else now + parsed.duration_s,
            )
            self._next_id += 1
            self._faults[fault.id] = fault
            self._refresh()
        self._notify()
        return fault

    def clear(self, fault_id: str | None = None) -> list[ActiveFault]:
        """Remove one fault by id, or every fault (heal) when ``fault_id`` is None. Returns the
        removed faults. Raises ``FaultNotFoundError`` for an unknown id."""
        with self._lock:
            if fault_id is None:
                removed = list(self._faults.values())
                self._faults.clear()
            else:
                fault = self._faults.pop(fault_id, None)
                if fault is None:
                    known = ", ".join(self._faults) or "none"
                    raise FaultNotFoundError(
                        f"no active fault has id {fault_id[:80]!r} (active: {known}): list them "
                        "with GET /admin/faults"
                    )
                removed = [fault]
            self._refresh()
        self._notify()
        return removed

    def expire(self, now_monotonic: float) -> list[ActiveFault]:
        """Remove the faults whose duration has run out by ``now_monotonic`` (the clock given
        to the controller). Returns them; calls ``on_change`` only when something expired."""
        with self._lock:
            expired = [
                fault
                for fault in self._faults.values()
                if fault.expires_at is not None and fault.expires_at <= now_monotonic
            ]
            for fault in expired:
                del self._faults[fault.id]
            if expired:
                self._refresh()
        if expired:
            self._notify()
        return expired

    def active(self) -> list[ActiveFault]:
        """The active faults, oldest first."""
        with self._lock:
            return list(self._faults.values())

    # -- per-message queries ----------------------------------------------------------------
    def drops(self, peer: int, rng: random.Random) -> bool:
        """Whether to drop a message to or from ``peer``: always when partitioned from it,
        else with each applicable loss fault's rate (one ``rng.random()`` draw per fault)."""
        effects = self._effects
        if peer in effects.partitioned:
            return True
        for rate, peers in effects.losses:
            if (peers is None or peer in peers) and rng.random() < rate:
                return True
        return False

    def delay_s(self, peer: int, rng: random.Random) -> float:
        """Seconds to hold a message to or from ``peer``: the sum over applicable delay faults
        of delay + uniform(-jitter, +jitter), never below 0."""
        total = 0.0
        for delay, jitter, peers in self._effects.delays:
            if peers is None or peer in peers:
                total += delay + (rng.uniform(-jitter, jitter) if jitter > 0.0 else 0.0)
        return total if total > 0.0 else 0.0

    @property
    def paused(self) -> bool:
        return self._effects.paused

    @property
    def behaviours(self) -> tuple[BehaviourSpec, ...]:
        """The byzantine behaviours in force, in the order they were applied."""
        return self._effects.behaviours

    @property
    def equivocating(self) -> bool:
        return any(spec.name == "equivocate" for spec in self._effects.behaviours)

    @property
    def partitioned_peers(self) -> frozenset[int]:
        return self._effects.partitioned

    # -- internals --------------------------------------------------------------------------
    def _refresh(self) -> None:
        """Recompute the snapshot (the lock is held)."""
        self._effects = _effects(self._faults.values())
        if self._metrics is not None:
            for kind, count in self._effects.counts.items():
                self._metrics.set_fault_active(kind, count)

    def _notify(self) -> None:
        callback = self.on_change
        if callback is not None:
            callback()
