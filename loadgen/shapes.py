"""Load shapes: the offered transaction rate as a pure function of elapsed time.

Users stay constant during a run; only the rate changes. Every shape gives
``tps_at(t)`` (tx/s at ``t`` seconds after the load started) and ``offered_until(t)`` (the
integral of the rate over ``[0, t]``: how many transactions the schedule has asked for by
then). ``time_to_offer(shape, n)`` inverts the integral, so a pacer knows when the ``n``-th
transaction is due.

=========  ======================================================  ==========================
shape      AITBC_SHAPE_PARAMS (JSON)                               rate
=========  ======================================================  ==========================
constant   ``{}``                                                  AITBC_TPS throughout
step       ``{"steps": [{"tps": 100, "duration_s": 30}, ...]}``    each step in turn, then the
                                                                   last step's rate
ramp       ``{"from_tps": 0, "to_tps": 500, "duration_s": 60}``    linear, then ``to_tps``
spike      ``{"at_s": 20, "duration_s": 5, "tps": 1000}``          AITBC_TPS, ``tps`` inside
                                                                   ``[at_s, at_s+duration_s)``
=========  ======================================================  ==========================
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loadgen.errors import ShapeError

ShapeName = Literal["constant", "step", "ramp", "spike"]
SHAPE_NAMES: tuple[str, ...] = ("constant", "step", "ramp", "spike")
#: time_to_offer's precision (seconds).
_TIME_PRECISION_S = 1e-6


class LoadShape(Protocol):
    """The offered rate over time (a pure function of elapsed seconds; t < 0 offers nothing)."""

    @property
    def name(self) -> str: ...

    @property
    def horizon_s(self) -> float:
        """From this elapsed time on the rate stays ``final_tps``."""
        ...

    @property
    def final_tps(self) -> float: ...

    @property
    def peak_tps(self) -> float: ...

    def tps_at(self, elapsed_s: float) -> float: ...

    def offered_until(self, elapsed_s: float) -> float: ...


def _overlap(start: float, end: float, upto: float) -> float:
    """Length of ``[start, end) ∩ [0, upto)``."""
    return max(0.0, min(end, upto) - max(start, 0.0))


@dataclass(frozen=True)
class ConstantShape:
    tps: float

    name = "constant"

    @property
    def horizon_s(self) -> float:
        return 0.0

    @property
    def final_tps(self) -> float:
        return self.tps

    @property
    def peak_tps(self) -> float:
        return self.tps

    def tps_at(self, elapsed_s: float) -> float:
        return self.tps if elapsed_s >= 0 else 0.0

    def offered_until(self, elapsed_s: float) -> float:
        return self.tps * max(elapsed_s, 0.0)


@dataclass(frozen=True)
class Step:
    tps: float
    duration_s: float


@dataclass(frozen=True)
class StepShape:
    """Each step's rate for its duration, in order; after the last step its rate holds (add a
    final ``{"tps": 0, ...}`` step to stop)."""

    steps: tuple[Step, ...]

    name = "step"

    @property
    def horizon_s(self) -> float:
        return sum(step.duration_s for step in self.steps)

    @property
    def final_tps(self) -> float:
        return self.steps[-1].tps

    @property
    def peak_tps(self) -> float:
        return max(step.tps for step in self.steps)

    def tps_at(self, elapsed_s: float) -> float:
        if elapsed_s < 0:
            return 0.0
        start = 0.0
        for step in self.steps:
            if elapsed_s < start + step.duration_s:
                return step.tps
            start += step.duration_s
        return self.final_tps

    def offered_until(self, elapsed_s: float) -> float:
        total = 0.0
        start = 0.0
        for step in self.steps:
            total += step.tps * _overlap(start, start + step.duration_s, elapsed_s)
            start += step.duration_s
        return total + self.final_tps * max(0.0, elapsed_s - start)


@dataclass(frozen=True)
class RampShape:
    """``from_tps`` rising (or falling) linearly to ``to_tps`` over ``duration_s``, then
    ``to_tps``."""

    from_tps: float
    to_tps: float
    duration_s: float

    name = "ramp"

    @property
    def horizon_s(self) -> float:
        return self.duration_s

    @property
    def final_tps(self) -> float:
        return self.to_tps

    @property
    def peak_tps(self) -> float:
        return max(self.from_tps, self.to_tps)

    def tps_at(self, elapsed_s: float) -> float:
        if elapsed_s < 0:
            return 0.0
        if elapsed_s >= self.duration_s:
            return self.to_tps
        return self.from_tps + (self.to_tps - self.from_tps) * elapsed_s / self.duration_s

    def offered_until(self, elapsed_s: float) -> float:
        inside = min(max(elapsed_s, 0.0), self.duration_s)
        slope = (self.to_tps - self.from_tps) / self.duration_s
        ramp_part = self.from_tps * inside + slope * inside * inside / 2.0
        return ramp_part + self.to_tps * max(0.0, elapsed_s - self.duration_s)


@dataclass(frozen=True)
class SpikeShape:
    """``base_tps`` (AITBC_TPS), replaced by ``tps`` during ``[at_s, at_s + duration_s)``."""

    base_tps: float
    at_s: float
    duration_s: float
    tps: float

    name = "spike"

    @property
    def horizon_s(self) -> float:
        return self.at_s + self.duration_s

    @property
    def final_tps(self) -> float:
        return self.base_tps

    @property
    def peak_tps(self) -> float:
        return max(self.base_tps, self.tps)

    def tps_at(self, elapsed_s: float) -> float:
        if elapsed_s < 0:
            return 0.0
        if self.at_s <= elapsed_s < self.at_s + self.duration_s:
            return self.tps
        return self.base_tps

    def offered_until(self, elapsed_s: float) -> float:
        inside = _overlap(self.at_s, self.at_s + self.duration_s, elapsed_s)
        return self.base_tps * max(elapsed_s, 0.0) + (self.tps - self.base_tps) * inside


def time_to_offer(shape: LoadShape, transactions: float) -> float | None:
    """The earliest elapsed time at which ``shape`` has offered ``transactions``; None when it
    never will (its rate ends at 0 first). Bisection on the non-decreasing integral."""
    if transactions <= 0:
        return 0.0
    horizon = shape.horizon_s
    offered_at_horizon = shape.offered_until(horizon)
    if offered_at_horizon < transactions:
        if shape.final_tps <= 0:
            return None
        return horizon + (transactions - offered_at_horizon) / shape.final_tps
    low, high = 0.0, horizon
    while high - low > _TIME_PRECISION_S:
        middle = (low + high) / 2.0
        if shape.offered_until(middle) >= transactions:
            high = middle
        else:
            low = middle
    return high


# -- parsing ---------------------------------------------------------------------------------
_STRICT = ConfigDict(extra="forbid", frozen=True)
_Rate = Field(ge=0, allow_inf_nan=False)
_Duration = Field(gt=0, allow_inf_nan=False)


class _StepParams(BaseModel):
    model_config = _STRICT
    tps: float = _Rate
    duration_s: float = _Duration


class _StepShapeParams(BaseModel):
    model_config = _STRICT
    steps: list[_StepParams] = Field(min_length=1)


class _RampShapeParams(BaseModel):
    model_config = _STRICT
    from_tps: float = _Rate
    to_tps: float = _Rate
    duration_s: float = _Duration


class _SpikeShapeParams(BaseModel):
    model_config = _STRICT
    at_s: float = Field(ge=0, allow_inf_nan=False)
    duration_s: float = _Duration
    tps: float = _Rate


def _validated(model: type[BaseModel], params: Mapping[str, Any], kind: str, source: str) -> Any:
    try:
        return model.model_validate(params)
    except ValidationError as error:
        problems = "; ".join(
            f"field {'.'.join(str(part) for part in item['loc']) or '<root>'}: {item['msg']}"
            for item in error.errors()
        )
        raise ShapeError(
            f"{source}={json.dumps(params)!s} is wrong for shape {kind!r}: {problems}. "
            f"See loadgen/README.md for each shape's parameters"
        ) from None


def parse_shape_params(text: str, *, source: str = "AITBC_SHAPE_PARAMS") -> dict[str, Any]:
    """The JSON object in ``text`` (empty text: ``{}``)."""
    if not text.strip():
        return {}
    try:
        params = json.loads(text)
    except json.JSONDecodeError as error:
        raise ShapeError(
            f"{source}={text!r} is not valid JSON ({error.msg} at column {error.colno}): "
            'give a JSON object such as {"from_tps": 0, "to_tps": 500, "duration_s": 60}'
        ) from None
    if not isinstance(params, dict):
        raise ShapeError(f"{source}={text!r} is not a JSON object: wrap the parameters in {{}}")
    return params


def build_shape(
    kind: str,
    params: Mapping[str, Any],
    base_tps: float,
    *,
    kind_source: str = "AITBC_SHAPE",
    params_source: str = "AITBC_SHAPE_PARAMS",
) -> LoadShape:
    """The shape ``kind`` with ``params`` (see the module docstring); ``base_tps`` is the rate
    of ``constant`` and the base of ``spike``. Raises ``ShapeError`` naming the variable."""
    if not math.isfinite(base_tps) or base_tps < 0:
        raise ShapeError(f"AITBC_TPS={base_tps!r} is not a rate: use a finite number >= 0")
    if kind == "constant":
        _validated(_StrictEmpty, params, kind, params_source)
        return ConstantShape(tps=base_tps)
    if kind == "step":
        step_params = _validated(_StepShapeParams, params, kind, params_source)
        return StepShape(steps=tuple(Step(s.tps, s.duration_s) for s in step_params.steps))
    if kind == "ramp":
        ramp = _validated(_RampShapeParams, params, kind, params_source)
        return RampShape(from_tps=ramp.from_tps, to_tps=ramp.to_tps, duration_s=ramp.duration_s)
    if kind == "spike":
        spike = _validated(_SpikeShapeParams, params, kind, params_source)
        return SpikeShape(
            base_tps=base_tps, at_s=spike.at_s, duration_s=spike.duration_s, tps=spike.tps
        )
    raise ShapeError(f"{kind_source}={kind!r} is not a shape: use one of {', '.join(SHAPE_NAMES)}")


class _StrictEmpty(BaseModel):
    model_config = _STRICT
