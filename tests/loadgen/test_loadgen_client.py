"""The plain client against the node double on 127.0.0.1: bursts, retries, commit following."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
from aitbc_node.genesis import Genesis
from loadgen_node_double import NodeDoubleCluster

from loadgen.client import follow_commits, submit_burst, wait_for_commits
from loadgen.errors import CommitStreamError, LoadgenConfigError


def test_burst_is_accepted_spread_over_targets_and_committed(
    node_cluster: NodeDoubleCluster, genesis_path: Path
) -> None:
    result = submit_burst(node_cluster.targets, genesis_path, count=530, batch_size=50)
    assert result.all_accepted
    assert result.sent == 530 and result.calls == 11 and result.retries == 0
    assert result.rejected == {}
    assert len(set(result.accepted_ids)) == 530
    assert set(result.per_target) == set(node_cluster.targets)
    assert min(result.per_target.values()) >= 250
    assert result.height_before is not None
    assert sum(result.next_nonces.values()) == 530
    assert node_cluster.chain.accepted_total() == 530
    done = wait_for_commits(
        node_cluster.targets[1],
        result.accepted_ids,
        timeout_s=10,
        from_height=result.height_before + 1,
    )
    assert done.complete, f"{len(done.missing)} not committed"
    assert set(done.committed) == set(result.accepted_ids)


def test_bursts_continue_from_the_returned_nonces(
    node_cluster: NodeDoubleCluster, genesis: Genesis
) -> None:
    first = submit_burst(node_cluster.targets, genesis, count=40, batch_size=10, accounts=[0, 1])
    again = submit_burst(
        node_cluster.targets,
        genesis,
        count=40,
        batch_size=10,
        accounts=[0, 1],
        nonces=first.next_nonces,
    )
    assert first.all_accepted and again.all_accepted
    assert again.next_nonces == {0: 40, 1: 40}
    replay = submit_burst(node_cluster.targets, genesis, count=10, batch_size=10, accounts=[0, 1])
    assert replay.accepted == 0
    assert replay.rejected == {"duplicate": 10}  # same nonces, same bytes: the node has them


def test_resource_exhausted_batches_are_resent(
    node_cluster: NodeDoubleCluster, genesis: Genesis
) -> None:
    node_cluster.chain.exhausted_calls = 2
    result = submit_burst(
        node_cluster.targets, genesis, count=60, batch_size=20, accounts=[5], in_flight=1
    )
    assert result.all_accepted
    assert result.retries == 2
    assert result.sent == 100
    assert result.calls == 5


def test_unreachable_validator_is_counted_not_hidden(genesis: Genesis) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{closed.getsockname()[1]}"
    result = submit_burst([target], genesis, count=20, batch_size=10, timeout_s=0.5, max_attempts=2)
    assert result.accepted == 0
    assert result.rejected == {"rpc_unavailable": 20}
    assert result.sent == 40 and result.retries == 2
    assert result.height_before is None


def test_follow_commits_reports_blocks(node_cluster: NodeDoubleCluster) -> None:
    heights = []
    for record in follow_commits(node_cluster.targets[0], timeout_s=5):
        heights.append(record.height)
        if len(heights) == 3:
            break
    assert heights == sorted(heights) and len(set(heights)) == 3


def test_follow_commits_of_a_dead_validator_raises(genesis: Genesis) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{closed.getsockname()[1]}"
    with pytest.raises(CommitStreamError, match=rf"commit stream of {target} failed"):
        list(follow_commits(target, timeout_s=2))


def test_burst_arguments_are_checked(genesis: Genesis) -> None:
    with pytest.raises(LoadgenConfigError, match="targets is empty"):
        submit_burst([], genesis, count=1)
    with pytest.raises(LoadgenConfigError, match="batch_size=0"):
        submit_burst(["127.0.0.1:1"], genesis, count=1, batch_size=0)
    with pytest.raises(LoadgenConfigError, match=r"^AITBC_TX_SIZE=5"):
        submit_burst(["127.0.0.1:1"], genesis, count=1, tx_size=5)


def test_client_imports_neither_locust_nor_gevent() -> None:
    import subprocess

    code = (
        "import sys, loadgen.client; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent')))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert completed.stdout.strip() == "[]"
