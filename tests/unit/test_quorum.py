"""The hybrid quorum predicates of each mode at their boundaries (exactly 2/3 is not a quorum,
2/3 + 1 is), the SECURE oversight floor(|A|/3)+1, weak quorums, and quorum intersection."""

from __future__ import annotations

import pytest
from aitbc_node.consensus.types import (
    Mode,
    Validator,
    ValidatorSet,
    bitmap_from,
    bitmap_indices,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def make_set(stakes: list[int], authorities: set[int]) -> ValidatorSet:
    return ValidatorSet(
        tuple(
            Validator(
                index=i, public_key=bytes([i % 256]) * 48, stake=s, authority=i in authorities
            )
            for i, s in enumerate(stakes)
        )
    )


def first(indices: list[int], count: int) -> set[int]:
    return set(indices[:count])


# --------------------------------------------------------------------------- FAST


@pytest.mark.parametrize("authority_count", [3, 6, 21, 99])
def test_fast_exactly_two_thirds_of_authorities_is_no_quorum(authority_count: int) -> None:
    # Non-authority stakers with a lot of stake: FAST ignores them entirely.
    vs = make_set([1] * authority_count + [10**9] * 5, set(range(authority_count)))
    authorities = list(range(authority_count))
    two_thirds = 2 * authority_count // 3
    stakers = set(range(authority_count, authority_count + 5))
    assert not vs.is_quorum(Mode.FAST, first(authorities, two_thirds) | stakers)
    assert vs.is_quorum(Mode.FAST, first(authorities, two_thirds + 1))
    assert vs.authority_quorum == two_thirds + 1


@pytest.mark.parametrize("authority_count", [4, 5, 7, 100])
def test_fast_quorum_is_floor_two_thirds_plus_one_when_not_divisible(authority_count: int) -> None:
    vs = make_set([1] * authority_count, set(range(authority_count)))
    need = (2 * authority_count) // 3 + 1
    assert not vs.is_quorum(Mode.FAST, set(range(need - 1)))
    assert vs.is_quorum(Mode.FAST, set(range(need)))


# --------------------------------------------------------------------------- BALANCED


def unequal_balanced_set() -> ValidatorSet:
    """6 authorities with stake 10 each (60) and 4 stakers with 60 each (240): S = 300."""
    return make_set([10] * 6 + [60] * 4, set(range(6)))


def test_balanced_needs_both_authority_and_stake_quorums() -> None:
    vs = unequal_balanced_set()
    assert vs.total_stake == 300
    assert vs.stake_quorum == 201
    assert vs.authority_quorum == 5
    # 5 authorities (a count quorum) + 2 stakers: 50 + 120 = 170 stake < 201.
    assert not vs.is_quorum(Mode.BALANCED, set(range(5)) | {6, 7})
    # Every staker and 2 authorities: stake 260 but only 2 of 6 authorities.
    assert not vs.is_quorum(Mode.BALANCED, {0, 1, 6, 7, 8, 9})
    # 5 authorities + 3 stakers: 50 + 180 = 230 stake.
    assert vs.is_quorum(Mode.BALANCED, set(range(5)) | {6, 7, 8})


def test_balanced_stake_boundary_exactly_two_thirds_and_one_more() -> None:
    # Authorities 0..5 hold 1 each; S = 306, so 2/3 of S is exactly 204.
    vs = make_set([1] * 6 + [198, 100, 2], set(range(6)))
    signers = set(range(7))
    assert vs.tally(signers) == (6, 204)
    assert not vs.is_quorum(Mode.BALANCED, signers)
    # Same total, one unit moved into the signer set: 205 = floor(2S/3) + 1.
    vs_plus = make_set([1] * 6 + [199, 100, 1], set(range(6)))
    assert vs_plus.stake_quorum == 205
    assert vs_plus.tally(signers) == (6, 205)
    assert vs_plus.is_quorum(Mode.BALANCED, signers)


def test_balanced_authority_boundary_with_all_the_stake() -> None:
    vs = make_set([1] * 9 + [10**6], set(range(9)))
    # 6 of 9 authorities is exactly 2/3: no quorum even with 99.99 % of the stake.
    assert not vs.is_quorum(Mode.BALANCED, set(range(6)) | {9})
    assert vs.is_quorum(Mode.BALANCED, set(range(7)) | {9})


# --------------------------------------------------------------------------- SECURE


def test_secure_stake_boundary_exactly_two_thirds() -> None:
    # S = 300; authorities 0..2 (stake 50 each), stakers 3..5 (stake 50 each).
    vs = make_set([50] * 6, {0, 1, 2})
    assert vs.stake_quorum == 201
    assert not vs.is_quorum(Mode.SECURE, {0, 1, 2, 3})  # 200 == 2/3 exactly
    # Unequal: add one unit to a staker to reach 2/3 + 1 with the same signers.
    vs_plus = make_set([50, 50, 50, 51, 50, 49], {0, 1, 2})
    assert vs_plus.tally({0, 1, 2, 3}) == (3, 201)
    assert vs_plus.is_quorum(Mode.SECURE, {0, 1, 2, 3})


@pytest.mark.parametrize("authority_count", [3, 6, 9, 21])
def test_secure_oversight_needs_floor_a_third_plus_one_authorities(authority_count: int) -> None:
    # Stakers hold almost all the stake: they alone reach the stake quorum.
    stakes = [1] * authority_count + [10**6] * 3
    vs = make_set(stakes, set(range(authority_count)))
    stakers = set(range(authority_count, authority_count + 3))
    oversight = authority_count // 3 + 1
    assert vs.authority_oversight == oversight
    assert vs.is_quorum(Mode.SECURE, stakers | set(range(oversight)))
    # Exactly a third of the authorities is not oversight.
    assert not vs.is_quorum(Mode.SECURE, stakers | set(range(oversight - 1)))
    # FAST and BALANCED would need 2/3 of the authorities for the same signers.
    assert not vs.is_quorum(Mode.BALANCED, stakers | set(range(oversight)))


def test_secure_ignores_authority_majority_without_stake() -> None:
    vs = make_set([1] * 10 + [1000], set(range(10)))
    assert not vs.is_quorum(Mode.SECURE, set(range(10)))  # every authority, 10 of 1010 stake


# --------------------------------------------------------------------------- weak quorums


@pytest.mark.parametrize("mode", [Mode.FAST, Mode.BALANCED])
def test_weak_quorum_by_authorities_at_one_third(mode: Mode) -> None:
    vs = make_set([5] * 9 + [10**6], set(range(9)))
    assert not vs.is_weak_quorum(mode, {0, 1, 2, 9})  # exactly a third of the authorities
    assert vs.is_weak_quorum(mode, {0, 1, 2, 3})


def test_weak_quorum_by_stake_in_secure() -> None:
    vs = make_set([100, 100, 100, 50, 50], {0, 1, 2})  # S = 400: a weak quorum needs 134
    assert vs.stake_weak == 134
    assert vs.is_weak_quorum(Mode.SECURE, {0, 4})  # 150: no second authority needed
    assert not vs.is_weak_quorum(Mode.SECURE, {3, 4})  # 100
    assert not vs.is_weak_quorum(Mode.SECURE, {0})
    # Exactly a third of the stake is not a weak quorum; one unit more is.
    assert not make_set([100, 100, 100], {0, 1, 2}).is_weak_quorum(Mode.SECURE, {0})
    assert make_set([101, 100, 99], {0, 1, 2}).is_weak_quorum(Mode.SECURE, {0})


# --------------------------------------------------------------------------- structure


def test_tally_and_from_tally_agree() -> None:
    vs = unequal_balanced_set()
    signers = {0, 2, 4, 6, 8}
    authorities, stake = vs.tally(signers)
    assert (authorities, stake) == (3, 150)
    for mode in Mode:
        assert vs.is_quorum(mode, signers) == vs.quorum_from_tally(mode, authorities, stake)


def test_validator_set_rejects_gaps_and_missing_authorities() -> None:
    with pytest.raises(ValueError, match="index"):
        ValidatorSet((Validator(1, b"k", 1, True),))
    with pytest.raises(ValueError, match="authority"):
        ValidatorSet((Validator(0, b"k", 1, False),))


@given(st.sets(st.integers(min_value=0, max_value=1023)), st.integers(min_value=0, max_value=16))
def test_bitmap_round_trip(indices: set[int], extra_bytes: int) -> None:
    size = (max(indices) + 1 if indices else 0) + 8 * extra_bytes
    bitmap = bitmap_from(indices, size)
    assert len(bitmap) == (size + 7) // 8
    assert bitmap_indices(bitmap) == frozenset(indices)


def grow_to_quorum(vs: ValidatorSet, mode: Mode, order: list[int], start: set[int]) -> set[int]:
    signers = set(start)
    for index in order:
        if vs.is_quorum(mode, signers):
            break
        signers.add(index)
    return signers


@st.composite
def sets_and_two_quorums(draw: st.DrawFn) -> tuple[ValidatorSet, Mode, set[int], set[int]]:
    n = draw(st.integers(min_value=1, max_value=30))
    stakes = draw(st.lists(st.integers(min_value=0, max_value=1000), min_size=n, max_size=n))
    if sum(stakes) == 0:
        stakes[0] = 1
    authorities = draw(st.sets(st.integers(min_value=0, max_value=n - 1), min_size=1))
    vs = make_set(stakes, authorities)
    mode = draw(st.sampled_from(list(Mode)))
    quorums = []
    for _ in range(2):
        start = draw(st.sets(st.integers(min_value=0, max_value=n - 1)))
        order = draw(st.permutations(range(n)))
        quorums.append(grow_to_quorum(vs, mode, order, start))
    return vs, mode, quorums[0], quorums[1]


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(sets_and_two_quorums())
def test_two_quorums_intersect_in_a_weak_quorum(
    case: tuple[ValidatorSet, Mode, set[int], set[int]],
) -> None:
    """Safety's arithmetic: any two quorums share more than a third by the mode's measure, so
    with less than a third byzantine they share an honest validator."""
    vs, mode, q1, q2 = case
    assert vs.is_quorum(mode, q1) and vs.is_quorum(mode, q2)
    shared = q1 & q2
    assert vs.is_weak_quorum(mode, shared)
    if mode is Mode.BALANCED:  # both measures hold more than a third
        assert vs.tally(shared)[1] >= vs.stake_weak
