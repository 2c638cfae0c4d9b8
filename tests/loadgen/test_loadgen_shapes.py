"""Load shapes: rates at boundaries, their integrals and inverses, and parameter errors."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgen.errors import ShapeError
from loadgen.shapes import (
    ConstantShape,
    LoadShape,
    RampShape,
    SpikeShape,
    Step,
    StepShape,
    build_shape,
    parse_shape_params,
    time_to_offer,
)

STEPS = StepShape((Step(100, 10), Step(300, 5), Step(0, 5), Step(50, 2)))
RAMP = RampShape(from_tps=100, to_tps=500, duration_s=20)
SPIKE = SpikeShape(base_tps=100, at_s=10, duration_s=5, tps=1000)


def test_constant_shape() -> None:
    shape = ConstantShape(250)
    assert shape.tps_at(-0.001) == 0
    assert shape.tps_at(0) == 250
    assert shape.tps_at(1e6) == 250
    assert shape.offered_until(-5) == 0
    assert shape.offered_until(4) == 1000


def test_step_shape_boundaries_belong_to_the_next_step() -> None:
    assert STEPS.tps_at(-1) == 0
    assert STEPS.tps_at(0) == 100
    assert STEPS.tps_at(9.999) == 100
    assert STEPS.tps_at(10) == 300
    assert STEPS.tps_at(15) == 0
    assert STEPS.tps_at(20) == 50
    assert STEPS.tps_at(22) == 50  # the last step's rate holds
    assert STEPS.tps_at(1000) == 50
    assert STEPS.horizon_s == 22
    assert STEPS.peak_tps == 300


def test_step_shape_integral() -> None:
    assert STEPS.offered_until(10) == pytest.approx(1000)
    assert STEPS.offered_until(15) == pytest.approx(2500)
    assert STEPS.offered_until(20) == pytest.approx(2500)  # the zero step offers nothing
    assert STEPS.offered_until(22) == pytest.approx(2600)
    assert STEPS.offered_until(32) == pytest.approx(3100)


def test_ramp_shape_is_linear_then_holds() -> None:
    assert RAMP.tps_at(-1) == 0
    assert RAMP.tps_at(0) == 100
    assert RAMP.tps_at(10) == pytest.approx(300)
    assert RAMP.tps_at(20) == 500
    assert RAMP.tps_at(60) == 500
    assert RAMP.offered_until(20) == pytest.approx((100 + 500) / 2 * 20)
    assert RAMP.offered_until(30) == pytest.approx(6000 + 5000)
    falling = RampShape(from_tps=400, to_tps=0, duration_s=4)
    assert falling.tps_at(2) == pytest.approx(200)
    assert falling.offered_until(100) == pytest.approx(800)
    assert time_to_offer(falling, 801) is None


def test_spike_window_is_half_open() -> None:
    assert SPIKE.tps_at(9.999) == 100
    assert SPIKE.tps_at(10) == 1000
    assert SPIKE.tps_at(14.999) == 1000
    assert SPIKE.tps_at(15) == 100
    assert SPIKE.offered_until(10) == pytest.approx(1000)
    assert SPIKE.offered_until(15) == pytest.approx(6000)
    assert SPIKE.offered_until(20) == pytest.approx(6500)
    assert SPIKE.peak_tps == 1000


def _numeric_integral(shape: LoadShape, upto: float, pieces: int = 4000) -> float:
    width = upto / pieces
    return sum(shape.tps_at((i + 0.5) * width) * width for i in range(pieces))


@pytest.mark.parametrize("shape", [ConstantShape(70), STEPS, RAMP, SPIKE], ids=lambda s: s.name)
@pytest.mark.parametrize("upto", [0.5, 7.3, 12.0, 21.9, 40.0])
def test_integral_matches_the_rate(shape: LoadShape, upto: float) -> None:
    assert shape.offered_until(upto) == pytest.approx(_numeric_integral(shape, upto), rel=2e-3)


@settings(max_examples=200, deadline=None)
@given(
    shape=st.sampled_from([ConstantShape(70), STEPS, RAMP, SPIKE]),
    transactions=st.floats(min_value=0.001, max_value=50_000),
)
def test_time_to_offer_inverts_the_integral(shape: LoadShape, transactions: float) -> None:
    moment = time_to_offer(shape, transactions)
    assert moment is not None
    assert shape.offered_until(moment) >= transactions - 1e-6
    assert shape.offered_until(max(0.0, moment - 1e-5)) < transactions


def test_time_to_offer_edges() -> None:
    assert time_to_offer(ConstantShape(10), 0) == 0
    assert time_to_offer(ConstantShape(0), 1) is None
    stopping = StepShape((Step(10, 1), Step(0, 1)))
    assert time_to_offer(stopping, 10) == pytest.approx(1, abs=1e-5)
    assert time_to_offer(stopping, 10.5) is None
    # Inside the zero step nothing more is offered: the 2501st tx waits for the 50 tx/s step.
    moment = time_to_offer(STEPS, 2501)
    assert moment == pytest.approx(20.02, abs=1e-5)


def test_build_shape_from_params() -> None:
    assert build_shape("constant", {}, 40) == ConstantShape(40)
    step = build_shape("step", {"steps": [{"tps": 5, "duration_s": 1}]}, 40)
    assert step == StepShape((Step(5, 1),))
    ramp = build_shape("ramp", {"from_tps": 0, "to_tps": 10, "duration_s": 3}, 40)
    assert ramp == RampShape(0, 10, 3)
    spike = build_shape("spike", {"at_s": 1, "duration_s": 2, "tps": 9}, 40)
    assert spike == SpikeShape(base_tps=40, at_s=1, duration_s=2, tps=9)


@pytest.mark.parametrize(
    ("kind", "params", "variable", "fragment"),
    [
        ("wave", {}, "AITBC_SHAPE", "constant, step, ramp, spike"),
        ("constant", {"tps": 4}, "AITBC_SHAPE_PARAMS", "tps"),
        ("step", {"steps": []}, "AITBC_SHAPE_PARAMS", "steps"),
        ("step", {"steps": [{"tps": -1, "duration_s": 1}]}, "AITBC_SHAPE_PARAMS", "steps.0.tps"),
        ("step", {"steps": [{"tps": 1, "duration_s": 0}]}, "AITBC_SHAPE_PARAMS", "duration_s"),
        ("ramp", {"from_tps": 1, "to_tps": 2}, "AITBC_SHAPE_PARAMS", "duration_s"),
        ("ramp", {"from_tps": 1, "to_tps": 2, "duration_s": 1, "x": 1}, "AITBC_SHAPE_PARAMS", "x"),
        ("spike", {"at_s": -1, "duration_s": 1, "tps": 1}, "AITBC_SHAPE_PARAMS", "at_s"),
    ],
)
def test_bad_shapes_name_the_variable(
    kind: str, params: dict[str, object], variable: str, fragment: str
) -> None:
    with pytest.raises(ShapeError) as raised:
        build_shape(kind, params, 10)
    message = str(raised.value)
    assert message.startswith(f"{variable}=")
    assert fragment in message


@pytest.mark.parametrize("text", ["{", "[1, 2]", '"ramp"'])
def test_bad_shape_json_names_the_variable(text: str) -> None:
    with pytest.raises(ShapeError, match=r"^AITBC_SHAPE_PARAMS="):
        parse_shape_params(text)


def test_base_rate_must_be_finite() -> None:
    with pytest.raises(ShapeError, match=r"^AITBC_TPS="):
        build_shape("constant", {}, math.inf)
