"""When a run on this host is ready: every validator's /readyz answers 200 and Prometheus
answers queries, then every validator's height rises, then Prometheus has scraped every
validator; a validator (process or container: the run's ``ValidatorRunner``) or Prometheus that
exits meanwhile fails it at once, with the tail of its log.

Validators are asked on ``POLL_WORKERS`` threads, and no question starts after the deadline: a
hundred validators starting on two cores answer slowly, and asking them one by one (each with
the client's timeout) once kept a 120 s wait going for 310 s."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from orchestrator.errors import PlatformError
from orchestrator.external.node_client import NodeClient, NodeUnreachable
from orchestrator.external.prometheus import PromQuery
from orchestrator.external.prometheus_server import PrometheusLayout
from orchestrator.platforms.capabilities import ReadyProgress
from orchestrator.platforms.local.processes import ProcessSupervisor, tail
from orchestrator.platforms.local.prometheus import QUERY_TIMEOUT_S, wait_scraped
from orchestrator.platforms.local.runner import ValidatorRunner
from orchestrator.platforms.local.state import RunState

__all__ = ["wait_until_ready"]

POLL_S = 0.1
HEIGHT_POLL_S = 0.25
POLL_WORKERS = 8
"""Validators asked at once."""
PAUSE_PER_VALIDATOR_S = 0.01
"""Between two rounds of questions at least this per validator (1 s at 100): the questions
cost the starting validators CPU too."""

T = TypeVar("T")


def ask_all(indices: Iterable[int], ask: Callable[[int], T], deadline: float) -> dict[int, T]:
    """``ask(i)`` of every index on ``POLL_WORKERS`` threads: the answers of the validators
    that answered (NodeUnreachable: no answer), none asked after ``deadline``."""

    def one(index: int) -> tuple[int, T] | None:
        if time.monotonic() >= deadline:
            return None
        try:
            return index, ask(index)
        except NodeUnreachable:
            return None

    with ThreadPoolExecutor(max_workers=POLL_WORKERS) as pool:
        answers = list(pool.map(one, list(indices)))
    return dict(answer for answer in answers if answer is not None)


def wait_until_ready(
    state: RunState,
    *,
    client_of: Callable[[int], NodeClient],
    validators: ValidatorRunner,
    processes: ProcessSupervisor,
    logs_dir: Path,
    prometheus_dir: Path,
    timeout_s: float,
    on_progress: ReadyProgress | None,
) -> None:
    """Wait until the run of ``state`` is ready (see the module docstring);
    ``on_progress(stage, count, max_height)`` is called about every poll. Raises
    PlatformError after ``timeout_s`` or as soon as a validator or Prometheus exits
    (``processes`` runs Prometheus)."""
    deadline = time.monotonic() + timeout_s
    total = len(state.validators)

    def check_alive() -> None:
        exited = validators.exited()
        if exited:
            raise PlatformError(
                f"a validator exited while starting: {validators.describe(exited[0])}: fix "
                "the cause and run `aitbc-testnet up` again"
            )
        prometheus = state.prometheus.process
        if prometheus is not None and not processes.running(prometheus):
            raise PlatformError(
                f"prometheus (pid {prometheus.pid}) exited while starting: "
                f"{tail(state.prometheus.log)}: see {state.prometheus.log}"
            )

    def progress(stage: str, count: int, height: int) -> None:
        if on_progress is not None:
            on_progress(stage, count, height)

    with PromQuery(state.prometheus.url, timeout_s=QUERY_TIMEOUT_S, retries=0) as prom:
        ready: set[int] = set()
        while True:
            check_alive()
            waiting = [v.index for v in state.validators if v.index not in ready]
            answers = ask_all(waiting, lambda index: client_of(index).ready()[0], deadline)
            ready |= {index for index, ok in answers.items() if ok}
            prometheus_ok = prom.ready()
            progress("starting", len(ready), 0)
            if len(ready) == total and prometheus_ok:
                break
            if time.monotonic() >= deadline:
                waiting = sorted(set(range(total)) - ready)
                what = f"validators {waiting} not ready" if waiting else "prometheus not ready"
                example = f" (e.g. {validators.describe(waiting[0])})" if waiting else ""
                raise PlatformError(
                    f"run {state.run_id}: {what} within {timeout_s:g}s: see {logs_dir}{example}"
                )
            time.sleep(max(POLL_S, PAUSE_PER_VALIDATOR_S * total))
        heights: dict[int, int] = {}
        base: dict[int, int] = {}
        rising: set[int] = set()
        while True:
            check_alive()
            waiting = [index for index in range(total) if index not in rising]
            found = ask_all(waiting, lambda index: client_of(index).status().height, deadline)
            for index, height in sorted(found.items()):
                heights[index] = height
                if index not in base:
                    base[index] = height
                elif height > base[index]:
                    rising.add(index)
            progress("heights rising", len(rising), max(heights.values(), default=0))
            if len(rising) == total:
                break
            if time.monotonic() >= deadline:
                stuck = sorted(set(range(total)) - rising)
                raise PlatformError(
                    f"run {state.run_id}: the height of validators {stuck} did not rise within "
                    f"{timeout_s:g}s (heights {heights}): see {logs_dir}"
                )
            time.sleep(max(HEIGHT_POLL_S, PAUSE_PER_VALIDATOR_S * total))
        try:
            wait_scraped(
                prom,
                total,
                deadline,
                hint=f"see {state.prometheus.log} and "
                f"{PrometheusLayout(prometheus_dir).validators_file}",
                on_progress=lambda count: progress("scraped by prometheus", count, 0),
            )
        except PlatformError as error:
            raise PlatformError(f"run {state.run_id}: {error}") from None
