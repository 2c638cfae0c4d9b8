"""The Prometheus server of a local run: its folder (config, file-SD targets labelled
``validator``, TSDB) written for the run's validators and load generator, its command line
(``external/prometheus_server.py``), and the checks that it is ready and has scraped every
validator (queries through ``external/prometheus.py``). A platform that runs the validators
elsewhere (containers) reuses it with their addresses."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from orchestrator.errors import PlatformError
from orchestrator.external.prometheus import PromQuery
from orchestrator.external.prometheus_server import (
    PrometheusLayout,
    ScrapeTarget,
    prometheus_argv,
    write_config,
    write_targets,
)
from orchestrator.measure.promql import (
    LOADGEN_JOB,
    VALIDATOR_JOB,
    scrape_interval_s,
    validators_scraped,
)

__all__ = ["POLL_S", "QUERY_TIMEOUT_S", "prepare_prometheus", "wait_scraped"]

POLL_S = 0.25
QUERY_TIMEOUT_S = 5.0
"""Seconds one readiness query may take (the wait as a whole is bounded by its deadline)."""


def prepare_prometheus(
    folder: Path,
    *,
    run_id: str,
    validators: Sequence[tuple[int, str]],
    loadgen: str,
    listen: str,
    binary: str,
) -> list[str]:
    """Write the config and targets of a run's Prometheus in ``folder`` (validators as
    (index, ops address), the load generator's metrics address) and return the server's
    command line (run it from ``folder``), listening on ``listen``."""
    layout = PrometheusLayout(folder)
    write_config(
        layout,
        run_id=run_id,
        validator_job=VALIDATOR_JOB,
        loadgen_job=LOADGEN_JOB,
        scrape_interval_s=scrape_interval_s("local", len(validators)),
    )
    write_targets(
        layout.validators_file,
        [
            ScrapeTarget(ops, {"validator": str(index), "job": VALIDATOR_JOB})
            for index, ops in validators
        ],
    )
    write_targets(layout.loadgen_file, [ScrapeTarget(loadgen, {"job": LOADGEN_JOB})])
    return prometheus_argv(layout, listen, binary)


def wait_scraped(
    prom: PromQuery,
    total: int,
    deadline: float,
    *,
    hint: str,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Wait until the Prometheus of ``prom`` has scraped all ``total`` validators (``up == 1``),
    so queries see the whole testnet from then on; PlatformError at ``deadline``
    (``time.monotonic``) ending with ``hint`` (where to look)."""
    while True:
        try:
            scraped = len(prom.instant(validators_scraped()))
        except PlatformError:
            scraped = 0
        if on_progress is not None:
            on_progress(scraped)
        if scraped >= total:
            return
        if time.monotonic() >= deadline:
            raise PlatformError(
                f"prometheus at {prom.url} scraped {scraped} of {total} validators in time: {hint}"
            )
        time.sleep(POLL_S)
