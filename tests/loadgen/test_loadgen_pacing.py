"""The pacing controller: slot due times follow the shape; late slots are missed, not sent."""

from __future__ import annotations

import pytest

from loadgen.errors import LoadgenError
from loadgen.pacing import PacingController
from loadgen.shapes import ConstantShape, RampShape, Step, StepShape

T0 = 1000.0


def test_slots_are_due_when_the_shape_has_offered_a_batch() -> None:
    pacer = PacingController(ConstantShape(100), batch_size=10)
    claims = [pacer.claim(T0) for _ in range(5)]
    assert [c.index for c in claims if c] == [0, 1, 2, 3, 4]
    assert [c.due_at - T0 for c in claims if c] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert pacer.slots_due(T0 + 0.35) == 3
    assert pacer.offered_txs(T0 + 0.35) == 30
    assert pacer.target_tps(T0 + 1) == 100


def test_rate_share_divides_the_rate_between_workers() -> None:
    pacer = PacingController(ConstantShape(100), batch_size=10, rate_share=0.25)
    first = pacer.claim(T0)
    assert first is not None
    assert first.due_at - T0 == pytest.approx(0.4)
    assert pacer.offered_txs(T0 + 10) == 250
    assert pacer.target_tps(T0) == 25


def test_a_slot_due_time_satisfies_slots_due() -> None:
    pacer = PacingController(RampShape(10, 1000, 10), batch_size=7)
    pacer.start(T0)
    for index in range(0, 600, 37):
        due = pacer.due_at(index)
        assert due is not None
        assert pacer.slots_due(due) >= index + 1
        assert pacer.slots_due(due - 1e-4) <= index


def test_late_slots_are_missed_and_counted() -> None:
    pacer = PacingController(ConstantShape(100), batch_size=10, max_lateness_s=1.0)
    assert pacer.claim(T0) is not None  # slot 0, starts the schedule
    # 5 s later: slots due by T0+4 (40 of them, minus the one claimed) are too late.
    claim = pacer.claim(T0 + 5)
    assert claim is not None
    assert pacer.missed_slots == 39
    assert claim.index == 40
    assert claim.due_at == pytest.approx(T0 + 4.1)
    # A slot within the lateness allowance is still sent.
    assert pacer.claim(T0 + 5) is not None
    assert pacer.missed_slots == 39
    assert pacer.offered_txs(T0 + 5) == 500


def test_no_claim_when_the_shape_stops() -> None:
    pacer = PacingController(StepShape((Step(20, 1), Step(0, 1))), batch_size=10)
    assert pacer.claim(T0) is not None
    assert pacer.claim(T0) is not None
    assert pacer.claim(T0) is None
    assert pacer.claimed_slots == 2


def test_unstarted_controller_offers_nothing() -> None:
    pacer = PacingController(ConstantShape(100), batch_size=10)
    assert pacer.slots_due(T0) == 0
    assert pacer.target_tps(T0) == 0
    with pytest.raises(LoadgenError, match="before start"):
        pacer.due_at(0)


@pytest.mark.parametrize(
    "kwargs", [{"batch_size": 0}, {"rate_share": 0.0}, {"rate_share": 2.0}, {"max_lateness_s": 0}]
)
def test_bad_pacing_arguments(kwargs: dict[str, float]) -> None:
    arguments: dict[str, float] = {"batch_size": 10, **kwargs}
    with pytest.raises(LoadgenError):
        PacingController(ConstantShape(1), **arguments)  # type: ignore[arg-type]


def test_unclaimed_slots_count_as_missed_at_the_end() -> None:
    pacer = PacingController(ConstantShape(100), batch_size=10)
    pacer.claim(T0)
    pacer.claim(T0)
    assert pacer.abandon_unclaimed(T0 + 1.0) == 8  # 10 due, 2 claimed
    assert pacer.missed_slots == 8
    assert pacer.abandon_unclaimed(T0 + 1.0) == 0


def test_returned_claims_count_as_missed_once_due() -> None:
    pacer = PacingController(ConstantShape(100), batch_size=10)
    early, late = pacer.claim(T0), pacer.claim(T0)
    assert early is not None and late is not None
    pacer.return_unsent(early)  # due at T0+0.1
    pacer.return_unsent(late)  # due at T0+0.2
    assert pacer.abandon_unclaimed(T0 + 0.15) == 1  # only the due one was offered
    assert pacer.abandon_unclaimed(T0 + 0.25) == 1
    assert pacer.missed_slots == 2
