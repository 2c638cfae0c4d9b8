"""``aitbc-node launch``: start many validators of one host from a single process that imported
the node once, by ``fork``. A validator's imports (grpc, protobuf, aiohttp, cryptography, blst,
prometheus_client) cost about 1 s of CPU; a host starting 100 validators side by side spent
100 CPU-seconds on them (54 s of a 2-core machine's full time before the first validator could
answer). Forked children share the imported modules instead; each then runs exactly what
``aitbc-node run --config FILE`` runs.

Input (stdin): one JSON object per line, ``{"config": PATH, "log": PATH}``. Output (stdout): one
JSON line per started validator, ``{"config": PATH, "pid": PID}``, in input order. Each child
runs in its own session (its pid is its process group), stdin on /dev/null, stdout and stderr
appended to its log. The launcher exits once every child is forked (exit 0); the children run
on by themselves. Bad input: exit 2 naming the line, before any child starts.

Nothing that starts a thread, an event loop, a gRPC channel or a database connection may run
in the launcher before the fork: only imports.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from aitbc_node.errors import AitbcError, ConfigError

#: Exit code of a child whose validator raised past ``cli.main`` (a bug: the traceback is logged).
EXIT_CHILD_CRASHED = 70


@dataclass(frozen=True)
class LaunchJob:
    """One validator to start: its config file and the log its output is appended to."""

    config: str
    log: str


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    if "launch" in sub.choices:
        return
    p = sub.add_parser(
        "launch",
        help="start many validators of this host by fork (one import of the node)",
        description=(
            'Read {"config": PATH, "log": PATH} lines on stdin, start one validator per line '
            '(as `aitbc-node run --config PATH`, output appended to PATH) and print {"config": '
            'PATH, "pid": PID} lines. Example: echo \'{"config": "node-0.yaml", "log": '
            '"node-0.log"}\' | aitbc-node launch'
        ),
    )
    p.set_defaults(handler=_cmd_launch)


def read_jobs(stream: TextIO) -> list[LaunchJob]:
    """The jobs of ``stream``; raises ConfigError naming the line that is not a job."""
    jobs: list[LaunchJob] = []
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise ConfigError(f"launch: stdin line {number}: not JSON ({error.msg})") from None
        if not isinstance(item, dict) or set(item) != {"config", "log"}:
            raise ConfigError(
                f'launch: stdin line {number}: expected {{"config": PATH, "log": PATH}}, '
                f"got {line.strip()[:120]!r}"
            )
        config, log = item["config"], item["log"]
        if not isinstance(config, str) or not isinstance(log, str) or not config or not log:
            raise ConfigError(f"launch: stdin line {number}: config and log must be paths")
        jobs.append(LaunchJob(config=config, log=log))
    return jobs


def _cmd_launch(args: argparse.Namespace) -> int:
    jobs = read_jobs(sys.stdin)
    # Everything `run` imports, imported once here and shared by the children.
    from aitbc_node import cli
    from aitbc_node.commands import run_cmd  # noqa: F401
    from aitbc_node.runtime import node  # noqa: F401

    for job in jobs:
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as error:  # the host's process or memory limit
            raise AitbcError(
                f"launch: cannot fork the validator of {job.config}: {error.strerror} (the "
                "validators printed above run; stop them, then raise the host's process limit)"
            ) from None
        if pid == 0:
            _child(job, cli.main)
        print(json.dumps({"config": job.config, "pid": pid}), flush=True)
    return 0


def _name_process(config: str) -> None:
    """Name the child after its config (``ps -o comm``, ``top``: ``node-5``); its command line
    stays the launcher's (``python -m aitbc_node.cli launch``)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text(Path(config).stem[:15])


def _child(job: LaunchJob, main: Callable[[Sequence[str]], int]) -> None:
    """In the forked child: own session, output to the log, run the validator, never return."""
    code = EXIT_CHILD_CRASHED
    try:
        os.setsid()
        _name_process(job.config)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        log = os.open(job.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        code = main(["run", "--config", job.config])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:  # a bug in the validator: keep the traceback in its log
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
