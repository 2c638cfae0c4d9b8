"""The load generator's environment for a plan's load (the ``AITBC_*`` variables of
``loadgen/config.py``, documented in loadgen/README.md): one function, used by the local
platform for its Locust process and by the chart values for the Locust pods."""

from __future__ import annotations

import json
from collections.abc import Sequence

from orchestrator.scenario.plan import LoadPlan

__all__ = ["loadgen_environment", "number_text"]


def number_text(value: float) -> str:
    """A number as the load generator reads it: ``300``, ``0.5`` (no exponent for integers)."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def loadgen_environment(
    load: LoadPlan,
    run_id: str,
    *,
    genesis: str,
    targets: Sequence[str] | None = None,
    workers: int | None = None,
    probe_log: str | None = None,
    summary: str | None = None,
    metrics_port: int | None = None,
) -> dict[str, str]:
    """The ``AITBC_*`` variables of ``load`` for run ``run_id``: where the genesis is, and
    where the platform wants the validators' addresses (None: the platform sets them itself,
    as the chart does), the worker count, the probe log, the summary and the metrics port."""
    env = {
        "AITBC_GENESIS": genesis,
        "AITBC_TPS": number_text(load.tps),
        "AITBC_BATCH_SIZE": str(load.batch_size),
        "AITBC_TX_SIZE": str(load.tx_size),
        "AITBC_ACCOUNTS": str(load.accounts),
        "AITBC_FIRST_ACCOUNT": "0",
        "AITBC_SHAPE": load.shape,
        "AITBC_SHAPE_PARAMS": json.dumps(load.shape_params(), separators=(",", ":")),
        "AITBC_PROBE_INTERVAL_S": number_text(load.probe_interval_s) if load.probe_enabled else "0",
        "AITBC_RUN_ID": run_id,
    }
    optional = {
        "AITBC_TARGETS": None if targets is None else ",".join(targets),
        "AITBC_ENTRY_VALIDATORS": None
        if load.entry_validators is None
        else str(load.entry_validators),
        "AITBC_WORKERS": None if workers is None else str(workers),
        "AITBC_PROBE_LOG": probe_log,
        "AITBC_SUMMARY": summary,
        "AITBC_LOADGEN_METRICS_PORT": None if metrics_port is None else str(metrics_port),
    }
    env.update({name: value for name, value in optional.items() if value is not None})
    return env
