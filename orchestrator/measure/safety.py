"""Safety and liveness checks of a run (Jepsen-style invariants over every validator's chain).

* **Agreement**: the committed hashes of every validator, height by height up to the lowest
  common height; a height with two different hashes is a violation (listed with the hashes).
* **Exactly once**: every batch is committed at most once (a batch digest at two heights is a
  violation: consensus ordered the same payload twice), and every acknowledged probe
  transaction (probe log outcome ``committed`` or ``timeout``: a validator accepted it) is in a
  committed block. A transaction carried by two different batches is noted, not a violation:
  a client that retries after a timeout may reach another validator before the first copy
  commits, and batches are cut before ordering, so both copies can be ordered; the ledger
  executes the first and skips the repeat by its nonce (the same transaction is the same
  sender and nonce).
* **Liveness after faults**: after each fault clears, the affected validators come within
  ``RECOVERY_LAG_BLOCKS`` of the others (plus the blocks of one sampling step,
  ``sampling_lag_blocks``) and the chain advances; the seconds that took are the fault's
  recovery time (from the per-validator height series).
* **Accountability**: a fault whose behaviour equivocates must be followed by a slashing of
  its targets (of any validator, when the committed evidence could not be read).

The checks are pure functions over plain data; ``read_chains`` is the one place that asks the
validators (through any object with ``NodeClient``'s read methods).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from orchestrator.errors import PlatformError
from orchestrator.faults.kinds import instantaneous_kinds, must_be_slashed
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

    @property
    def batch_digests(self) -> tuple[bytes, ...]: ...

    @property
    def evidence(self) -> tuple[tuple[int, int], ...]:
        """(offender, epoch) of the equivocation evidence the block carries."""
        ...


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
    behaviour: str | None = None


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


def _repeats(heights: Mapping[bytes, Sequence[int]]) -> list[tuple[bytes, list[int]]]:
    return [(key, list(found)) for key, found in heights.items() if len(found) > 1]


def duplicate_transactions(heights: Mapping[bytes, Sequence[int]]) -> list[str]:
    """Transactions carried by more than one block (or twice in one): a note each."""
    return [
        f"transaction {tx.hex()[:16]} carried {len(found)} times (heights {found})"
        for tx, found in _repeats(heights)
    ]


def batch_heights(blocks: Iterable[BlockView]) -> dict[bytes, list[int]]:
    """batch digest -> the heights of the blocks that reference it."""
    where: dict[bytes, list[int]] = defaultdict(list)
    for block in blocks:
        for digest in block.batch_digests:
            where[digest].append(block.height)
    return dict(where)


def duplicate_batches(heights: Mapping[bytes, Sequence[int]]) -> list[SafetyViolation]:
    """Any batch committed in more than one block (or twice in one): its transactions were
    ordered twice."""
    return [
        SafetyViolation(
            kind="batch_duplicate",
            height=found[1],
            message=f"batch {digest.hex()[:16]} committed {len(found)} times (heights {found})",
        )
        for digest, found in _repeats(heights)[:MAX_LISTED_DIVERGENCES]
    ]


def check_probes(
    probes: Sequence[ProbeEntry], heights: Mapping[bytes, Sequence[int]], tip: int
) -> tuple[int, list[SafetyViolation]]:
    """(acknowledged probes checked, violations): every acknowledged probe must be in a block
    of the chain up to ``tip`` (carried twice is a note of ``duplicate_transactions``)."""
    acknowledged = [probe for probe in probes if probe.outcome in ACKNOWLEDGED_OUTCOMES]
    violations = [
        SafetyViolation(
            kind="probe_missing",
            message=f"probe {probe.tx_id.hex()[:16]} was acknowledged (outcome "
            f"{probe.outcome}) but is in no committed block up to height {tip}",
        )
        for probe in acknowledged
        if not heights.get(probe.tx_id)
    ]
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


def sampling_lag_blocks(step_s: float, block_interval_ms: int) -> int:
    """How far behind a recovered validator may look in a height series sampled every
    ``step_s``: ``RECOVERY_LAG_BLOCKS`` plus the blocks of one step. Each validator's sample is
    its last scrape, and scrapes of different targets are spread over the scrape interval: at
    250 ms blocks and 1 s scrapes, validators in step differ by up to 4 blocks in the series."""
    return RECOVERY_LAG_BLOCKS + math.ceil(step_s * 1000 / max(1, block_interval_ms))


def check_recoveries(
    faults: Sequence[FaultWindow],
    series: HeightSeries,
    horizon: float,
    *,
    lag_blocks: int = RECOVERY_LAG_BLOCKS,
) -> list[Recovery]:
    """One ``Recovery`` per fault, in order: the recovery time of every fault that hit
    validators (within ``lag_blocks`` of the others: ``sampling_lag_blocks`` for a sampled
    series), and a liveness violation when the chain did not recover (within the series,
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
        seconds = recovery_time(series, fault.ids, fault.cleared_at, lag_blocks=lag_blocks)
        violation = None
        if seconds is None:
            violation = SafetyViolation(
                kind="liveness",
                message=f"{label}: the affected validators were not within "
                f"{lag_blocks} blocks of the others with the chain advancing in the "
                f"{max(0.0, horizon - fault.cleared_at):.0f} s after it cleared",
            )
        results.append(Recovery(fault.index, seconds, violation))
    return results


def check_slashing(
    faults: Sequence[FaultWindow],
    slashing_events: int | None,
    offenders: Collection[int] | None = None,
) -> list[SafetyViolation]:
    """A fault that made validators equivocate (``kinds.must_be_slashed``) is a violation when
    one of them is not among the slashed ``offenders`` (from the committed evidence), or,
    when those are not known, when no slashing was committed at all."""
    equivocations = [f for f in faults if must_be_slashed(f.kind, f.behaviour)]
    violations = []
    for fault in equivocations:
        if offenders is not None:
            missing = [i for i in fault.ids if i not in offenders]
            if not missing:
                continue
            seen = f"no committed evidence slashed {missing}"
        elif (slashing_events or 0) > 0:
            continue
        else:
            seen = "no slashing metric" if slashing_events is None else "0 slashing events"
        violations.append(
            SafetyViolation(
                kind="not_slashed",
                message=f"fault {fault.index} made validators {list(fault.ids)} equivocate but "
                f"{seen}: the evidence was not included or not executed",
            )
        )
    return violations


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
    violations += duplicate_batches(batch_heights(chain.blocks))
    where = tx_heights(chain.blocks)
    duplicates = duplicate_transactions(where)
    if duplicates:
        notes.append(
            f"{len(duplicates)} transaction id(s) carried by more than one batch (a client "
            "retried through another validator before the first copy committed; the ledger "
            f"executes a transaction once and skips a repeat by its nonce); first: "
            f"{duplicates[0]}"
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
