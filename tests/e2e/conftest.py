"""Fixtures of the end-to-end tests: the ``aitbc-testnet`` CLI as a real subprocess, and run
folders whose processes are always stopped afterwards, by the pids their state.json records.

Every local run a test starts lives under a ``run_root`` fixture folder; its finalizer stops
each run's recorded processes (SIGTERM, then SIGKILL, each pid checked to still be the process
the run started) whatever the test did, so no validator or Prometheus outlives the tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.platforms.local import LocalPlatform
from orchestrator.platforms.local.processes import process_alive
from orchestrator.platforms.local.state import RunState, all_processes
from orchestrator.platforms.run_dirs import STATE_FILE

CLI_BOOT = "import sys; from orchestrator.cli import main; sys.exit(main(sys.argv[1:]))"
"""``aitbc-testnet`` with this interpreter (no reliance on the console script being on PATH)."""
CLI_TIMEOUT_S = 900.0
"""A bound on one CLI command (seconds to minutes; generous for a busy machine)."""


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"

    def json(self) -> object:
        return json.loads(self.stdout)


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-c", CLI_BOOT, *args]


def run_cli(
    *args: str, timeout_s: float = CLI_TIMEOUT_S, env: dict[str, str] | None = None
) -> CliResult:
    """Run ``aitbc-testnet ARGS`` to completion (its own process group, killed on timeout)."""
    process = subprocess.Popen(
        cli_argv(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"aitbc-testnet {' '.join(args)} ran over {timeout_s}s:\n{stderr}")
    return CliResult(process.returncode, stdout, stderr)


def run_states(root: Path) -> list[tuple[Path, RunState]]:
    """Every run under ``root`` with its state.json."""
    found = []
    for state_path in sorted(root.glob(f"*/{STATE_FILE}")):
        try:
            found.append((state_path.parent, RunState.model_validate_json(state_path.read_text())))
        except ValueError:
            continue
    return found


def alive_processes(root: Path) -> list[str]:
    """``name pid`` of every recorded process of every run under ``root`` still alive."""
    alive = []
    for directory, _ in run_states(root):
        platform = LocalPlatform.attach(directory)
        alive += [
            f"{name} {record.pid}"
            for name, record in all_processes(platform.state)
            if process_alive(record)
        ]
    return alive


def stop_runs(root: Path) -> None:
    """Stop every process recorded by the runs under ``root`` (by pid, checked)."""
    for directory, _ in run_states(root):
        platform = LocalPlatform.attach(directory)
        platform.stop_processes()


@pytest.fixture
def run_root(tmp_path: Path) -> Iterator[Path]:
    """A --run-dir for one test; every run started under it is stopped afterwards."""
    root = tmp_path / "runs"
    root.mkdir()
    try:
        yield root
    finally:
        stop_runs(root)


@pytest.fixture(scope="module")
def module_run_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A --run-dir shared by the tests of one module; its runs are stopped at the end."""
    root = tmp_path_factory.mktemp("runs")
    try:
        yield root
    finally:
        stop_runs(root)


@pytest.fixture(scope="session")
def cli() -> type[Cli]:
    """``cli.run(*args)`` runs ``aitbc-testnet ARGS``; ``cli.argv(*args)`` is its command."""
    return Cli


class Cli:
    """The CLI helpers as one fixture value (test modules cannot import conftest)."""

    run = staticmethod(run_cli)
    argv = staticmethod(cli_argv)
    alive_processes = staticmethod(alive_processes)
    stop_runs = staticmethod(stop_runs)
