"""What a bench section reports: one ``Figure`` per measured value.

A section is a module ``bench/bench_<name>.py`` with ``run(quick: bool) -> list[Figure]``;
``bench/run.py`` finds it, runs it and prints its figures in the table.
"""

from __future__ import annotations

from typing import NamedTuple


class Figure(NamedTuple):
    """``name``: what was measured; ``value`` and ``unit``: the result; ``target``: the goal as
    text ("< 120 s") or a comment; ``met``: whether the goal was reached (None: no goal)."""

    name: str
    value: float | int | str
    unit: str
    target: str = ""
    met: bool | None = None


def at_most(name: str, value: float, unit: str, limit: float, *, quick: bool = False) -> Figure:
    """A figure whose goal is ``value <= limit`` (no goal in quick mode: runs are smaller)."""
    if quick:
        return Figure(name, value, unit, f"(quick run; full run: <= {limit:g} {unit})")
    return Figure(name, value, unit, f"<= {limit:g} {unit}", value <= limit)


def at_least(name: str, value: float, unit: str, floor: float, *, quick: bool = False) -> Figure:
    """A figure whose goal is ``value >= floor``."""
    if quick:
        return Figure(name, value, unit, f"(quick run; full run: >= {floor:g} {unit})")
    return Figure(name, value, unit, f">= {floor:g} {unit}", value >= floor)
