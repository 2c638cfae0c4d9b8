"""Fault targets by voting power: windows per mode, resolution to ids at the boundaries, and the
semantics checked against the node's own quorum predicate (aitbc_node.consensus.types)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from aitbc_node.consensus.types import Mode, Validator, ValidatorSet
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.scenario.voting_power import (
    FRACTION_LABELS,
    StakeEntry,
    TargetUnreachableError,
    Window,
    fraction_windows,
    power_fractions,
    resolve_count,
    resolve_fraction,
    stake_table,
)

NODE_MODES = {"fast": [Mode.FAST], "balanced": [Mode.BALANCED], "secure": [Mode.SECURE]}
NODE_MODES["auto"] = [Mode.FAST, Mode.BALANCED, Mode.SECURE]


def node_set(table: Sequence[StakeEntry]) -> ValidatorSet:
    return ValidatorSet(tuple(Validator(e.index, b"", e.stake, e.authority) for e in table))


def is_quorum(table: Sequence[StakeEntry], mode: Mode, ids: Sequence[int]) -> bool:
    validators = node_set(table)
    return validators.quorum_from_tally(mode, *validators.tally(set(ids)))


def rest(table: Sequence[StakeEntry], ids: Sequence[int]) -> list[int]:
    return [e.index for e in table if e.index not in set(ids)]


def fractions_under_mode(table: Sequence[StakeEntry], mode: str, ids: Sequence[int]) -> list[float]:
    got = power_fractions(table, ids)
    measures = {"fast": ["authorities"], "secure": ["stake"]}.get(mode, ["authorities", "stake"])
    return [getattr(got, m) for m in measures]


def holds(table: Sequence[StakeEntry], mode: str, label: str, ids: Sequence[int]) -> bool:
    """The meaning of each label, written independently of the resolver."""
    if not ids:
        return False
    fractions = fractions_under_mode(table, mode, ids)
    modes = NODE_MODES[mode]
    if label == "minority-third":
        return all(f < 1 / 3 for f in fractions) and all(
            is_quorum(table, m, rest(table, ids)) for m in modes
        )
    if label == "half":
        return all(
            not is_quorum(table, m, ids) and not is_quorum(table, m, rest(table, ids))
            for m in modes
        )
    if label == "majority":
        return all(1 / 2 < f < 2 / 3 for f in fractions)
    return all(is_quorum(table, m, ids) for m in modes)


# ----------------------------------------------------------------------------- windows


def test_windows_for_four_equal_validators() -> None:
    table = stake_table(4, 4, "equal", 1)
    stake = 4_000_000
    assert fraction_windows("minority-third", "fast", table) == (
        Window("authorities", 4, 0, 1, 1.0),
    )
    assert fraction_windows("half", "secure", table) == (
        Window("authorities", 4, 0, 4, None),
        Window("stake", stake, stake - (2 * stake // 3 + 1) + 1, 2 * stake // 3, stake / 2),
    )
    supermajority = fraction_windows("supermajority", "balanced", table)
    assert [(w.low, w.high) for w in supermajority] == [(3, 4), (2 * stake // 3 + 1, stake)]
    majority = fraction_windows("majority", "fast", table)
    assert (majority[0].low, majority[0].high) == (3, 2)  # empty: 3 of 4 is already 75 %


def test_secure_minority_keeps_the_authority_oversight() -> None:
    table = stake_table(100, 21, "equal", 1)
    authorities, _ = fraction_windows("minority-third", "secure", table)
    assert (authorities.low, authorities.high, authorities.target) == (0, 21 - (21 // 3 + 1), None)


# ----------------------------------------------------------------------------- boundaries


@pytest.mark.parametrize("mode", ["fast", "balanced", "secure", "auto"])
def test_four_equal_validators(mode: str) -> None:
    table = stake_table(4, 4, "equal", 1)
    minority = resolve_fraction(table, mode, "minority-third", 1)
    half = resolve_fraction(table, mode, "half", 1)
    supermajority = resolve_fraction(table, mode, "supermajority", 1)
    assert (len(minority), len(half), len(supermajority)) == (1, 2, 3)
    for ids in (minority, half, supermajority):
        assert 0 not in ids  # avoidable with equal stakes
    assert power_fractions(table, minority).stake == 0.25 < 1 / 3
    assert power_fractions(table, supermajority).stake == 0.75 >= 2 / 3
    with pytest.raises(TargetUnreachableError, match="no set of validators is majority"):
        resolve_fraction(table, mode, "majority", 1)


def test_21_authorities_of_100_balanced() -> None:
    table = stake_table(100, 21, "equal", 5)
    minority = resolve_fraction(table, "balanced", "minority-third", 5)
    got = power_fractions(table, minority)
    # the largest set strictly below a third by both measures: 6 of 21 authorities, 33 % stake
    assert got.authorities == 6 / 21 and got.authorities < 1 / 3
    assert got.stake == 0.33 and got.stake < 1 / 3
    assert is_quorum(table, Mode.BALANCED, rest(table, minority))
    supermajority = resolve_fraction(table, "balanced", "supermajority", 5)
    got = power_fractions(table, supermajority)
    assert got.authorities >= 15 / 21 and got.stake >= 0.67  # floor(2T/3) + 1 in both
    assert len(supermajority) == 67 and 0 not in supermajority
    half = resolve_fraction(table, "balanced", "half", 5)
    assert abs(power_fractions(table, half).stake - 0.5) <= 0.01
    assert holds(table, "balanced", "half", half)


def test_21_authorities_of_100_fast_cuts_only_authorities() -> None:
    table = stake_table(100, 21, "equal", 5)
    minority = resolve_fraction(table, "fast", "minority-third", 5)
    assert len(minority) == 6 and all(table[i].authority for i in minority)
    assert power_fractions(table, minority).authorities < 1 / 3


@pytest.mark.parametrize("mode", ["balanced", "secure", "auto"])
@pytest.mark.parametrize("label", FRACTION_LABELS)
def test_zipf_stakes_21_of_100(mode: str, label: str) -> None:
    table = stake_table(100, 21, "zipf", 3)
    ids = resolve_fraction(table, mode, label, 3)
    assert holds(table, mode, label, ids)
    got = power_fractions(table, ids)
    if label == "minority-third":
        assert got.stake < 1 / 3 and got.stake > 0.32  # close to the boundary, below it
    if label == "supermajority":
        assert got.stake >= 2 / 3 and got.stake < 0.68


def test_zipf_stake_minority_of_four_secure() -> None:
    table = stake_table(4, 4, "zipf", 1)  # 1.92M, 0.96M, 0.64M, 0.48M of 4M
    assert resolve_fraction(table, "secure", "minority-third", 1) == (2, 3)  # 28 % < 1/3
    assert resolve_fraction(table, "secure", "supermajority", 1) == (0, 1)  # 72 %: 0 unavoidable


def test_staging_scale_is_fast_enough_and_correct() -> None:
    table = stake_table(1000, 21, "zipf", 6)
    for label in FRACTION_LABELS:
        ids = resolve_fraction(table, "auto", label, 6)
        assert holds(table, "auto", label, ids)


def test_resolution_is_deterministic_and_seeded() -> None:
    table = stake_table(40, 40, "equal", 1)
    first = resolve_fraction(table, "balanced", "minority-third", 1)
    assert first == resolve_fraction(table, "balanced", "minority-third", 1)
    assert any(
        resolve_fraction(table, "balanced", "minority-third", s) != first for s in range(2, 6)
    )


def test_single_validator_has_no_minority() -> None:
    table = stake_table(1, 1, "equal", 1)
    with pytest.raises(TargetUnreachableError, match="minority-third"):
        resolve_fraction(table, "balanced", "minority-third", 1)
    assert resolve_fraction(table, "balanced", "supermajority", 1) == (0,)


def test_count_targets_prefer_voters_and_spare_validator_0() -> None:
    table = stake_table(10, 3, "equal", 1)
    two = resolve_count(table, "fast", 2, 1)
    assert len(two) == 2 and set(two) <= {1, 2}  # the authorities other than 0
    assert 0 in resolve_count(table, "fast", 10, 1)
    assert 0 not in resolve_count(table, "balanced", 9, 1)
    with pytest.raises(TargetUnreachableError, match="count 11"):
        resolve_count(table, "fast", 11, 1)


# ----------------------------------------------------------------------------- properties


def _feasible_exists(
    table: Sequence[StakeEntry], mode: str, label: str, *, without_zero: bool = False
) -> bool:
    windows = fraction_windows(label, mode, table)
    first = 1 if without_zero else 0
    for size in range(1, len(table) + 1):
        for ids in itertools.combinations(range(first, len(table)), size):
            sums = [
                sum(
                    (1 if table[i].authority else 0)
                    if w.measure == "authorities"
                    else table[i].stake
                    for i in ids
                )
                for w in windows
            ]
            if all(w.low <= s <= w.high for s, w in zip(sums, windows, strict=True)):
                return True
    return False


@settings(max_examples=150, deadline=None)
@given(
    validators=st.integers(1, 9),
    authorities=st.integers(1, 9),
    spec=st.one_of(
        st.sampled_from(["equal", "zipf", "uniform:1:10", "uniform:1:1000"]),
        st.lists(st.integers(0, 50), min_size=9, max_size=9),
    ),
    mode=st.sampled_from(["fast", "balanced", "secure", "auto"]),
    label=st.sampled_from(FRACTION_LABELS),
    seed=st.integers(0, 1000),
)
def test_small_networks_exact_against_brute_force_and_the_node_predicate(
    validators: int,
    authorities: int,
    spec: object,
    mode: str,
    label: str,
    seed: int,
) -> None:
    authorities = min(authorities, validators)
    if isinstance(spec, list):
        spec = spec[:validators]
        if sum(spec) == 0:
            spec[0] = 1
    table = stake_table(validators, authorities, spec, seed)  # type: ignore[arg-type]
    try:
        ids = resolve_fraction(table, mode, label, seed)
    except TargetUnreachableError:
        assert not _feasible_exists(table, mode, label)
        return
    assert holds(table, mode, label, ids)
    assert ids == resolve_fraction(table, mode, label, seed)
    if 0 in ids:  # validator 0 only when unavoidable
        assert not _feasible_exists(table, mode, label, without_zero=True)


@settings(max_examples=25, deadline=None)
@given(
    validators=st.integers(10, 300),
    authorities_ratio=st.floats(0.05, 1.0),
    spec=st.sampled_from(["equal", "zipf", "uniform:1:100"]),
    mode=st.sampled_from(["fast", "balanced", "secure", "auto"]),
    label=st.sampled_from(FRACTION_LABELS),
)
def test_larger_networks_meet_the_target_semantics(
    validators: int, authorities_ratio: float, spec: str, mode: str, label: str
) -> None:
    authorities = max(1, round(validators * authorities_ratio))
    table = stake_table(validators, authorities, spec, 1)
    try:
        ids = resolve_fraction(table, mode, label, 1)
    except TargetUnreachableError:
        assert label == "majority" or authorities < 4
        return
    assert holds(table, mode, label, ids)
    if spec == "equal" and label != "supermajority":
        assert 0 not in ids
