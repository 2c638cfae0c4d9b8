"""Property-based safety and liveness of the consensus core under the simulator.

Hypothesis draws small networks (4..10 validators, random authorities, stakes and mode) and a
fault schedule: partitions (by ids and by a fraction of voting power), message drops, latency
with jitter (reordering), honest clock skew, crashes with restarts from persisted state, and
byzantine validators (every behaviour of ``aitbc_node.byzantine``, some combined, each in a
time window) kept strictly below a third by each quorum measure the mode uses. For every
schedule:

- safety: no two honest nodes commit different blocks at one height; every honest node's
  committed heights go up one at a time (never decrease, never skip), across restarts too;
  no honest validator is ever accused of equivocation; no honest ledger executes a transaction
  whose signature does not verify;
- the core's own rules, watched on every action list an honest node emits: a ``PersistSafety``
  covering a vote, timeout or proposal comes before it leaves; one vote per (epoch, round);
  no vote in a round after a timeout in it; one proposal per (epoch, round);
- no false alarms: what honest nodes refuse from honest senders is only ``stale_message``;
- slashing: each committed piece of evidence (offender, epoch) is slashed exactly once, and
  an equivocation found long enough before the end of the run is slashed;
- liveness: after the last fault (byzantine windows included) ends, every honest node commits
  at least 3 more blocks than the highest height committed when it ended, within a bounded
  simulated time.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from aitbc_node.byzantine import BEHAVIOURS
from aitbc_node.consensus.actions import Action, Broadcast, EvidenceFound, PersistSafety, Send
from aitbc_node.consensus.reasons import Reason
from aitbc_node.consensus.types import (
    MAX_TIMEOUT_DOUBLINGS,
    ConsensusParams,
    Mode,
    Proposal,
    SafetyState,
    Timeout,
    Vote,
)
from aitbc_node.replica import CommitRecord
from aitbc_node.sim import ByzantineSpec, CrashSpec, PartitionSpec, SimConfig, Simulator
from aitbc_node.sim.attacks import HONEST
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

#: Blocks every honest node must commit past the height reached when the last fault ended.
PROGRESS_BLOCKS = 3
#: Liveness bound, in round timers at their longest (base x 2^MAX_TIMEOUT_DOUBLINGS): after the
#: last fault a few rounds may still fail (an equivocating leader, a lost message) before the
#: timers shrink back on the next QC.
LIVENESS_MAX_ROUNDS = 4
#: Honest clocks are off by up to this much (a few seconds of skew must not stall commits).
CLOCK_SKEW_MS = (0.0, 0.0, 500.0, 3_000.0)
#: What honest nodes may refuse from honest senders: stragglers of epochs or rounds left.
BENIGN_REASONS = {Reason.STALE_MESSAGE}
#: Evidence found this long (ms) before the end of a run must have been slashed by then.
SLASH_WITHIN_MS = 3_000

#: Each property test explores hundreds of schedules: about a minute of CPU on a quiet machine,
#: several on two busy cores. The bound only stops a hang (pytest-timeout's default is 300 s).
pytestmark = pytest.mark.timeout(1800)

#: Multiplies every property test's schedule count: `make test` runs 1x (500 + 200 schedules,
#: derandomized: the same ones each run); `make soak` runs 10x on a random seed (new schedules
#: each run; Hypothesis prints a failing one's reproduction).
SCHEDULE_SCALE = float(os.environ.get("AITBC_SCHEDULE_SCALE", "1"))


def schedules_settings(examples: int) -> settings:
    return settings(
        max_examples=max(1, round(examples * SCHEDULE_SCALE)),
        deadline=None,
        derandomize=SCHEDULE_SCALE <= 1,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


class MonitoredSimulator(Simulator):
    """The simulator, with every action list of an honest node checked against the core's
    rules before the simulator executes it (as the networked runtime would)."""

    def __init__(self, config: SimConfig) -> None:
        self.rule_violations: list[str] = []
        self.checked_lists = 0
        self._persisted: dict[int, SafetyState] = {}
        self._voted: dict[int, set[tuple[int, int]]] = {}
        self._timed_out: dict[int, set[tuple[int, int]]] = {}
        self._proposed: dict[int, set[tuple[int, int]]] = {}
        #: Per honest node: how many slashings its ledger applied.
        self.slashings: dict[int, int] = {}
        #: When honest nodes first found evidence, per (offender, epoch).
        self.evidence_at: dict[tuple[int, int], float] = {}
        super().__init__(config)

    def _check_execution(self, node: Any, record: CommitRecord) -> None:
        super()._check_execution(node, record)
        self.slashings[node.index] = self.slashings.get(node.index, 0) + len(record.receipt.slashed)

    def _apply(self, node: Any, actions: list[Action], at: float) -> None:
        if not node.byzantine:
            self._check(node.index, actions, at)
        super()._apply(node, actions, at)

    def _fail(self, index: int, at: float, what: str) -> None:
        self.rule_violations.append(f"node {index} at {at:.0f} ms: {what}")

    def _check(self, index: int, actions: list[Action], at: float) -> None:
        self.checked_lists += 1
        persisted = self._persisted.get(index, SafetyState(epoch=1))
        voted = self._voted.setdefault(index, set())
        timed_out = self._timed_out.setdefault(index, set())
        proposed = self._proposed.setdefault(index, set())
        for action in actions:
            if isinstance(action, PersistSafety):
                persisted = action.state
            elif isinstance(action, EvidenceFound):
                if not self.nodes[action.evidence.offender].byzantine:
                    self._fail(index, at, f"accuses honest {action.evidence}")
                self.evidence_at.setdefault(action.evidence.key, at)
            elif isinstance(action, Send | Broadcast):
                msg = action.message
                if isinstance(msg, Vote):
                    key = (msg.epoch, msg.round)
                    if (persisted.epoch, persisted.last_voted_round) < key:
                        self._fail(index, at, f"vote {key} before persisting ({persisted})")
                    if key in voted:
                        self._fail(index, at, f"second vote in {key}")
                    if key in timed_out:
                        self._fail(index, at, f"vote in {key} after timing out in it")
                    voted.add(key)
                elif isinstance(msg, Timeout):
                    key = (msg.epoch, msg.round)
                    if (persisted.epoch, persisted.last_voted_round) < key:
                        self._fail(index, at, f"timeout {key} before persisting ({persisted})")
                    timed_out.add(key)
                elif isinstance(msg, Proposal):
                    key = (msg.block.epoch, msg.block.round)
                    if (persisted.epoch, persisted.last_proposed_round) < key:
                        self._fail(index, at, f"proposal {key} before persisting ({persisted})")
                    if key in proposed:
                        self._fail(index, at, f"second proposal in {key}")
                    proposed.add(key)
        self._persisted[index] = persisted


@dataclass(frozen=True)
class Schedule:
    config: SimConfig
    last_fault_ms: float
    honest: frozenset[int] = field(default_factory=frozenset)

    def describe(self) -> str:
        c = self.config
        return (
            f"{c.validators} validators / {c.authorities} authorities, {c.mode}, stake {c.stake},"
            f" seed {c.seed}, epoch {c.epoch_length}, interval {c.block_interval_ms} ms,"
            f" latency {c.latency_ms}+-{c.jitter_ms} ms, drops {c.drop_rate},"
            f" partitions {c.partitions}, crashes {c.crashes}, byzantine {c.byzantine},"
            f" clock skew {c.clock_skew_ms} ms"
        )


def _measures(mode: str) -> tuple[bool, bool]:
    """(counts authorities, counts stake) for the mode's quorum."""
    return mode in ("fast", "balanced", "secure"), mode in ("balanced", "secure")


def _below_a_third(chosen: list[int], stakes: list[int], authorities: set[int], mode: str) -> bool:
    by_authority, by_stake = _measures(mode)
    if by_authority and 3 * len(set(chosen) & authorities) >= len(authorities):
        return False
    return not (by_stake and 3 * sum(stakes[i] for i in chosen) >= sum(stakes))


def _window(draw: st.DrawFn, horizon_ms: int) -> tuple[float, float]:
    start = draw(st.integers(min_value=1, max_value=horizon_ms // 100)) * 100
    length = draw(st.integers(min_value=3, max_value=horizon_ms // 100)) * 100
    return start / 1000, (start + length) / 1000


@st.composite
def schedules(draw: st.DrawFn, horizon_ms: int = 4000) -> Schedule:
    """A network and a fault schedule whose faults start and last up to ``horizon_ms``."""
    n = draw(st.integers(min_value=4, max_value=10))
    authorities = draw(st.integers(min_value=1, max_value=n))
    mode = draw(st.sampled_from(["fast", "balanced", "secure"]))
    stake = draw(st.sampled_from(["equal", "zipf", "uniform:1:100", "uniform:50:150"]))
    seed = draw(st.integers(min_value=0, max_value=10**6))
    epoch_length = draw(st.sampled_from([10, 10, 100]))
    interval = draw(st.sampled_from([100, 200, 300]))
    latency = draw(st.sampled_from([2.0, 10.0, 30.0]))
    jitter = draw(st.sampled_from([0.0, latency / 2, 2 * latency]))
    drop_rate = draw(st.sampled_from([0.0, 0.0, 0.01, 0.05]))
    base = Simulator(
        SimConfig(
            validators=n,
            authorities=authorities,
            mode=mode,
            stake=stake,
            seed=seed,
            crypto="modeled",
            epoch_length=epoch_length,
        )
    ).genesis
    stakes = [v.stake for v in base.validators]
    authority_set = {v.index for v in base.validators if v.authority}
    rng = random.Random(draw(st.integers(min_value=0, max_value=2**32)))
    # Byzantine validators: a random set kept strictly below a third by each of the mode's
    # measures, each running one or two behaviours, each in its own window.
    attackers: list[int] = []
    wanted = draw(st.integers(min_value=0, max_value=max(1, n // 3)))
    for index in rng.sample(range(n), n):
        if len(attackers) >= wanted:
            break
        if _below_a_third([*attackers, index], stakes, authority_set, mode):
            attackers.append(index)
    byzantine = []
    for index in attackers:
        for behaviour in draw(st.lists(st.sampled_from(BEHAVIOURS), min_size=1, max_size=2)):
            start, end = _window(draw, horizon_ms)
            byzantine.append(ByzantineSpec((index,), behaviour, (), start - 0.1, end))
    honest = [i for i in range(n) if i not in attackers]
    partitions = []
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        start, end = _window(draw, horizon_ms)
        if draw(st.booleans()):
            size = draw(st.integers(min_value=1, max_value=n - 1))
            partitions.append(
                PartitionSpec(start, end, ids=tuple(sorted(rng.sample(range(n), size))))
            )
        else:
            fraction = draw(st.sampled_from([0.2, 0.34, 0.5, 0.67, 0.8]))
            partitions.append(PartitionSpec(start, end, fraction=fraction))
    crashes = []
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        start, end = _window(draw, horizon_ms)
        count = draw(st.integers(min_value=1, max_value=max(1, len(honest) // 2)))
        crashes.append(CrashSpec(start, end, ids=tuple(sorted(rng.sample(honest, count)))))
    if draw(st.integers(min_value=0, max_value=5)) == 0:
        # A whole-network restart (a rolling upgrade gone wrong, a power cut): only what each
        # node persisted survives.
        start, end = _window(draw, horizon_ms)
        crashes.append(CrashSpec(start, end, ids=tuple(honest)))
    ends = [p.end_s for p in partitions] + [c.end_s for c in crashes]
    ends += [b.end_s for b in byzantine if b.end_s is not None]
    last_fault_ms = max([*ends, 0.0]) * 1000
    mode_enum = Mode.parse(mode)
    base_timeout = ConsensusParams(block_interval_ms=interval).base_timeout(mode_enum)
    blocks_to_reach = math.ceil(last_fault_ms / interval) + 1 + PROGRESS_BLOCKS
    bound_ms = (
        LIVENESS_MAX_ROUNDS * base_timeout * (1 << MAX_TIMEOUT_DOUBLINGS)
        + (blocks_to_reach + 10) * interval
        + 20 * latency
    )
    config = SimConfig(
        validators=n,
        authorities=authorities,
        mode=mode,
        stake=stake,
        seed=seed,
        crypto="modeled",
        epoch_length=epoch_length,
        block_interval_ms=interval,
        latency_ms=latency,
        jitter_ms=jitter,
        drop_rate=drop_rate,
        partitions=tuple(partitions),
        crashes=tuple(crashes),
        byzantine=tuple(byzantine),
        clock_skew_ms=draw(st.sampled_from(CLOCK_SKEW_MS)),
        blocks=blocks_to_reach,
        progress_after_faults=PROGRESS_BLOCKS,
        load_tps=draw(st.sampled_from([0.0, 20.0])),
        load_nodes=draw(st.sampled_from([1, 2])),
        max_simulated_s=(last_fault_ms + bound_ms) / 1000,
    )
    return Schedule(config, last_fault_ms, frozenset(honest))


def _height_at(commit_times: dict[tuple[int, int], float], index: int, at_ms: float) -> int:
    return max((h for (i, h), t in commit_times.items() if i == index and t <= at_ms), default=0)


def check_schedule(schedule: Schedule) -> None:
    sim = MonitoredSimulator(schedule.config)
    result = sim.run()
    context = schedule.describe()
    assert sim.checked_lists > 0, "the monitor saw no action list: Simulator._apply renamed?"
    assert sim.rule_violations == [], (context, sim.rule_violations[:5])
    assert result.safety_violations == 0, context
    honest = [n for n in sim.nodes if not n.byzantine]
    assert {n.index for n in honest} == schedule.honest
    # Safety: one block per height among honest nodes; heights contiguous on every node.
    by_height: dict[int, bytes] = {}
    for node in honest:
        heights = [block.height for block, _qc in node.committed]
        assert heights == list(range(len(heights))), (context, node.index, heights[:20])
        assert node.core.committed_height == heights[-1], (context, node.index)
        for block, _qc in node.committed:
            assert by_height.setdefault(block.height, block.id) == block.id, (
                context,
                f"conflicting commits at height {block.height}",
            )
        for block, _qc in node.committed:
            for ev in block.evidence:
                assert sim.nodes[ev.offender].byzantine, (context, ev)
    assert sim.unverified_txs_executed == 0, context
    # No false alarms: honest senders are refused only as stragglers.
    from_honest = set(sim.attacks.rejected_by_behaviour.get(HONEST, {}))
    assert from_honest <= BENIGN_REASONS, (context, sim.attacks.rejected_by_behaviour)
    # Slashing: each committed (offender, epoch) exactly once on every honest ledger, and an
    # equivocation found in good time is slashed by the end.
    for node in honest:
        committed_keys = {ev.key for block, _qc in node.committed for ev in block.evidence}
        assert set(node.replica.ledger.slash_events()) == committed_keys, (context, node.index)
        assert sim.slashings.get(node.index, 0) == len(committed_keys), (context, node.index)
    if not schedule.config.crashes and not schedule.config.partitions:
        # Nobody who found evidence lost it (a crash empties a node's pool): it is proposed
        # until it commits.
        final_ms = result.simulated_seconds * 1000
        for key, found_ms in sim.evidence_at.items():
            if found_ms + SLASH_WITHIN_MS <= final_ms:
                slashed = [key in n.replica.ledger.slash_events() for n in honest]
                assert all(slashed), (context, key, found_ms)
    # Liveness: after the last fault, every honest node goes 3 blocks past the highest height
    # any honest node had then.
    reached = max(_height_at(sim.commit_times, n.index, schedule.last_fault_ms) for n in honest)
    final = {n.index: n.core.committed_height for n in honest}
    assert all(h >= reached + PROGRESS_BLOCKS for h in final.values()), (
        context,
        f"height {reached} at the last fault's end ({schedule.last_fault_ms} ms); "
        f"by {result.simulated_seconds} s: {final}",
    )
    event(f"mode {schedule.config.mode}")
    for behaviour, done in sorted(sim.attacks.actions.items()):
        if done:
            event(f"byzantine {behaviour} acted")
    event("rounds timed out" if result.timeouts else "no timeouts")
    event("epoch changed" if result.final_epoch > 1 else "one epoch")
    event("evidence committed" if result.slashed_validators else "nothing slashed")
    event("crash and restart" if schedule.config.crashes else "no crash")
    crashed = {i for c in schedule.config.crashes for i in c.ids}
    event("every honest node restarted" if crashed >= schedule.honest else "some stayed up")


@schedules_settings(500)
@given(schedules())
def test_random_fault_schedules_are_safe_and_live(schedule: Schedule) -> None:
    """500 schedules of short faults (up to 4 s) over 100-300 ms blocks."""
    check_schedule(schedule)


@schedules_settings(200)
@given(schedules(horizon_ms=8_000))
def test_long_fault_schedules_are_safe_and_live(schedule: Schedule) -> None:
    """Faults up to 8 s: long enough for every mode's round timers (SECURE: 4 s and more) to
    fire inside a partition or a byzantine window, so views change under faults."""
    check_schedule(schedule)
