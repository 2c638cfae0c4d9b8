"""Locust, the load generator's engine, as an external system: the headless command line that
runs ``loadgen/locustfile.py`` and the final JSON stats a ``--json`` run prints. What the load
generator is told (its ``AITBC_*`` environment) is ``platforms/loadgen_env.py``."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import loadgen

__all__ = ["LOCUSTFILE", "STOP_TIMEOUT_S", "locust_argv", "locust_stats_from_log", "run_time"]

LOCUSTFILE = Path(loadgen.__file__).resolve().parent / "locustfile.py"
STOP_TIMEOUT_S = 5
"""Seconds Locust gives its users to finish their task when the run time is over."""


def run_time(duration_s: float) -> str:
    """Locust's ``--run-time`` for a load of ``duration_s``: whole seconds, at least 1."""
    return f"{max(1, math.ceil(duration_s))}s"


def locust_argv(
    python: str,
    *,
    users: int,
    run_time_s: float,
    csv_prefix: str,
    json_file: str,
) -> list[str]:
    """``python -m locust -f loadgen/locustfile.py --headless ...``: ``users`` users spawned
    at once, for ``run_time_s`` (``run_time``), CSV stats under ``csv_prefix``,
    JSON stats to ``json_file`` (without its ``.json``), the summary only."""
    return [
        python,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "--run-time",
        run_time(run_time_s),
        "--stop-timeout",
        str(STOP_TIMEOUT_S),
        "--csv",
        csv_prefix,
        "--json-file",
        json_file,
        "--only-summary",
        "--exit-code-on-error",
        "0",
    ]


def locust_stats_from_log(log: str) -> Any:
    """The JSON stats Locust prints at the end of a ``--json`` run (the last JSON array or
    object in the log), or None."""
    end = log.rstrip()
    for opener, closer in (("[", "]"), ("{", "}")):
        if not end.endswith(closer):
            continue
        position = end.rfind("\n" + opener)
        while position != -1:
            try:
                return json.loads(end[position + 1 :])
            except ValueError:
                position = end.rfind("\n" + opener, 0, position)
        with contextlib.suppress(ValueError):
            return json.loads(end)
    return None
