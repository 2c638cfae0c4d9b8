"""Fault state: validation naming the field, apply/clear/expire, and what the runtime's
per-message queries answer (with seeded random generators)."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from aitbc_node.ops.faults import (
    FaultController,
    FaultLimitError,
    FaultNotFoundError,
    FaultSpecError,
)
from aitbc_node.ops.metrics import NodeMetrics
from prometheus_client import CollectorRegistry


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(100.0)


@pytest.fixture
def controller(clock: FakeClock) -> FaultController:
    return FaultController(clock=clock, wall_clock=lambda: 1_700_000_000.0)


# -- validation -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({}, "kind"),
        ({"kind": "meteor"}, "kind"),
        ({"kind": 3}, "kind"),
        ({"kind": "partition"}, "peers"),
        ({"kind": "partition", "peers": []}, "peers"),
        ({"kind": "partition", "peers": [1, "2"]}, "peers.1"),
        ({"kind": "partition", "peers": [-1]}, "peers.0"),
        ({"kind": "partition", "peers": [True]}, "peers.0"),
        ({"kind": "partition", "peers": 1}, "peers"),
        ({"kind": "delay"}, "delay_ms"),
        ({"kind": "delay", "delay_ms": -5}, "delay_ms"),
        ({"kind": "delay", "delay_ms": 10, "jitter_ms": 1e9}, "jitter_ms"),
        ({"kind": "delay", "delay_ms": "10"}, "delay_ms"),
        ({"kind": "loss", "rate": 1.5}, "rate"),
        ({"kind": "loss", "rate": float("nan")}, "rate"),
        ({"kind": "loss", "rate": 0.1, "peers": [1], "extra": 1}, "extra"),
        ({"kind": "pause", "peers": [1]}, "peers"),
        ({"kind": "pause", "duration_s": 0}, "duration_s"),
        ({"kind": "pause", "duration_s": "5"}, "duration_s"),
        ({"kind": "pause", "duration_s": float("inf")}, "duration_s"),
        ({"kind": "loss", "params": {"rate": 2}}, "params.rate"),
        ({"kind": "loss", "params": [0.5]}, "params"),
        ({"kind": "loss", "params": {"rate": 0.5}, "rate": 0.5}, "rate"),
    ],
)
def test_bad_specs_name_the_field(
    controller: FaultController, spec: dict[str, Any], field: str
) -> None:
    with pytest.raises(FaultSpecError) as caught:
        controller.apply(spec)
    assert caught.value.field == field
    assert field.split(".")[0] in str(caught.value)
    assert controller.active() == []


def test_a_spec_that_is_not_an_object_is_rejected(controller: FaultController) -> None:
    for spec in ([1, 2], "pause", None, 3):
        with pytest.raises(FaultSpecError) as caught:
            controller.apply(spec)
        assert caught.value.field == "<body>"


def test_peers_are_checked_against_the_nodes_peers(clock: FakeClock) -> None:
    controller = FaultController(peer_ids={0, 2, 3}, clock=clock)
    with pytest.raises(FaultSpecError, match=r"1 is not a peer of this node") as caught:
        controller.apply({"kind": "partition", "peers": [3, 1]})
    assert caught.value.field == "peers.0"  # peers are sorted: [1, 3]
    controller.apply({"kind": "partition", "peers": [3, 2, 3]})
    assert controller.active()[0].params == {"peers": [2, 3]}


# -- apply / clear / expire -----------------------------------------------------------------
def test_apply_records_the_fault(controller: FaultController) -> None:
    fault = controller.apply({"kind": "delay", "delay_ms": 50, "peers": [2], "duration_s": 30})
    assert fault.id == "delay-1"
    assert fault.kind == "delay"
    assert fault.params == {"delay_ms": 50.0, "jitter_ms": 0.0, "peers": [2]}
    assert fault.since == 1_700_000_000.0
    assert fault.duration_s == 30.0
    assert fault.expires_at == 130.0
    assert controller.active() == [fault]
    assert fault.to_json() == {
        "id": "delay-1",
        "kind": "delay",
        "params": {"delay_ms": 50.0, "jitter_ms": 0.0, "peers": [2]},
        "since": 1_700_000_000.0,
        "duration_s": 30.0,
    }


def test_the_params_object_form_equals_the_flat_form(controller: FaultController) -> None:
    flat = controller.apply({"kind": "loss", "rate": 0.25, "peers": [1]})
    nested = controller.apply({"kind": "loss", "params": {"rate": 0.25, "peers": [1]}})
    assert flat.params == nested.params
    assert controller.apply({"kind": "pause", "params": None}).kind == "pause"


def test_clear_one_or_all(controller: FaultController) -> None:
    pause = controller.apply({"kind": "pause"})
    cut = controller.apply({"kind": "partition", "peers": [1]})
    assert [f.id for f in controller.clear(pause.id)] == [pause.id]
    assert controller.active() == [cut]
    assert not controller.paused
    with pytest.raises(FaultNotFoundError, match=r"'pause-1'.*active: partition-2"):
        controller.clear(pause.id)
    controller.apply({"kind": "equivocate"})
    assert {f.kind for f in controller.clear(None)} == {"partition", "equivocate"}
    assert controller.active() == []
    assert controller.clear(None) == []


def test_expire_drops_faults_whose_duration_ran_out(
    controller: FaultController, clock: FakeClock
) -> None:
    calls: list[int] = []
    controller.on_change = lambda: calls.append(1)
    short = controller.apply({"kind": "pause", "duration_s": 5})
    clock.now = 102.0
    longer = controller.apply({"kind": "partition", "peers": [1], "duration_s": 10})
    forever = controller.apply({"kind": "equivocate"})
    assert len(calls) == 3

    assert controller.expire(104.999) == []
    assert len(calls) == 3  # nothing expired: no change reported
    assert controller.expire(105.0) == [short]
    assert not controller.paused
    assert controller.expire(200.0) == [longer]
    assert controller.active() == [forever]
    assert len(calls) == 5


def test_on_change_and_the_fault_active_gauge_follow_every_change(clock: FakeClock) -> None:
    registry = CollectorRegistry()
    metrics = NodeMetrics(registry, validator_index=0, process_metrics=False)
    seen: list[tuple[bool, bool]] = []
    controller = FaultController(metrics=metrics, clock=clock)
    controller.on_change = lambda: seen.append((controller.paused, controller.equivocating))

    def gauge(kind: str) -> float | None:
        return registry.get_sample_value("aitbc_fault_active", {"kind": kind})

    assert gauge("partition") == 0.0  # series exist before any fault
    a = controller.apply({"kind": "partition", "peers": [1]})
    controller.apply({"kind": "partition", "peers": [2]})
    controller.apply({"kind": "equivocate"})
    assert gauge("partition") == 2.0
    assert gauge("equivocate") == 1.0
    assert seen[-1] == (False, True)
    controller.clear(a.id)
    assert gauge("partition") == 1.0
    controller.clear(None)
    assert all(gauge(kind) == 0.0 for kind in ("partition", "equivocate", "pause"))
    assert seen[-1] == (False, False)
    assert len(seen) == 5


def test_the_number_of_active_faults_is_bounded(clock: FakeClock) -> None:
    controller = FaultController(clock=clock, max_active=2)
    controller.apply({"kind": "pause"})
    controller.apply({"kind": "pause"})
    with pytest.raises(FaultLimitError, match="2 faults are active"):
        controller.apply({"kind": "pause"})
    controller.clear(None)
    controller.apply({"kind": "pause"})


# -- per-message queries --------------------------------------------------------------------
def test_partition_drops_only_the_listed_peers_and_draws_no_randomness(
    controller: FaultController,
) -> None:
    controller.apply({"kind": "partition", "peers": [1, 3]})
    rng = random.Random(7)
    state = rng.getstate()
    assert controller.drops(1, rng)
    assert controller.drops(3, rng)
    assert not controller.drops(2, rng)
    assert rng.getstate() == state
    assert controller.partitioned_peers == frozenset({1, 3})
    assert controller.delay_s(1, rng) == 0.0


def test_loss_drops_at_its_rate_reproducibly_with_a_seed(controller: FaultController) -> None:
    controller.apply({"kind": "loss", "rate": 0.3})
    draws = 4000
    rng = random.Random(42)
    dropped = [controller.drops(2, rng) for _ in range(draws)]
    rng_again = random.Random(42)
    assert dropped == [controller.drops(2, rng_again) for _ in range(draws)]
    assert 0.27 < sum(dropped) / draws < 0.33


def test_loss_respects_its_peer_scope_and_its_bounds(controller: FaultController) -> None:
    rng = random.Random(1)
    never = controller.apply({"kind": "loss", "rate": 0.0})
    assert not any(controller.drops(1, rng) for _ in range(500))
    controller.clear(never.id)
    controller.apply({"kind": "loss", "rate": 1.0, "peers": [2]})
    assert all(controller.drops(2, rng) for _ in range(500))
    assert not any(controller.drops(1, rng) for _ in range(500))


def test_delay_adds_jitter_within_bounds(controller: FaultController) -> None:
    controller.apply({"kind": "delay", "delay_ms": 100, "jitter_ms": 20})
    rng = random.Random(3)
    samples = [controller.delay_s(1, rng) for _ in range(2000)]
    assert min(samples) >= 0.08
    assert max(samples) <= 0.12
    assert abs(sum(samples) / len(samples) - 0.1) < 0.002
    rng_again = random.Random(3)
    assert samples == [controller.delay_s(1, rng_again) for _ in range(2000)]


def test_delays_add_up_per_peer_and_never_go_negative(controller: FaultController) -> None:
    controller.apply({"kind": "delay", "delay_ms": 50})
    controller.apply({"kind": "delay", "delay_ms": 30, "peers": [2]})
    rng = random.Random(0)
    assert controller.delay_s(1, rng) == pytest.approx(0.05)
    assert controller.delay_s(2, rng) == pytest.approx(0.08)
    controller.clear(None)
    controller.apply({"kind": "delay", "delay_ms": 1, "jitter_ms": 100})
    assert min(controller.delay_s(1, rng) for _ in range(500)) == 0.0


def test_pause_and_equivocate_flags(controller: FaultController) -> None:
    assert not controller.paused
    assert not controller.equivocating
    pause = controller.apply({"kind": "pause"})
    controller.apply({"kind": "equivocate"})
    assert controller.paused
    assert controller.equivocating
    controller.clear(pause.id)
    assert not controller.paused
    assert controller.equivocating


def test_concurrent_changes_and_queries_stay_consistent(clock: FakeClock) -> None:
    controller = FaultController(clock=clock, max_active=10_000)
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        try:
            mine: list[str] = []
            for step in range(200):
                if step % 3 == 2:
                    controller.clear(mine.pop())
                else:
                    fault = controller.apply({"kind": "partition", "peers": [seed]})
                    mine.append(fault.id)
        except BaseException as error:  # surfaced below
            errors.append(error)

    def reader() -> None:
        rng = random.Random(0)
        try:
            for _ in range(2000):
                controller.drops(1, rng)
                controller.delay_s(1, rng)
                _ = controller.paused
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(peer,)) for peer in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    active = controller.active()
    assert len(active) == 4 * (200 - 2 * 66)  # each writer: 134 applied, 66 cleared -> 68 left
    assert len({fault.id for fault in active}) == len(active)
    assert controller.partitioned_peers == frozenset(range(4))


# -- byzantine behaviours -------------------------------------------------------------------
def test_a_byzantine_fault_names_its_behaviour_and_stacks(controller: FaultController) -> None:
    fault = controller.apply({"kind": "byzantine", "behaviour": "flood", "count": 5})
    assert fault.params == {"behaviour": "flood", "count": 5, "interval_ms": 200, "oversized": True}
    controller.apply({"kind": "byzantine", "params": {"behaviour": "timestamp-skew"}})
    controller.apply({"kind": "equivocate"})  # the alias of behaviour equivocate
    assert [b.name for b in controller.behaviours] == ["flood", "timestamp-skew", "equivocate"]
    assert controller.behaviours[0].params == {"count": 5, "interval_ms": 200, "oversized": True}
    assert controller.equivocating
    controller.clear(fault.id)
    assert [b.name for b in controller.behaviours] == ["timestamp-skew", "equivocate"]
    controller.clear(None)
    assert controller.behaviours == ()


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"kind": "byzantine"}, "behaviour"),
        ({"kind": "byzantine", "behaviour": "meteor"}, "behaviour"),
        ({"kind": "byzantine", "behaviour": "flood", "count": 0}, "count"),
        ({"kind": "byzantine", "behaviour": "flood", "speed": 1}, "speed"),
        ({"kind": "byzantine", "params": {"behaviour": "replay", "count": "2"}}, "params.count"),
    ],
)
def test_a_bad_byzantine_spec_names_the_field(
    controller: FaultController, spec: dict[str, Any], field: str
) -> None:
    with pytest.raises(FaultSpecError) as caught:
        controller.apply(spec)
    assert caught.value.field == field


def test_byzantine_faults_show_in_the_fault_gauge() -> None:
    registry = CollectorRegistry()
    controller = FaultController(metrics=NodeMetrics(registry, 0, process_metrics=False))
    controller.apply({"kind": "byzantine", "behaviour": "silent-leader", "duration_s": 5})
    assert registry.get_sample_value("aitbc_fault_active", {"kind": "byzantine"}) == 1.0
