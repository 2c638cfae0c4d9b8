"""Fixtures of the orchestrator tests: scenario files written to a temp folder and the CLI."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

MINIMAL = """\
name: tiny
network:
  validators: 4
  authorities: 4
load:
  duration: 30s
  warmup: 5s
  cooldown: 5s
"""


@pytest.fixture
def write_scenario(tmp_path: Path) -> Callable[[str], Path]:
    """Write dedented YAML to <tmp>/scenario.yaml (line numbers are those of the text)."""

    def _write(text: str, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return _write


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
