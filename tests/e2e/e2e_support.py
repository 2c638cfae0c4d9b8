"""What the end-to-end test modules share (plain values; fixtures live in conftest.py)."""

from __future__ import annotations

import shutil

import pytest

needs_prometheus = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus not on PATH: `make install` (Debian package prometheus)",
)
QUICK_BOUND_S = 300.0
"""A bound on a command that fails or measures without a campaign."""
SPEED_FREE = (
    "criteria.min_tps=1",
    "criteria.max_finality_p50_ms=600000",
    "criteria.max_finality_p99_ms=600000",
    "criteria.max_recovery_s=600",
)
"""These tests check what a campaign does, not how fast this machine is (speed targets are
`make bench` figures): the criteria that a busy machine could miss are set out of reach of
it; safety and restarts are still judged."""
