"""Safety and liveness checks of a run (Jepsen-style invariants over every validator's chain).

* **Agreement**: the committed hashes of every validator, height by height up to the lowest
  common height; a height with two different hashes is a violation (listed with the hashes).
* **Exactly once**: every acknowledged probe transaction (probe log outcome ``committed`` or
  ``timeout``: a validator accepted it) appears in exactly one committed block. Other
  transactions included twice are noted (the ledger skips a repeat by its nonce).
* **Liveness after faults**: after each fault clears, the affected validators come within
  ``RECOVERY_LAG_BLOCKS`` of the others and the chain advances; the seconds that took are the
  fault's recovery time (from the per-validator height series).
* **Accountability**: an equivocation fault must be followed by a slashing.

The checks are pure functions over plain data; ``read_chains`` is the one place that asks the
validators (through any object with ``NodeClient``'s read methods).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from orchestrator.errors import PlatformError
from orchestrator.faults.kinds import instantaneous_kinds, slashable_kinds
from orchestrator.report.model import SafetyReport, SafetyViolation

RECOVERY_LAG_BLOCKS = 2
"""A recovered validator is at most this many blocks behind the others."""
MAX_LISTED_DIVERGENCES = 20
ACKNOWLEDGED_OUTCOMES = ("committed", "timeout")
"""Probe outcomes after which a validator had accepted the transaction."""

HeightSeries = Mapping[int, Sequence[tuple[float, float]]]
"""validator index -> (unix seconds, committed height), on one time grid (a range query)."""


class _HasHeight(Protocol):
    @property
    def height(self) -> int: ...


class BlockView(Protocol):
    @property
    def height(self) -> int: ...

    @property
    def tx_ids(self) -> tuple[bytes, ...]: ...


class ChainReader(Protocol):
    """What the checks need from a validator (``orchestrator.node_client.NodeClient``)."""

    @property
    def index(self) -> int: ...

    def status(self) -> _HasHeight: ...

    def committed_hashes(self, first: int, last: int) -> list[bytes]: ...

    def blocks(self, first: int, last: int) -> Sequence[BlockView]: ...


@dataclass(frozen=True)
class ProbeEntry:
    """One line of the load generator's probe log that matters here."""

    tx_id: bytes
    outcome: str


@dataclass(frozen=True)
class ChainSnapshot:
    """Every reachable validator's committed hashes, and the blocks (with transaction ids) of
    the validator that had committed the most."""

    hashes: Mapping[int, Sequence[bytes]]
    blocks: Sequence[BlockView]
    unreachable: Mapping[int, str] = field(default_factory=dict)

    @property
    def tip(self) -> int:
        return max((block.height for block in self.blocks), default=0)


@dataclass(frozen=True)
class FaultWindow:
    """A fault as the liveness check sees it: who it hit and when it cleared (unix s)."""

    index: int
    kind: str
    ids: tuple[int, ...]
    cleared_at: float | None


@dataclass(frozen=True)
class Recovery:
    fault_index: int
    recovery_s: float | None
    violation: SafetyViolation | None


# ----------------------------------------------------------------------------- agreement


def lowest_common_height(hashes: Mapping[int, Sequence[bytes]], first_height: int = 1) -> int:
    """The highest height every validator in ``hashes`` has a hash for (first_height - 1 when
    one has none)."""
    if not hashes:
        return first_height - 1
    return first_height - 1 + min(len(chain) for chain in hashes.values())


def find_divergences(
    hashes: Mapping[int, Sequence[bytes]], first_height: int = 1
) -> list[SafetyViolation]:
    """One violation per height (up to the lowest common height) where validators committed
    different hashes; ``hashes[v][i]`` is validator v's hash at height ``first_height + i``.
    At most ``MAX_LISTED_DIVERGENCES`` are listed, then one summary violation."""
    common = lowest_common_height(hashes, first_height)
    violations: list[SafetyViolation] = []
    diverging = 0
    for height in range(first_height, common + 1):
        position = height - first_height
        at_height = {index: chain[position] for index, chain in sorted(hashes.items())}
        if len(set(at_height.values())) <= 1:
            continue
        diverging += 1
        if len(violations) < MAX_LISTED_DIVERGENCES:
            groups: dict[bytes, list[int]] = defaultdict(list)
            for index, value in at_height.items():
                groups[value].append(index)
            described = "; ".join(
                f"validators {ids} have {value.hex()[:16]}" for value, ids in groups.items()
            )
            violations.append(
                SafetyViolation(
                    kind="divergence",
                    height=height,
                    message=f"height {height}: different committed blocks ({described})",
                    hashes={str(index): value.hex() for index, value in at_height.items()},
                )
            )
    if diverging > len(violations):
        violations.append(
            SafetyViolation(
                kind="divergence",
                message=f"{diverging} diverging heights in total (first "
                f"{MAX_LISTED_DIVERGENCES} listed)",
            )
        )
    return violations


# ----------------------------------------------------------------------------- exactly once


def tx_heights(blocks: Iterable[BlockView]) -> dict[bytes, list[int]]:
    """transaction id -> the heights of the blocks that carry it."""
    where: dict[bytes, list[int]] = defaultdict(list)
    for block in blocks:
        for tx in block.tx_ids:
            where[tx].append(block.height)
    return dict(where)


def duplicate_transactions(heights: Mapping[bytes, Sequence[int]]) -> list[SafetyViolation]:
    """Any transaction committed in more than one block (or twice in one)."""
    duplicates = [(tx, list(found)) for tx, found in heights.items() if len(found) > 1]
    return [
        SafetyViolation(
            kind="tx_duplicate",
            height=found[1],
            message=f"transaction {tx.hex()[:16]} committed {len(found)} times (heights {found})",
        )
        for tx, found in duplicates[:MAX_LISTED_DIVERGENCES]
    ]


def check_probes(
    probes: Sequence[ProbeEntry], heights: Mapping[bytes, Sequence[int]], tip: int
) -> tuple[int, list[SafetyViolation]]:
    """(acknowledged probes checked, violations): every acknowledged probe must be in exactly
    one block of the chain up to ``tip``."""
    acknowledged = [probe for probe in probes if probe.outcome in ACKNOWLEDGED_OUTCOMES]
    violations = []
    for probe in acknowledged:
        found = heights.get(probe.tx_id, [])
        if not found:
            violations.append(
                SafetyViolation(
                    kind="probe_missing",
                    message=f"probe {probe.tx_id.hex()[:16]} was acknowledged (outcome "
                    f"{probe.outcome}) but is in no committed block up to height {tip}",
                )
            )
        elif len(found) > 1:
            violations.append(
                SafetyViolation(
                    kind="probe_duplicate",
                    height=found[1],
                    message=f"probe {probe.tx_id.hex()[:16]} committed {len(found)} times "
                    f"(heights {list(found)})",
                )
            )
    return len(acknowledged), violations


# ----------------------------------------------------------------------------- liveness


def _grid(series: HeightSeries) -> dict[int, dict[float, float]]:
    return {index: dict(points) for index, points in series.items()}


def height_at(points: Sequence[tuple[float, float]], at: float) -> float | None:
    """The last height sampled at or before ``at`` (None before the first sample)."""
    value = None
    for stamp, height in points:
        if stamp > at:
            break
        value = height
    return value


def recovery_time(
    series: HeightSeries,
    affected: Sequence[int],
    cleared_at: float,
    *,
    lag_blocks: int = RECOVERY_LAG_BLOCKS,
) -> float | None:
    """Seconds from ``cleared_at`` to the first sample time at which every affected validator
    reports a height within ``lag_blocks`` of the highest unaffected one (of all, when every
    validator was affected) and the chain's height is above what it was at ``cleared_at``.
    None: not within the series."""
    if not series:
        return None
    grid = _grid(series)
    affected_set = {index for index in affected if index in grid} or set(grid)
    others = [index for index in grid if index not in affected_set]
    before = [height_at(series[index], cleared_at) for index in grid]
    base = max((value for value in before if value is not None), default=-1.0)
    times = sorted({stamp for points in grid.values() for stamp in points if stamp >= cleared_at})
    for stamp in times:
        present = {index: values[stamp] for index, values in grid.items() if stamp in values}
        if any(index not in present for index in affected_set):
            continue
        reference_ids = [index for index in others if index in present] or list(affected_set)
        reference = max(present[index] for index in reference_ids)
        if max(present.values()) <= base:
            continue
        if all(present[index] >= reference - lag_blocks for index in affected_set):
            return max(0.0, stamp - cleared_at)
    return None


def check_recoveries(
    faults: Sequence[FaultWindow], series: HeightSeries, horizon: float
) -> list[Recovery]:
    """One ``Recovery`` per fault, in order: the recovery time of every fault that hit
    validators, and a liveness violation when the chain did not recover (within the series,
    which ends at ``horizon``) or the fault never cleared. heal/restart get an empty entry."""
    results = []
    for fault in faults:
        if fault.kind in instantaneous_kinds():
            results.append(Recovery(fault.index, None, None))  # they clear others
            continue
        label = f"fault {fault.index} ({fault.kind} on {list(fault.ids)})"
        if fault.cleared_at is None:
            results.append(
                Recovery(
                    fault.index,
                    None,
                    SafetyViolation(
                        kind="liveness",
                        message=f"{label} was never cleared, so recovery cannot be shown",
                    ),
                )
            )
            continue
        seconds = recovery_time(series, fault.ids, fault.cleared_at)
        violation = None
        if seconds is None:
            violation = SafetyViolation(
                kind="liveness",
                message=f"{label}: the affected validators were not within "
                f"{RECOVERY_LAG_BLOCKS} blocks of the others with the chain advancing in the "
                f"{max(0.0, horizon - fault.cleared_at):.0f} s after it cleared",
            )
        results.append(Recovery(fault.index, seconds, violation))
    return results


def check_slashing(
    faults: Sequence[FaultWindow], slashing_events: int | None
) -> list[SafetyViolation]:
    """An equivocation fault (a slashable kind) without any slashing committed is a
    violation."""
    equivocations = [fault for fault in faults if fault.kind in slashable_kinds()]
    if not equivocations or (slashing_events or 0) > 0:
        return []
    seen = "no slashing metric" if slashing_events is None else "0 slashing events"
    return [
        SafetyViolation(
            kind="not_slashed",
            message=f"fault {fault.index} made validators {list(fault.ids)} equivocate but "
            f"{seen} were committed: the evidence was not included or not executed",
        )
        for fault in equivocations
    ]


# ----------------------------------------------------------------------------- reading


def read_chains(readers: Sequence[ChainReader]) -> ChainSnapshot:
    """Ask every validator for its committed hashes (1..its height) and the highest one for
    its blocks. Validators that do not answer are listed in ``unreachable``."""
    heights: dict[int, int] = {}
    unreachable: dict[int, str] = {}
    for reader in readers:
        try:
            heights[reader.index] = reader.status().height
        except PlatformError as exc:
            unreachable[reader.index] = str(exc)
    hashes: dict[int, Sequence[bytes]] = {}
    for reader in readers:
        height = heights.get(reader.index)
        if height is None:
            continue
        try:
            hashes[reader.index] = reader.committed_hashes(1, height) if height >= 1 else []
        except PlatformError as exc:
            unreachable[reader.index] = str(exc)
    blocks: Sequence[BlockView] = []
    for reader in sorted(
        (r for r in readers if r.index in hashes), key=lambda r: -len(hashes[r.index])
    ):
        top = len(hashes[reader.index])
        try:
            blocks = reader.blocks(1, top) if top >= 1 else []
            break
        except PlatformError as exc:
            unreachable[reader.index] = str(exc)
    return ChainSnapshot(hashes=hashes, blocks=blocks, unreachable=unreachable)


def build_safety_report(
    chain: ChainSnapshot,
    probes: Sequence[ProbeEntry] | None,
    recoveries: Sequence[Recovery],
    slashing: Sequence[SafetyViolation],
) -> SafetyReport:
    """Every violation found, and what was checked."""
    violations: list[SafetyViolation] = []
    notes: list[str] = []
    if not chain.hashes:
        violations.append(
            SafetyViolation(
                kind="unchecked",
                message="no validator answered, so agreement could not be checked: "
                + "; ".join(chain.unreachable.values()),
            )
        )
    violations += find_divergences(chain.hashes)
    where = tx_heights(chain.blocks)
    duplicates = duplicate_transactions(where)
    if duplicates:
        notes.append(
            f"{len(duplicates)} transaction id(s) appear in more than one block (the ledger "
            f"executes a transaction once and skips a repeat by its nonce); first: "
            f"{duplicates[0].message}"
        )
    probes_checked = None
    if probes is None:
        notes.append("no probe log: exactly-once of acknowledged transactions not checked")
    else:
        probes_checked, probe_violations = check_probes(probes, where, chain.tip)
        violations += probe_violations
    violations += [r.violation for r in recoveries if r.violation is not None]
    violations += slashing
    for index, reason in sorted(chain.unreachable.items()):
        notes.append(f"validator {index} not compared: {reason}")
    return SafetyReport(
        ok=not violations,
        violations=violations,
        checked_height=lowest_common_height(chain.hashes) if chain.hashes else None,
        validators=sorted(chain.hashes),
        probes_checked=probes_checked,
        notes=notes,
    )
