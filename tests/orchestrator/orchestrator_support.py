"""Helpers shared by the orchestrator tests (a uniquely named module: tests folders are not
packages)."""

from __future__ import annotations

import importlib
import importlib.util

import pytest


def simulator_missing() -> str | None:
    """Why the node's simulator cannot run here, or None when it can."""
    try:
        importlib.import_module("aitbc_node.sim")
    except ImportError as exc:
        return f"aitbc_node.sim cannot be imported ({exc}): the node's simulator has not landed"
    if importlib.util.find_spec("aitbc_node.cli") is None:
        return "aitbc_node.cli (the `aitbc-node sim` entry point) does not exist yet"
    return None


needs_simulator = pytest.mark.skipif(
    simulator_missing() is not None, reason=str(simulator_missing())
)
