"""Prometheus metrics of one load-generator process, in their own registry.

Offered vs sent vs acknowledged are kept apart on purpose: ``offered`` is what the schedule
asked for, ``sent`` what went out in ``SubmitTransactions`` calls (resends included),
``acked`` what a validator accepted. Every sent transaction ends as acked or rejected (an RPC
failure rejects the whole batch with reason ``rpc_<code>``), so
``sent == acked + sum(rejected)``; ``missed`` counts offered transactions never sent because
their slot was too late.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import start_http_server
from pydantic import BaseModel, ConfigDict

from loadgen.errors import LoadgenError

#: End-to-end latency buckets: 5 ms .. 60 s.
E2E_LATENCY_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.2,
    0.35,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    7.5,
    10.0,
    15.0,
    20.0,
    30.0,
    45.0,
    60.0,
)
METRIC_NAMES: tuple[str, ...] = (
    "aitbc_loadgen_offered_txs_total",
    "aitbc_loadgen_sent_txs_total",
    "aitbc_loadgen_acked_txs_total",
    "aitbc_loadgen_rejected_txs_total",
    "aitbc_loadgen_missed_txs_total",
    "aitbc_loadgen_resent_txs_total",
    "aitbc_loadgen_backoffs_total",
    "aitbc_loadgen_e2e_latency_seconds",
    "aitbc_loadgen_probes_total",
    "aitbc_loadgen_target_tps",
    "aitbc_loadgen_presigned_txs",
)


class LoadgenTotals(BaseModel):
    """The counters of one process at one moment (what the run summary file holds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    offered: int
    sent: int
    acked: int
    missed: int
    resent: int
    backoffs: int
    rejected: dict[str, int]
    probes: dict[str, int]
    e2e_latency_count: int
    e2e_latency_sum_s: float


@dataclass(frozen=True)
class MetricsServer:
    """A running metrics endpoint (``shutdown()`` stops it)."""

    port: int
    _server: object

    def shutdown(self) -> None:
        for method in ("shutdown", "server_close"):
            stop = getattr(self._server, method, None)
            if callable(stop):
                stop()


class LoadgenMetrics:
    """The load generator's metrics (names in ``METRIC_NAMES``), registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        self.offered = Counter(
            "aitbc_loadgen_offered_txs", "Transactions the load schedule asked for", registry=reg
        )
        self.sent = Counter(
            "aitbc_loadgen_sent_txs",
            "Transactions sent in SubmitTransactions calls (resends included)",
            registry=reg,
        )
        self.acked = Counter(
            "aitbc_loadgen_acked_txs", "Transactions a validator accepted", registry=reg
        )
        self.rejected = Counter(
            "aitbc_loadgen_rejected_txs",
            "Sent transactions not accepted, by the validator's reason or rpc_<grpc code>",
            ["reason"],
            registry=reg,
        )
        self.missed = Counter(
            "aitbc_loadgen_missed_txs",
            "Offered transactions never sent because their batch slot was too late",
            registry=reg,
        )
        self.resent = Counter(
            "aitbc_loadgen_resent_txs",
            "Transactions sent again after a retryable RPC failure",
            registry=reg,
        )
        self.backoffs = Counter(
            "aitbc_loadgen_backoffs",
            "Back-offs after RESOURCE_EXHAUSTED (the validator's mempool or RPC limit)",
            registry=reg,
        )
        self.e2e_latency = Histogram(
            "aitbc_loadgen_e2e_latency_seconds",
            "Probe transactions: submit to commit seen in the validator's commit stream",
            buckets=E2E_LATENCY_BUCKETS,
            registry=reg,
        )
        self.probes = Counter(
            "aitbc_loadgen_probes",
            "Latency probes by outcome (committed, timeout, rejected, rpc_error)",
            ["outcome"],
            registry=reg,
        )
        self.target_tps = Gauge(
            "aitbc_loadgen_target_tps", "Offered rate of this process now (tx/s)", registry=reg
        )
        self.presigned = Gauge(
            "aitbc_loadgen_presigned_txs",
            "Signed transactions waiting to be sent in this process",
            registry=reg,
        )
        self.info = Info(
            "aitbc_loadgen", "Run id, worker and load settings of this process", registry=reg
        )

    def describe_run(self, labels: Mapping[str, str]) -> None:
        self.info.info(dict(labels))

    def record_rejections(self, counts: Mapping[str, int]) -> None:
        for reason, count in counts.items():
            if count:
                self.rejected.labels(reason=reason).inc(count)

    def totals(self) -> LoadgenTotals:
        """Every counter's current value."""
        get = self.registry.get_sample_value

        def count(name: str) -> int:
            return int(get(name) or 0)

        def by_label(name: str, label: str) -> dict[str, int]:
            values: dict[str, int] = {}
            for family in self.registry.collect():
                for sample in family.samples:
                    if sample.name == name and sample.value:
                        values[sample.labels[label]] = int(sample.value)
            return values

        return LoadgenTotals(
            offered=count("aitbc_loadgen_offered_txs_total"),
            sent=count("aitbc_loadgen_sent_txs_total"),
            acked=count("aitbc_loadgen_acked_txs_total"),
            missed=count("aitbc_loadgen_missed_txs_total"),
            resent=count("aitbc_loadgen_resent_txs_total"),
            backoffs=count("aitbc_loadgen_backoffs_total"),
            rejected=by_label("aitbc_loadgen_rejected_txs_total", "reason"),
            probes=by_label("aitbc_loadgen_probes_total", "outcome"),
            e2e_latency_count=count("aitbc_loadgen_e2e_latency_seconds_count"),
            e2e_latency_sum_s=float(get("aitbc_loadgen_e2e_latency_seconds_sum") or 0.0),
        )

    def serve(self, port: int, address: str = "0.0.0.0") -> MetricsServer:
        """Serve ``/metrics`` on ``address:port`` in a background thread."""
        try:
            server, _thread = start_http_server(port, addr=address, registry=self.registry)
        except OSError as error:
            raise LoadgenError(
                f"AITBC_LOADGEN_METRICS_PORT={port}: cannot listen on {address}:{port} "
                f"({error.strerror}): pick a free port, or 0 to serve no metrics"
            ) from None
        return MetricsServer(port=port, _server=server)
