"""Durations in scenario files: ``500ms``, ``10s``, ``2m``, ``1h``, compounds such as ``1m30s``,
or a plain number of seconds (``15``, ``0.5``). Everything becomes float seconds."""

from __future__ import annotations

import math
import re

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = r"(\d+(?:\.\d+)?)(ms|s|m|h)"
_COMPOUND = re.compile(rf"^(?:{_PART})+$")
_ONE_PART = re.compile(_PART)
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")

EXAMPLES = "500ms, 10s, 2m, 1h, 1m30s or a number of seconds"


def parse_duration(value: object) -> float:
    """Return ``value`` as seconds (float >= 0).

    Raises ValueError (with the value and the accepted forms) for negative numbers, booleans,
    unknown units and anything that is not a number or a string.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration ({EXAMPLES}), got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"duration must be a finite number >= 0 seconds, got {value!r}")
        return seconds
    if not isinstance(value, str):
        raise ValueError(f"expected a duration ({EXAMPLES}), got {value!r}")
    text = value.strip().lower().replace(" ", "")
    if _NUMBER.match(text):
        return float(text)
    if not _COMPOUND.match(text):
        raise ValueError(f"cannot read duration {value!r}: use {EXAMPLES}")
    return sum(float(amount) * _UNIT_SECONDS[unit] for amount, unit in _ONE_PART.findall(text))


def format_duration(seconds: float) -> str:
    """Short human form of ``seconds`` (``500ms``, ``10s``, ``2m``, ``1m30s``, ``1.5s``)."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000):d}ms"
    if seconds >= 60 and float(seconds).is_integer():
        minutes, rest = divmod(int(seconds), 60)
        hours, minutes = divmod(minutes, 60)
        parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
        parts.append(f"{rest}s" if rest else "")
        return "".join(parts)
    return f"{seconds:g}s"
