"""``/metrics`` of real validators after a load (issue 3): every metric DESIGN.md names, with
the right type, and a finality histogram whose count equals the committed transactions."""

from __future__ import annotations

import math

import pytest
from aitbc_node.ledger import REJECT_REASONS
from aitbc_node.ops.faults import FAULT_KINDS
from prometheus_client.parser import text_string_to_metric_families
from testnet import LocalNetwork

pytestmark = pytest.mark.slow

LOAD = 2_000
#: DESIGN.md's metrics (family names as the Prometheus parser reports them) and their types.
DESIGN_FAMILIES = {
    "aitbc_block_height": "gauge",
    "aitbc_round": "gauge",
    "aitbc_epoch": "gauge",
    "aitbc_consensus_mode": "gauge",
    "aitbc_blocks_committed": "counter",
    "aitbc_txs_submitted": "counter",
    "aitbc_txs_committed": "counter",
    "aitbc_txs_rejected": "counter",
    "aitbc_tx_finality_seconds": "histogram",
    "aitbc_block_commit_latency_seconds": "histogram",
    "aitbc_timeouts": "counter",
    "aitbc_slashing_events": "counter",
    "aitbc_mempool_txs": "gauge",
    "aitbc_peers_connected": "gauge",
    "aitbc_fault_active": "gauge",
}


@pytest.fixture(scope="module")
def loaded_network(running_network: LocalNetwork) -> LocalNetwork:
    """The module's network after LOAD transfers committed on every node."""
    network = running_network
    signed = network.sign_transfers(LOAD)
    outcome = network.submit_batches(network.sticky_batches(signed, 250))
    assert len(outcome.accepted_ids) == LOAD
    network.wait_until(
        lambda: all(
            network.metric(i, "aitbc_txs_committed_total") >= LOAD for i in range(len(network))
        ),
        timeout=60,
        what=f"{LOAD} committed transactions on every node",
    )
    return network


@pytest.mark.parametrize("index", range(4))
def test_every_design_metric_is_exposed_with_its_type(
    loaded_network: LocalNetwork, index: int
) -> None:
    families = {
        family.name: family
        for family in text_string_to_metric_families(loaded_network.metrics_text(index))
    }
    for name, kind in DESIGN_FAMILIES.items():
        assert name in families, f"validator {index} does not expose {name}"
        assert families[name].type == kind, name
    rejected = {s.labels["reason"] for s in families["aitbc_txs_rejected"].samples}
    assert set(REJECT_REASONS) <= rejected
    faults = {s.labels["kind"] for s in families["aitbc_fault_active"].samples}
    assert set(FAULT_KINDS) <= faults
    buckets = [
        float(s.labels["le"])
        for s in families["aitbc_tx_finality_seconds"].samples
        if s.name.endswith("_bucket")
    ]
    assert max(b for b in buckets if not math.isinf(b)) >= 60.0  # DESIGN: buckets up to 60 s
    # Process metrics come along (RSS for the bench and dashboards).
    assert "process_resident_memory_bytes" in families


@pytest.mark.parametrize("index", range(4))
def test_finality_count_equals_committed_transactions(
    loaded_network: LocalNetwork, index: int
) -> None:
    samples = loaded_network.metric_samples(index)  # one scrape: one consistent snapshot

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    committed = value("aitbc_txs_committed_total")
    assert committed == LOAD
    assert value("aitbc_tx_finality_seconds_count") == committed
    assert value("aitbc_tx_finality_seconds_bucket", le="+Inf") == committed
    assert value("aitbc_tx_finality_seconds_sum") > 0
    height = value("aitbc_block_height")
    assert height >= 1
    assert value("aitbc_blocks_committed_total") == height  # never restarted: all commits
    assert value("aitbc_block_commit_latency_seconds_count") == height
    assert value("aitbc_peers_connected") == 3
    assert value("aitbc_consensus_mode") == 1  # balanced
    assert value("aitbc_slashing_events_total") == 0
    assert value("aitbc_mempool_txs") == 0  # everything committed
    # Each validator received the transactions of the accounts it owns (sticky routing).
    owned = sum(1 for n in range(LOAD) if loaded_network.accounts[n % 64].index % 4 == index)
    assert value("aitbc_txs_submitted_total") == owned


def test_fault_active_follows_the_fault_api(loaded_network: LocalNetwork) -> None:
    network = loaded_network
    network.put_fault(1, {"kind": "delay", "delay_ms": 5, "peers": [0]})
    network.put_fault(1, {"kind": "delay", "delay_ms": 5, "peers": [2]})
    assert network.metric(1, "aitbc_fault_active", kind="delay") == 2
    network.clear_faults(1)
    assert network.metric(1, "aitbc_fault_active", kind="delay") == 0
    network.wait_height(network.height(0) + 2, timeout=30)  # still committing
