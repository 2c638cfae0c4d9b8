"""Four real validators under 10,000 signed transfers (issue 3, first acceptance bullet): every
transfer commits exactly once, every node has the same committed chain, balances add up."""

from __future__ import annotations

from collections import Counter

import pytest
from aitbc_node.ledger.tx import tx_id
from aitbc_node.proto.aitbc.v1 import node_pb2
from testnet import NetworkFactory

TRANSFERS = 10_000
BATCH = 500

pytestmark = pytest.mark.slow


def test_ten_thousand_transfers_commit_exactly_once_on_every_node(
    make_network: NetworkFactory,
) -> None:
    network = make_network(accounts=64, block_interval_ms=200)
    network.start_all()
    network.wait_ready(timeout=60)
    test_addresses = [account.address for account in network.accounts]
    height_before, balances_before = network.balances_at_one_height(0, test_addresses)
    genesis_balances = [account.balance for account in network.genesis.accounts]
    assert balances_before == genesis_balances  # no transfer yet

    signed = network.sign_transfers(TRANSFERS)
    sent_ids = {tx_id(raw) for txs in signed.values() for raw in txs}
    assert len(sent_ids) == TRANSFERS
    outcome = network.submit_batches(network.sticky_batches(signed, BATCH))
    assert outcome.rejected == {}
    assert set(outcome.accepted_ids) == sent_ids

    network.wait_until(
        lambda: all(
            network.metric(i, "aitbc_txs_committed_total") >= TRANSFERS for i in range(len(network))
        ),
        timeout=90,
        what=f"{TRANSFERS} committed transactions on every node",
    )
    top = min(network.heights().values())

    # Exactly once: the transactions of blocks 1..top, read from every node.
    reference_hashes = network.committed_hashes(0, 1, top)
    assert len(reference_hashes) == top
    for index in range(len(network)):
        assert network.committed_hashes(index, 1, top) == reference_hashes, index
        committed = Counter(
            tx_id(raw) for block in network.blocks(index, 1, top) for raw in block.transactions
        )
        duplicates = [tid.hex()[:16] for tid, n in committed.items() if n > 1]
        assert duplicates == [], f"validator {index} committed transactions twice"
        missing = sent_ids - committed.keys()
        assert not missing, f"validator {index} misses {len(missing)} transactions"
        assert set(committed) == sent_ids  # nothing else was submitted
        assert network.metric(index, "aitbc_txs_committed_total") == TRANSFERS

    # The commit stream replayed from height 1 tells the same story (heights in order, each
    # transaction once), as a client measuring end-to-end finality sees it.
    stream = network.stub(1).StreamCommits(
        node_pb2.CommitStreamRequest(from_height=1, include_tx_ids=True), timeout=60
    )
    heights: list[int] = []
    streamed: Counter[bytes] = Counter()
    try:
        for event in stream:
            heights.append(event.height)
            streamed.update(bytes(tid) for tid in event.tx_ids)
            assert event.tx_count == len(event.tx_ids)
            assert event.block_hash == reference_hashes[event.height - 1] or event.height > top
            assert event.epoch >= 1 and event.commit_time >= event.proposed_time > 0
            if event.height >= top:
                break
    finally:
        stream.cancel()
    assert heights == list(range(1, top + 1))
    assert set(streamed) == sent_ids and max(streamed.values()) == 1

    # Balances add up: transfers (fee 0) move value between test accounts only; the reward
    # addresses hold exactly block_reward per committed block (supply identity).
    reward = network.genesis.ledger.block_reward
    for index in range(len(network)):
        height, balances = network.balances_at_one_height(
            index, test_addresses + list(network.reward_addresses)
        )
        test_balances = balances[: len(test_addresses)]
        assert sum(test_balances) == sum(genesis_balances), index
        assert test_balances != genesis_balances  # the transfers did move value
        assert sum(balances[len(test_addresses) :]) == reward * height, index
        nonces = network.next_nonces(index)
        assert nonces == {a: len(txs) for a, txs in signed.items()}, index
    assert height_before >= 1
