"""NodeMetrics: every DESIGN.md metric on an explicit registry, pre-created label series,
commit/reject helpers. Samples are read from the registry, without HTTP."""

from __future__ import annotations

import pytest
from aitbc_node.byzantine import BEHAVIOURS
from aitbc_node.consensus.reasons import REJECT_REASONS as BYZANTINE_REASONS
from aitbc_node.ledger import REJECT_REASONS
from aitbc_node.ops.metrics import NodeMetrics
from prometheus_client import CollectorRegistry

# From DESIGN.md "Stable interfaces", written out here so that a rename fails this test.
DESIGN_GAUGES = (
    "aitbc_block_height",
    "aitbc_round",
    "aitbc_epoch",
    "aitbc_consensus_mode",
    "aitbc_mempool_txs",
    "aitbc_peers_connected",
)
DESIGN_COUNTERS = (
    "aitbc_blocks_committed_total",
    "aitbc_txs_submitted_total",
    "aitbc_txs_committed_total",
    "aitbc_timeouts_total",
    "aitbc_slashing_events_total",
)
NODE_REASONS = ("bad_signature", "duplicate", "mempool_full", "decode_error", "too_large")
FAULT_KINDS = ("partition", "delay", "loss", "pause", "byzantine", "equivocate")


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> NodeMetrics:
    return NodeMetrics(registry, validator_index=5)


def test_every_design_metric_has_a_sample_from_the_start(
    registry: CollectorRegistry, metrics: NodeMetrics
) -> None:
    for name in (*DESIGN_GAUGES, *DESIGN_COUNTERS):
        assert registry.get_sample_value(name) == 0.0, name
    for histogram in ("aitbc_tx_finality_seconds", "aitbc_block_commit_latency_seconds"):
        assert registry.get_sample_value(f"{histogram}_count") == 0.0
        assert registry.get_sample_value(f"{histogram}_bucket", {"le": "0.005"}) == 0.0
        assert registry.get_sample_value(f"{histogram}_bucket", {"le": "60.0"}) == 0.0
    for reason in (*REJECT_REASONS, *NODE_REASONS):
        value = registry.get_sample_value("aitbc_txs_rejected_total", {"reason": reason})
        assert value == 0.0, reason
    for kind in FAULT_KINDS:
        assert registry.get_sample_value("aitbc_fault_active", {"kind": kind}) == 0.0, kind
    assert registry.get_sample_value("aitbc_validator_index") == 5.0
    for behaviour in BEHAVIOURS:
        labels = {"behaviour": behaviour}
        assert registry.get_sample_value("aitbc_byzantine_actions_total", labels) == 0.0
    for hostile in BYZANTINE_REASONS:
        labels = {"reason": hostile}
        assert registry.get_sample_value("aitbc_byzantine_rejected_total", labels) == 0.0
    families = {family.name for family in registry.collect()}
    assert "python_info" in families  # PlatformCollector
    assert registry.get_sample_value("process_resident_memory_bytes") is not None  # Process...


def test_histogram_buckets_run_from_5_ms_to_60_s(registry: CollectorRegistry) -> None:
    NodeMetrics(registry, validator_index=0, process_metrics=False)
    bounds = sorted(
        float(sample.labels["le"])
        for family in registry.collect()
        if family.name == "aitbc_tx_finality_seconds"
        for sample in family.samples
        if sample.name.endswith("_bucket")
    )
    assert bounds[:3] == [0.005, 0.01, 0.025]
    assert bounds[-2:] == [60.0, float("inf")]
    assert len(bounds) == 22


def test_observe_commit_updates_the_chain_gauges_counters_and_histograms(
    registry: CollectorRegistry, metrics: NodeMetrics
) -> None:
    metrics.observe_commit(
        height=10,
        round_=12,
        epoch=1,
        tx_count=3,
        finality_samples=[0.1, 0.4, -0.01],
        block_latency_s=0.25,
    )
    metrics.observe_commit(
        height=11, round_=13, epoch=1, tx_count=0, finality_samples=[], block_latency_s=0.3
    )
    value = registry.get_sample_value
    assert value("aitbc_block_height") == 11.0
    assert value("aitbc_round") == 13.0
    assert value("aitbc_epoch") == 1.0
    assert value("aitbc_blocks_committed_total") == 2.0
    assert value("aitbc_txs_committed_total") == 3.0
    assert value("aitbc_tx_finality_seconds_count") == 3.0
    assert value("aitbc_tx_finality_seconds_bucket", {"le": "0.005"}) == 1.0  # -0.01 counts as 0
    assert value("aitbc_tx_finality_seconds_bucket", {"le": "0.1"}) == 2.0
    assert value("aitbc_tx_finality_seconds_sum") == pytest.approx(0.5)
    assert value("aitbc_block_commit_latency_seconds_count") == 2.0


def test_reject_counts_by_reason(registry: CollectorRegistry, metrics: NodeMetrics) -> None:
    metrics.reject("mempool_full", 3)
    metrics.reject("stale_nonce")
    metrics.reject("stale_nonce", 0)
    value = registry.get_sample_value
    assert value("aitbc_txs_rejected_total", {"reason": "mempool_full"}) == 3.0
    assert value("aitbc_txs_rejected_total", {"reason": "stale_nonce"}) == 1.0
    assert value("aitbc_txs_rejected_total", {"reason": "duplicate"}) == 0.0


def test_set_mode_maps_names_to_values(registry: CollectorRegistry, metrics: NodeMetrics) -> None:
    for mode, number in (("fast", 0.0), ("secure", 2.0), ("balanced", 1.0)):
        metrics.set_mode(mode)
        assert registry.get_sample_value("aitbc_consensus_mode") == number
    with pytest.raises(ValueError, match="'turbo'"):
        metrics.set_mode("turbo")


def test_registries_are_explicit_so_nodes_do_not_collide() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    a = NodeMetrics(first, validator_index=0)
    NodeMetrics(second, validator_index=1)
    a.blocks_committed_total.inc()
    assert first.get_sample_value("aitbc_blocks_committed_total") == 1.0
    assert second.get_sample_value("aitbc_blocks_committed_total") == 0.0
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        NodeMetrics(first, validator_index=2)
