"""Byzantine faults in a report: proof that each behaviour ran (what its attackers sent, what the
honest validators refused), the slashings the committed evidence carries (who, for which epoch,
and whether every validator applied each exactly once), and whether commits continued.

* **Actions and refusals**: the node's counters ``aitbc_byzantine_actions_total{behaviour}``
  (attackers) and ``aitbc_byzantine_rejected_total{reason}`` (honest validators), read at the
  fault's planned start and at the end of its window: its clear plus ``COUNTER_TAIL_S`` (the
  scrape after it), never past the start of the next byzantine fault, whose refusals would
  mix in (refusals carry a reason, not the sender's behaviour). A busy attacker (flood signs
  hundreds of messages a second) misses scrapes, and its series goes stale: its actions are
  then read at the nearest sample outside the window up to the next (or since the previous)
  fault of the same behaviour on the same attackers, between which the counter cannot move.
* **Slashings**: from the equivocation evidence in the committed blocks, one per (offender,
  epoch), as the ledger applies them. Each validator's ``aitbc_slashing_events_total`` at the
  end of the run is compared with the pairs in the blocks it had committed then (one scrape
  gives both): equal when each offence was slashed exactly once.
* **Commits**: the longest time without a commit by the honest validators, from the fault's
  start to their first commit after its end (``longest_stall``).

The pure functions serve the simulator's report too (``stages.simulate``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator.external.prometheus import PromQuery
from orchestrator.faults.kinds import MAY_BE_SLASHED_BEHAVIOURS, SLASHED_BEHAVIOURS
from orchestrator.measure import promql as pq
from orchestrator.report.model import ByzantineFault, ByzantineReport, SlashingEvent
from orchestrator.scenario.plan import windows_meet

__all__ = [
    "COUNTER_TAIL_S",
    "ByzantineWindow",
    "EvidenceBlock",
    "commit_rises",
    "honest_validators",
    "longest_stall",
    "measure_byzantine",
    "simulated_byzantine",
    "slashing_of",
    "slashings_expected",
    "slashings_in",
]

COUNTER_TAIL_S = 2.0
"""A fault's counters are read this long after its clear (two local scrapes), so what it sent
last and what was refused of it are counted."""
COUNTER_SEARCH_STEP_S = 1.0
"""The step at which a counter's missing sample is looked for (the local scrape interval)."""

HeightSeries = Mapping[int, Sequence[tuple[float, float]]]


class EvidenceBlock(Protocol):
    """A committed block as far as slashing goes (``external.node_client.CommittedBlockInfo``)."""

    @property
    def height(self) -> int: ...

    @property
    def evidence(self) -> tuple[tuple[int, int], ...]: ...


@dataclass(frozen=True)
class ByzantineWindow:
    """A byzantine fault of the run: its behaviour (None: not known, e.g. seen only in
    ``aitbc_fault_active``), attackers and times (``planned_*`` seconds since load start,
    ``cleared_at`` unix seconds or None)."""

    index: int
    behaviour: str | None
    attackers: tuple[int, ...]
    planned_start_s: float
    planned_end_s: float | None
    cleared_at: float | None


# ----------------------------------------------------------------------------- pure parts


def slashing_of(behaviour: str | None) -> str:
    """``required``, ``possible`` or ``none``: what a behaviour's attackers deserve."""
    if behaviour in SLASHED_BEHAVIOURS:
        return "required"
    if behaviour in MAY_BE_SLASHED_BEHAVIOURS:
        return "possible"
    return "none"


def _meet(first: ByzantineWindow, second: ByzantineWindow) -> bool:
    return windows_meet(
        (first.planned_start_s, first.planned_end_s),
        (second.planned_start_s, second.planned_end_s),
    )


def honest_validators(
    window: ByzantineWindow, windows: Sequence[ByzantineWindow], validators: int
) -> list[int]:
    """The validators that no byzantine fault meeting ``window``'s targeted."""
    byzantine = {i for other in windows if _meet(window, other) for i in other.attackers}
    return [index for index in range(validators) if index not in byzantine]


def commit_rises(heights: HeightSeries, honest: Collection[int]) -> list[float]:
    """The sample times (ascending) at which the highest height among ``honest`` rose."""
    highest: dict[float, float] = {}
    for index in honest:
        for stamp, height in heights.get(index, ()):
            highest[stamp] = max(highest.get(stamp, -math.inf), height)
    rises: list[float] = []
    best = -math.inf
    for stamp in sorted(highest):
        if highest[stamp] > best:
            if best != -math.inf:
                rises.append(stamp)
            best = highest[stamp]
    return rises


def longest_stall(rises: Sequence[float], start: float, end: float) -> float | None:
    """The longest time without a commit (``rises``: commit times, ascending) from ``start``
    to the first commit after ``end``; None when nothing committed after ``end``."""
    after = next((stamp for stamp in rises if stamp > end), None)
    if after is None:
        return None
    points = [start, *(stamp for stamp in rises if start < stamp <= end), after]
    return max(b - a for a, b in itertools.pairwise(points))


def slashings_in(blocks: Sequence[EvidenceBlock]) -> list[SlashingEvent]:
    """One slashing per (offender, epoch) in the committed evidence: the first block carrying
    it, and how many blocks did (the ledger applies the first and skips the others)."""
    first: dict[tuple[int, int], int] = {}
    count: dict[tuple[int, int], int] = {}
    for block in sorted(blocks, key=lambda item: item.height):
        for pair in block.evidence:
            first.setdefault(pair, block.height)
            count[pair] = count.get(pair, 0) + 1
    return [
        SlashingEvent(validator=offender, epoch=epoch, height=first[(offender, epoch)],
                      included=count[(offender, epoch)])
        for offender, epoch in sorted(first)
    ]  # fmt: skip


def slashings_expected(
    events: Sequence[SlashingEvent], heights: Mapping[str, int]
) -> dict[str, int]:
    """validator -> slashings in the blocks up to its height (``heights``: by validator label)."""
    return {
        label: sum(1 for event in events if event.height is not None and event.height <= height)
        for label, height in sorted(heights.items())
    }


def fault_summary(
    window: ByzantineWindow,
    *,
    behaviour: str,
    honest: Sequence[int],
    actions: int | None,
    rejected: Mapping[str, int],
    slashings: Sequence[SlashingEvent],
    stall: float | None,
    notes: Sequence[str] = (),
) -> ByzantineFault:
    """The report entry of one byzantine fault."""
    return ByzantineFault(
        index=window.index,
        behaviour=behaviour,
        attackers=list(window.attackers),
        honest=list(honest),
        start=window.planned_start_s,
        end=window.planned_end_s,
        actions=actions,
        rejected={reason: n for reason, n in sorted(rejected.items()) if n > 0},
        slashing=slashing_of(behaviour),
        slashed=[
            event
            for event in slashings
            if event.validator in window.attackers and slashing_of(behaviour) != "none"
        ],
        longest_stall_s=None if stall is None else round(stall, 3),
        notes=list(notes),
    )


def simulated_byzantine(
    windows: Sequence[ByzantineWindow], raw: Mapping[str, Any], validators: int
) -> ByzantineReport | None:
    """The byzantine section of a simulator run, from its JSON's ``byzantine`` object (actions
    and refusals per behaviour over the whole run, slash events, first commit times)."""
    if not windows:
        return None
    actions = _counts(raw.get("actions")) if "actions" in raw else None
    refused = raw.get("rejected_by_behaviour")
    refused = refused if isinstance(refused, Mapping) else {}
    events = [
        SlashingEvent(validator=int(pair[0]), epoch=int(pair[1]))
        for pair in raw.get("slash_events") or []
        if isinstance(pair, Sequence) and len(pair) == 2
    ]
    rises = [float(t) for t in raw.get("first_commit_s") or []]
    notes = [
        "simulated: actions and refusals are the simulator's totals per behaviour over the "
        "whole run (a behaviour run by two faults shows its total on both); a refusal counts "
        "under the sender's behaviour then, or, when it arrived after the sender's window, "
        "under every behaviour the sender runs in the run",
        "each (offender, epoch) is one slashing of the simulator's ledger",
    ]
    if not rises:
        notes.append("the simulator reported no commit times: commits per fault not known")
    faults = []
    for window in windows:
        behaviour = window.behaviour or "unknown"
        end = window.planned_end_s if window.planned_end_s is not None else math.inf
        faults.append(
            fault_summary(
                window,
                behaviour=behaviour,
                honest=honest_validators(window, windows, validators),
                actions=None if actions is None else actions.get(behaviour, 0),
                rejected=_counts(refused.get(behaviour)),
                slashings=events,
                stall=longest_stall(rises, window.planned_start_s, end) if rises else None,
            )
        )
    return ByzantineReport(
        faults=faults, slashings=events, source="the simulator's JSON (byzantine)", notes=notes
    )


def _counts(value: object) -> dict[str, int]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): int(v) for k, v in value.items() if isinstance(v, int | float)}


# ----------------------------------------------------------------------------- Prometheus


def _counters_near(
    prom: PromQuery, query: str, label: str, at: float, toward: float
) -> dict[str, float]:
    """``by_label`` at ``at``; without samples there (missed scrapes), the values at the sample
    nearest to ``at`` on the way to ``toward`` (the caller knows they do not move in between)."""
    values = prom.by_label(query, at, label)
    if values or toward == at:
        return values
    series = prom.range(query, min(at, toward), max(at, toward), COUNTER_SEARCH_STEP_S)
    stamps = sorted({stamp for one in series for stamp, _ in one.points}, reverse=toward < at)
    for stamp in stamps:
        found = {
            one.labels[label]: value
            for one in series
            if label in one.labels
            for when, value in one.points
            if when == stamp
        }
        if found:
            return found
    return {}


def _increase(
    prom: PromQuery,
    query: str,
    label: str,
    start: float,
    end: float,
    *,
    quiet: tuple[float, float] | None = None,
) -> dict[str, int]:
    """The increase of the counters of ``query`` (by ``label``) from ``start`` to ``end`` (unix
    seconds; a reset, i.e. a restart, counts from 0). ``quiet``: (since, until) around the
    window in which the counters do not move outside it: missing samples at ``start`` or
    ``end`` are looked for back to ``since`` and on to ``until``."""
    since, until = quiet if quiet is not None else (start, end)
    before = _counters_near(prom, query, label, start, min(since, start))
    result = {}
    for key, value in _counters_near(prom, query, label, end, max(until, end)).items():
        previous = before.get(key, 0.0)
        result[key] = round(value - previous if value >= previous else value)
    return result


def _behaviour_quiet(
    window: ByzantineWindow,
    windows: Sequence[ByzantineWindow],
    *,
    load_start: float,
    run_end: float,
) -> tuple[float, float]:
    """(since, until), unix: around ``window``, the span in which no other fault that may run
    its behaviour (the same, or not known) ran on one of its attackers, so their counter of
    that behaviour stood still outside the window."""
    start = load_start + window.planned_start_s
    end = window.cleared_at if window.cleared_at is not None else run_end
    same = [
        other
        for other in windows
        if other is not window
        and (None in (window.behaviour, other.behaviour) or other.behaviour == window.behaviour)
        and set(other.attackers) & set(window.attackers)
    ]
    since = max(
        [load_start]
        + [
            other.cleared_at if other.cleared_at is not None else run_end
            for other in same
            if other.planned_start_s < window.planned_start_s
        ]
    )
    until = min(
        [run_end]
        + [
            load_start + other.planned_start_s
            for other in same
            if other.planned_start_s > window.planned_start_s
        ]
    )
    return min(since, start), max(until, end)


def _live_fault(
    prom: PromQuery,
    window: ByzantineWindow,
    windows: Sequence[ByzantineWindow],
    *,
    load_start: float,
    run_end: float,
    validators: int,
    heights: HeightSeries,
    slashings: Sequence[SlashingEvent],
) -> ByzantineFault:
    """One fault of a live run: its counters over its window (see the module docstring)."""
    start = load_start + window.planned_start_s
    later = [
        load_start + w.planned_start_s
        for w in windows
        if w.planned_start_s > window.planned_start_s
    ]
    cleared = window.cleared_at if window.cleared_at is not None else run_end
    end = min([cleared + COUNTER_TAIL_S, run_end, *later])
    honest = honest_validators(window, windows, validators)
    query = pq.byzantine_actions_by_behaviour(window.attackers)
    by_behaviour = _increase(
        prom,
        query,
        "behaviour",
        start,
        end,
        quiet=_behaviour_quiet(window, windows, load_start=load_start, run_end=run_end),
    )
    notes = []
    behaviour = window.behaviour
    actions: int | None
    if behaviour is None:
        moved = sorted(name for name, n in by_behaviour.items() if n > 0)
        behaviour = "+".join(moved) or "unknown"
        notes.append("the behaviour was not recorded: named after the counters that moved")
        actions = sum(by_behaviour[name] for name in moved)
    else:
        actions = by_behaviour.get(behaviour) if by_behaviour else None
    if actions == 0:
        notes.append(
            "its attackers had no occasion to act in the window (leader-only behaviours need "
            "their turn as leader, the fallback ones a round after a timeout certificate)"
        )
    beside = [w.index for w in windows if w is not window and _meet(w, window)]
    if beside:
        notes.append(
            f"ran beside fault {', '.join(map(str, beside))}: the honest validators' refusals "
            "meanwhile are counted for each"
        )
    rejected = (
        _increase(prom, pq.byzantine_rejections(honest), "reason", start, end) if honest else {}
    )
    return fault_summary(
        window,
        behaviour=behaviour,
        honest=honest,
        actions=actions,
        rejected=rejected,
        slashings=slashings,
        stall=longest_stall(commit_rises(heights, honest), start, cleared),
        notes=notes,
    )


def measure_byzantine(
    prom: PromQuery,
    windows: Sequence[ByzantineWindow],
    *,
    load_start: float,
    run_end: float,
    validators: int,
    heights: HeightSeries,
    blocks: Sequence[EvidenceBlock] | None,
    final_heights: Mapping[str, int],
    restarted: Collection[int] = (),
) -> ByzantineReport | None:
    """The byzantine section of a live run's report (None: no byzantine fault)."""
    if not windows:
        return None
    notes: list[str] = []
    slashings: list[SlashingEvent] = []
    counted: dict[str, int] = {}
    expected: dict[str, int] = {}
    if blocks is None:
        notes.append("the committed blocks could not be read: slashings are not known")
    else:
        slashings = slashings_in(blocks)
        counters = prom.by_label(pq.slashing_events_by_validator(), run_end, pq.VALIDATOR_LABEL)
        left_out = sorted(str(i) for i in restarted)
        counted = {k: round(v) for k, v in sorted(counters.items()) if k not in left_out}
        expected = slashings_expected(
            slashings, {k: v for k, v in final_heights.items() if k in counted}
        )
        if left_out:
            notes.append(
                f"validators {', '.join(left_out)} restarted during the run (their slashing "
                "counters restarted at 0): not compared"
            )
    faults = [
        _live_fault(
            prom,
            window,
            windows,
            load_start=load_start,
            run_end=run_end,
            validators=validators,
            heights=heights,
            slashings=slashings,
        )
        for window in windows
    ]
    return ByzantineReport(
        faults=faults,
        slashings=slashings,
        slashings_counted=counted,
        slashings_expected=expected,
        source="prometheus (aitbc_byzantine_actions_total, aitbc_byzantine_rejected_total, "
        "aitbc_slashing_events_total, aitbc_block_height) and the committed blocks' evidence",
        notes=notes,
    )
