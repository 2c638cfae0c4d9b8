"""stake_table: the genesis stake of every validator (the node's genesis must agree)."""

from __future__ import annotations

import importlib.util

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.scenario.voting_power import BASE_STAKE, StakeEntry, StakeSpecError, stake_table


def test_equal() -> None:
    table = stake_table(4, 2, "equal", 1)
    assert table == (
        StakeEntry(0, BASE_STAKE, True),
        StakeEntry(1, BASE_STAKE, True),
        StakeEntry(2, BASE_STAKE, False),
        StakeEntry(3, BASE_STAKE, False),
    )


def test_zipf_exact_values_for_four() -> None:
    assert [e.stake for e in stake_table(4, 4, "zipf", 1)] == [1_920_000, 960_000, 639_999, 480_000]


@pytest.mark.parametrize("validators", [1, 2, 21, 100, 1000])
def test_zipf_is_decreasing_and_keeps_the_total(validators: int) -> None:
    stakes = [e.stake for e in stake_table(validators, 1, "zipf", 1)]
    assert stakes == sorted(stakes, reverse=True)
    assert min(stakes) >= 1
    total = BASE_STAKE * validators
    assert total - validators <= sum(stakes) <= total  # floor division loses < 1 per validator
    if validators > 1:
        assert stakes[0] == pytest.approx(2 * stakes[1], rel=1e-5)


def test_uniform_is_in_range_deterministic_and_seeded() -> None:
    first = [e.stake for e in stake_table(200, 21, "uniform:100:200", 7)]
    assert all(100 <= s <= 200 for s in first)
    assert first == [e.stake for e in stake_table(200, 21, "uniform:100:200", 7)]
    assert first == [e.stake for e in stake_table(200, 21, "uniform:100:200", "7")]
    assert first != [e.stake for e in stake_table(200, 21, "uniform:100:200", 8)]
    assert len(set(first)) > 50


def test_uniform_with_equal_bounds() -> None:
    assert {e.stake for e in stake_table(5, 1, "uniform:9:9", 1)} == {9}


def test_explicit_list() -> None:
    table = stake_table(3, 1, [5, 0, 7], 1)
    assert [(e.stake, e.authority) for e in table] == [(5, True), (0, False), (7, False)]


@pytest.mark.parametrize(
    ("validators", "authorities", "spec", "message"),
    [
        (3, 1, [1, 2], "has 2 entries but there are 3 validators"),
        (2, 1, [1, -1], "stake of validator 1 is -1"),
        (2, 1, [0, 0], "sums to 0"),
        (2, 1, "pareto", "unknown stake spec 'pareto'"),
        (2, 1, "uniform:5:1", "LO (5) must not exceed HI (1)"),
        (2, 1, "uniform:0:0", "HI must be > 0"),
        (2, 3, "equal", "authorities must be between 1 and validators"),
        (0, 1, "equal", "validators must be >= 1"),
    ],
)
def test_bad_specs(validators: int, authorities: int, spec: object, message: str) -> None:
    with pytest.raises(StakeSpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        stake_table(validators, authorities, spec, 1)  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(
    validators=st.integers(1, 60),
    authorities_ratio=st.floats(0.01, 1.0),
    spec=st.sampled_from(["equal", "zipf", "uniform:1:1000", "uniform:0:5"]),
    seed=st.integers(0, 2**32),
)
def test_tables_are_well_formed(
    validators: int, authorities_ratio: float, spec: str, seed: int
) -> None:
    authorities = max(1, round(validators * authorities_ratio))
    table = stake_table(validators, authorities, spec, seed)
    assert [e.index for e in table] == list(range(validators))
    assert [e.authority for e in table] == [i < authorities for i in range(validators)]
    assert all(e.stake >= 0 for e in table)
    assert table == stake_table(validators, authorities, spec, seed)


needs_genesis = pytest.mark.skipif(
    importlib.util.find_spec("aitbc_node.genesis") is None,
    reason="aitbc_node.genesis (the node's testnet genesis) is not importable",
)


@needs_genesis
@pytest.mark.parametrize(
    "spec", ["equal", "zipf", "uniform:1:1000", "uniform:500:500", [3, 0, 9, 1, 4, 4, 2]]
)
@pytest.mark.parametrize("seed", ["1", "sim-42"])
def test_the_node_genesis_gives_the_same_table(spec: object, seed: str) -> None:
    from aitbc_node.crypto import ModeledScheme
    from aitbc_node.genesis import make_testnet_genesis

    genesis = make_testnet_genesis(
        validators=7,
        authorities=3,
        seed=seed,
        stake=spec,
        scheme=ModeledScheme(),  # type: ignore[arg-type]
    )
    node = [(v.index, v.stake, v.authority) for v in genesis.validators]
    ours = [(e.index, e.stake, e.authority) for e in stake_table(7, 3, spec, seed)]  # type: ignore[arg-type]
    assert ours == node
