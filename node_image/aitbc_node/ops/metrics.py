"""The node's Prometheus metrics (names fixed by DESIGN.md, prefix ``aitbc_``).

``NodeMetrics`` registers everything on the registry it is given (no global registry), so
several nodes can live in one process (tests) and tests can read samples without HTTP.
Label series that dashboards select on (every reject reason, every fault kind) are created at
zero up front, so a query never returns "no data" merely because nothing happened yet.

No ``*_created`` series: nothing reads them, and they were a third of every scrape's lines
(the switch is the client library's, for the whole process: a validator's process is ours).
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from aitbc_node.byzantine import BEHAVIOURS
from aitbc_node.consensus.reasons import REJECT_REASONS
from aitbc_node.ledger import REJECT_REASONS as LEDGER_REJECT_REASONS
from aitbc_node.ops.faults import FAULT_KINDS

disable_created_metrics()

#: Buckets of the finality and block-commit histograms: 5 ms to 60 s (the client's defaults
#: stop at 10 s, below a SECURE-mode finality under faults).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0,
    15.0, 20.0, 30.0, 45.0, 60.0,
)  # fmt: skip
#: Reasons the runtime itself rejects a transaction for (before the ledger sees it).
NODE_REJECT_REASONS: tuple[str, ...] = (
    "bad_signature",
    "duplicate",
    "mempool_full",
    "decode_error",
    "too_large",
)
#: Every reason label of ``aitbc_txs_rejected_total`` created up front.
ALL_REJECT_REASONS: tuple[str, ...] = tuple(
    dict.fromkeys(LEDGER_REJECT_REASONS + NODE_REJECT_REASONS)
)
#: Fault kinds (the label values of ``aitbc_fault_active``).
FAULT_KIND_LABELS: tuple[str, ...] = FAULT_KINDS
#: Label values of ``aitbc_byzantine_rejected_total{reason}``.
BYZANTINE_REJECT_REASONS: tuple[str, ...] = REJECT_REASONS
#: ``aitbc_consensus_mode`` values.
MODE_VALUES: dict[str, int] = {"fast": 0, "balanced": 1, "secure": 2}

#: Every metric family DESIGN.md names (as exposed, without _bucket/_count/_sum suffixes).
DESIGN_METRIC_NAMES: tuple[str, ...] = (
    "aitbc_block_height",
    "aitbc_round",
    "aitbc_epoch",
    "aitbc_consensus_mode",
    "aitbc_blocks_committed_total",
    "aitbc_txs_submitted_total",
    "aitbc_txs_committed_total",
    "aitbc_txs_rejected_total",
    "aitbc_tx_finality_seconds",
    "aitbc_block_commit_latency_seconds",
    "aitbc_timeouts_total",
    "aitbc_slashing_events_total",
    "aitbc_mempool_txs",
    "aitbc_peers_connected",
    "aitbc_fault_active",
)
#: The metric families of byzantine faults (issue 10), beyond DESIGN.md's.
BYZANTINE_METRIC_NAMES: tuple[str, ...] = ("aitbc_byzantine_actions", "aitbc_byzantine_rejected")


class NodeMetrics:
    """Every metric of one validator, registered on ``registry``.

    Counters are exposed with the ``_total`` suffix (``blocks_committed_total`` is the family
    ``aitbc_blocks_committed``, sample ``aitbc_blocks_committed_total``)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        validator_index: int,
        *,
        process_metrics: bool = True,
    ) -> None:
        self.registry = registry

        def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
            return Gauge(f"aitbc_{name}", doc, labels, registry=registry)

        def counter(name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
            return Counter(f"aitbc_{name}", doc, labels, registry=registry)

        def histogram(name: str, doc: str) -> Histogram:
            return Histogram(f"aitbc_{name}", doc, buckets=LATENCY_BUCKETS, registry=registry)

        self.block_height = gauge("block_height", "Height of the last committed block")
        self.round = gauge("round", "Current consensus round")
        self.epoch = gauge("epoch", "Current epoch")
        self.consensus_mode = gauge(
            "consensus_mode", "Consensus mode in force: 0 fast, 1 balanced, 2 secure"
        )
        self.blocks_committed_total = counter("blocks_committed", "Blocks committed by this node")
        self.txs_submitted_total = counter(
            "txs_submitted", "Transactions received from clients (accepted or not)"
        )
        self.txs_committed_total = counter(
            "txs_committed", "Transactions in blocks this node committed"
        )
        self.txs_rejected_total = counter(
            "txs_rejected", "Transactions rejected, by reason", ["reason"]
        )
        self.tx_finality_seconds = histogram(
            "tx_finality_seconds", "Seconds from a transaction's arrival to the commit of its block"
        )
        self.block_commit_latency_seconds = histogram(
            "block_commit_latency_seconds", "Seconds from a block's proposal to its commit"
        )
        self.timeouts_total = counter("timeouts", "Rounds this node timed out of")
        self.slashing_events_total = counter(
            "slashing_events", "Equivocation evidence committed (slashings)"
        )
        self.mempool_txs = gauge("mempool_txs", "Transactions waiting in the mempool")
        self.peers_connected = gauge("peers_connected", "Peers with a live stream to this node")
        self.fault_active = gauge(
            "fault_active", "Injected faults active on this node, by kind", ["kind"]
        )
        self.byzantine_actions_total = counter(
            "byzantine_actions",
            "Attack actions this node performed (a byzantine fault), by behaviour",
            ["behaviour"],
        )
        self.byzantine_rejected_total = counter(
            "byzantine_rejected",
            "Peer messages, batches or transactions this node refused as hostile, by reason",
            ["reason"],
        )
        self.validator_index = gauge("validator_index", "This node's validator index")
        self.validator_index.set(validator_index)
        for reason in ALL_REJECT_REASONS:
            self.txs_rejected_total.labels(reason=reason)
        for kind in FAULT_KIND_LABELS:
            self.fault_active.labels(kind=kind).set(0)
        for behaviour in BEHAVIOURS:
            self.byzantine_actions_total.labels(behaviour=behaviour)
        for reason in BYZANTINE_REJECT_REASONS:
            self.byzantine_rejected_total.labels(reason=reason)
        if process_metrics:
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)

    def observe_commit(
        self,
        height: int,
        round_: int,
        epoch: int,
        tx_count: int,
        finality_samples: Sequence[float],
        block_latency_s: float,
    ) -> None:
        """Record one committed block: height/round/epoch gauges, one block, ``tx_count``
        transactions, one finality sample per transaction this node timed, the block's
        proposal-to-commit latency. Negative samples (clock skew) count as 0."""
        self.block_height.set(height)
        self.round.set(round_)
        self.epoch.set(epoch)
        self.blocks_committed_total.inc()
        if tx_count > 0:
            self.txs_committed_total.inc(tx_count)
        observe = self.tx_finality_seconds.observe
        for sample in finality_samples:
            observe(sample if sample > 0.0 else 0.0)
        self.block_commit_latency_seconds.observe(block_latency_s if block_latency_s > 0 else 0.0)

    def reject(self, reason: str, n: int = 1) -> None:
        """Count ``n`` transactions rejected for ``reason`` (a REJECT_REASONS / node reason)."""
        if n > 0:
            self.txs_rejected_total.labels(reason=reason).inc(n)

    def set_mode(self, mode: str) -> None:
        """Set ``aitbc_consensus_mode`` from a mode name (fast, balanced, secure)."""
        value = MODE_VALUES.get(mode)
        if value is None:
            raise ValueError(
                f"consensus mode {mode!r} has no metric value: use one of {', '.join(MODE_VALUES)}"
            )
        self.consensus_mode.set(value)

    def set_fault_active(self, kind: str, count: int) -> None:
        """Set ``aitbc_fault_active{kind}`` to the number of active faults of that kind."""
        self.fault_active.labels(kind=kind).set(count)

    def byzantine_acted(self, performed: dict[str, int]) -> None:
        """Count attack actions per behaviour (``aitbc_byzantine_actions_total``)."""
        for behaviour, n in performed.items():
            self.byzantine_actions_total.labels(behaviour=behaviour).inc(n)

    def byzantine_rejected(self, reason: str, n: int = 1) -> None:
        """Count ``n`` hostile things refused for ``reason`` (byzantine_rejected_total)."""
        self.byzantine_rejected_total.labels(reason=reason).inc(n)
