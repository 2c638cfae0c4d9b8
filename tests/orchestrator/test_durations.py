from __future__ import annotations

import pytest

from orchestrator.scenario.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("10s", 10.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1.5s", 1.5),
        (" 7 s ", 7.0),
        ("15", 15.0),
        ("0", 0.0),
        (15, 15.0),
        (0.25, 0.25),
    ],
)
def test_parse_accepts_units_and_plain_seconds(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "bad", ["10x", "s", "", "-5s", "1d", "ten", True, None, [1], -1, float("nan")]
)
def test_parse_rejects_with_the_accepted_forms(bad: object) -> None:
    with pytest.raises(ValueError, match=r"duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "500ms"),
        (10, "10s"),
        (90, "1m30s"),
        (120, "2m"),
        (3600, "1h"),
        (1.5, "1.5s"),
        (0, "0s"),
    ],
)
def test_format_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)
