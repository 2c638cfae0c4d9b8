"""Byzantine validators among real processes (issue 10): one attacker of four (below a third by
every measure), switched on at start-up by its config and then through the fault API. For each
behaviour: the attacker counts its attack actions, the honest nodes count what they refused (or
slash the attacker), and the chain stays safe (one hash per height everywhere) and live."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from testnet import BackgroundLoad, LocalNetwork, NetworkFactory

pytestmark = pytest.mark.slow

ATTACKER = 3
HONEST = (0, 1, 2)


@pytest.fixture(scope="module")
def network(make_module_network: NetworkFactory) -> Iterator[LocalNetwork]:
    net = make_module_network(accounts=32, byzantine={ATTACKER: {"behaviour": "equivocate"}})
    net.start_all()
    net.wait_ready(timeout=60)
    yield net
    net.require_alive()


def _acted(network: LocalNetwork, behaviour: str) -> float:
    return network.metric(ATTACKER, "aitbc_byzantine_actions_total", behaviour=behaviour)


def _refused(network: LocalNetwork, index: int, *reasons: str) -> float:
    return sum(
        network.metric(index, "aitbc_byzantine_rejected_total", reason=reason) for reason in reasons
    )


def _same_chain(network: LocalNetwork) -> None:
    top = min(network.heights(HONEST).values())
    reference = network.committed_hashes(HONEST[0], 1, top)
    assert len(reference) == top
    for index in (*HONEST[1:], ATTACKER):
        hashes = network.committed_hashes(index, 1, top)
        assert hashes == reference[: len(hashes)], index


def _still_live(network: LocalNetwork) -> None:
    network.wait_height(max(network.heights(HONEST).values()) + 3, timeout=60, indices=HONEST)


def test_a_startup_equivocator_is_slashed_and_says_what_it_runs(network: LocalNetwork) -> None:
    status = network.status(ATTACKER)
    assert status["byzantine"] == ["equivocate"]
    assert [f["kind"] for f in status["faults"]] == ["byzantine"]
    with BackgroundLoad(network, owners=HONEST, batch_size=20, interval_s=0.2):
        network.wait_until(
            lambda: all(network.metric(i, "aitbc_slashing_events_total") >= 1 for i in HONEST),
            timeout=60,
            what="every honest node to slash the equivocator",
        )
    assert _acted(network, "equivocate") > 0
    for index in HONEST:
        assert network.status(index)["byzantine"] == []
        assert _acted_by(network, index) == 0
    _still_live(network)
    _same_chain(network)
    network.clear_faults(ATTACKER)  # the start-up attack is a fault like any other: healable
    assert network.status(ATTACKER)["byzantine"] == []


def _acted_by(network: LocalNetwork, index: int) -> float:
    return sum(
        value
        for (name, _labels), value in network.metric_samples(index).items()
        if name == "aitbc_byzantine_actions_total"
    )


@pytest.mark.parametrize(
    ("behaviour", "reasons"),
    [
        ("tamper-certificate", ("qc_bad_signature", "qc_bad_signers")),
        ("wrong-chain", ("bad_vote_signature", "bad_timeout_signature", "bad_proposal_signature")),
        ("flood", ("round_too_far_ahead", "oversized_message")),
        ("invalid-batch", ("invalid_batch",)),
    ],
)
def test_a_behaviour_set_through_the_fault_api_is_refused_by_honest_nodes(
    network: LocalNetwork, behaviour: str, reasons: tuple[str, ...]
) -> None:
    network.clear_faults(ATTACKER)
    before = {i: _refused(network, i, *reasons) for i in HONEST}
    acted = _acted(network, behaviour)
    fault = network.put_fault(
        ATTACKER, {"kind": "byzantine", "behaviour": behaviour, "duration_s": 60}
    )
    assert fault["params"]["behaviour"] == behaviour
    assert network.status(ATTACKER)["byzantine"] == [behaviour]
    with BackgroundLoad(network, owners=HONEST, batch_size=20, interval_s=0.2):
        network.wait_until(
            lambda: (
                _acted(network, behaviour) > acted
                and all(_refused(network, i, *reasons) > before[i] for i in HONEST)
            ),
            timeout=60,
            what=f"{behaviour}: the attacker to act and every honest node to refuse it",
        )
        _still_live(network)
    network.clear_faults(ATTACKER)
    _still_live(network)
    _same_chain(network)
