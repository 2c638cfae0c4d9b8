"""The node picks gRPC core's legacy I/O paths (``aitbc_node.GRPC_EXPERIMENTS``) before grpc
starts, unless the environment already chose: 100 idle validators on 2 cores took 10.2 ms CPU
per second each with the EventEngine paths and 6.0 without (docs/architecture.md)."""

from __future__ import annotations

import os
import subprocess
import sys

import aitbc_node

#: What a validator process does first: import the node (its modules import grpc), then start
#: gRPC core (a channel).
PROBE = (
    "import os; from aitbc_node.runtime import node; import grpc; "
    "grpc.insecure_channel('127.0.0.1:1').close(); "
    "print(os.environ.get('GRPC_EXPERIMENTS', '')); print(os.environ.get('GRPC_VERBOSITY'))"
)


def _probe(env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    # A switch this gRPC does not know is logged (and ignored): the setting would be stale.
    assert "Unknown experiment" not in done.stderr, done.stderr
    return done.stdout.splitlines()


def test_the_node_turns_the_event_engine_paths_off_by_default() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("GRPC_EXPERIMENTS", "GRPC_VERBOSITY")}
    experiments, verbosity = _probe(env)
    assert experiments == aitbc_node.GRPC_EXPERIMENTS
    assert verbosity == "ERROR"  # no INFO lines from gRPC core in node logs and CLI output
    assert {"-event_engine_client", "-event_engine_listener"} <= set(experiments.split(","))


def test_an_operator_setting_wins() -> None:
    env = {**os.environ, "GRPC_EXPERIMENTS": "event_engine_client", "GRPC_VERBOSITY": "INFO"}
    experiments, verbosity = _probe(env)
    assert (experiments, verbosity) == ("event_engine_client", "INFO")
