"""Partitions in the simulator: which validators a fraction of the voting power cuts off, and
what a partition did to commits (the report's ``partitions`` entries)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aitbc_node.consensus.types import Block, Mode
from aitbc_node.genesis import Genesis


@dataclass(frozen=True)
class PartitionWindow:
    start_s: float
    end_s: float
    side: frozenset[int]


def voting_power_side(
    genesis: Genesis, mode: Mode, fraction: float, rng: random.Random, avoid: int = 0
) -> frozenset[int]:
    """A set of validators holding about ``fraction`` of the voting power under ``mode``'s
    measure(s) (authorities for FAST, stake for SECURE, both for BALANCED), never more on any."""
    validators = genesis.validators
    total_stake = sum(v.stake for v in validators) or 1
    total_auth = sum(1 for v in validators if v.authority) or 1
    order = [v.index for v in validators if v.index != avoid]
    rng.shuffle(order)
    order.append(avoid)
    use_auth = mode in (Mode.FAST, Mode.BALANCED)
    use_stake = mode in (Mode.SECURE, Mode.BALANCED)
    side: set[int] = set()
    stake = 0
    auth = 0
    for i in order:
        v = validators[i]
        new_stake = stake + v.stake
        new_auth = auth + int(v.authority)
        if use_stake and new_stake / total_stake > fraction + 1e-9:
            continue
        if use_auth and new_auth / total_auth > fraction + 1e-9:
            continue
        if not use_auth and v.authority and new_auth / total_auth > fraction + 1e-9:
            continue
        side.add(i)
        stake, auth = new_stake, new_auth
    return frozenset(side)


def partition_report(
    p: PartitionWindow,
    commit_times: Mapping[tuple[int, int], float],
    committed_block: Callable[[int, int], Block | None],
) -> dict[str, Any]:
    """Blocks proposed inside the window that committed inside it (0 when neither side had a
    quorum), and the first commit of a block proposed after the heal. ``commit_times``: (node,
    height) -> simulated ms; ``committed_block(node, height)``: that node's block there."""
    during = 0
    first_after: float | None = None
    for (node_index, height), at in commit_times.items():
        block = committed_block(node_index, height)
        if block is None:
            continue
        if p.start_s <= block.timestamp_ms < p.end_s and at < p.end_s:
            during += 1
        if block.timestamp_ms >= p.end_s and (first_after is None or at < first_after):
            first_after = at
    side = sorted(p.side)
    return {
        "start_s": p.start_s / 1000,
        "end_s": p.end_s / 1000,
        "side": side if len(side) <= 50 else [*side[:50], "..."],
        "side_size": len(side),
        "commits_during": during,
        "resumed_after_heal_s": (
            round((first_after - p.end_s) / 1000, 3) if first_after is not None else None
        ),
    }
