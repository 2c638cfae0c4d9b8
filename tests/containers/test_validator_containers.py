"""A validator network in containers of the node image (issue 11): genesis on the host, each
validator ``aitbc-node run`` in its own container (host network, config folder read-only, data
in a named volume, uid 10001). The network commits; a validator container killed with SIGKILL
and started again resumes from its volume, catches up and never signs twice in a round."""

from __future__ import annotations

import re

import pytest
from container_network import IMAGE_BUILD_TIMEOUT_S, ContainerNetworkFactory
from testnet import BackgroundLoad

from orchestrator.external.container_engine import ContainerEngine

# The first test of a session on a fresh machine also builds the image (see conftest.py).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(IMAGE_BUILD_TIMEOUT_S + 300)]

VICTIM = 3
CATCH_UP_BLOCKS = 2
#: Generous bounds for a loaded 2-core machine: the waits end as soon as the condition holds.
READY_S = 180.0
PROGRESS_S = 90.0
#: Rejections a client may see while commits stall (it ran more than the nonce window ahead).
STALL_REJECTIONS = {"nonce_gap"}


def test_a_killed_validator_container_resumes_from_its_volume_without_double_signing(
    make_container_network: ContainerNetworkFactory, engine: ContainerEngine
) -> None:
    network = make_container_network(accounts=32, block_interval_ms=200)
    network.start_all()
    network.wait_ready(timeout=READY_S)
    for index in range(len(network)):
        state = engine.state(network.container_name(index))
        assert state.running and state.labels == {**state.labels, **network.labels}
    survivors = [i for i in range(len(network)) if i != VICTIM]
    with BackgroundLoad(network, owners=survivors, batch_size=120, interval_s=0.1) as load:
        network.wait_height(network.height(0) + 5, timeout=PROGRESS_S)
        network.kill(VICTIM)
        killed = engine.state(network.container_name(VICTIM))
        assert killed.status == "exited" and killed.exit_code == 137  # 128 + SIGKILL
        # 3 of 4 are a quorum: they go on committing while it is down.
        network.wait_height(network.height(0) + 3, timeout=PROGRESS_S, indices=survivors)
        network.start(VICTIM)  # the same container: same file system, same volume
        network.wait_until(
            lambda: network.caught_up(VICTIM, CATCH_UP_BLOCKS),
            timeout=PROGRESS_S,
            what=f"validator {VICTIM} within {CATCH_UP_BLOCKS} blocks of the others",
        )
        network.wait_height(network.height(0) + 5, timeout=PROGRESS_S)  # it votes again
    assert set(load.failures) <= STALL_REJECTIONS, load.failures
    recovered = re.findall(rf"validator {VICTIM} recovered: height (\d+)", network.log_text(VICTIM))
    assert len(recovered) == 2, network.log_text(VICTIM)[-3000:]
    assert int(recovered[0]) == 0 < int(recovered[1])  # the second start read its volume
    network.assert_no_equivocation(VICTIM)
    network.assert_same_chain()
