"""Account ownership: disjoint across workers and users, the probe's account kept out, nonces
kept when accounts change hands."""

from __future__ import annotations

import dataclasses

import pytest
from aitbc_node.crypto import testnet_account_keypair
from aitbc_node.genesis import Genesis
from hypothesis import given
from hypothesis import strategies as st

from loadgen.accounts import (
    AccountPool,
    LoadAccount,
    account_keys,
    load_account_indices,
    load_accounts,
    probe_account_index,
    split_accounts,
)
from loadgen.errors import AccountError


@given(
    count=st.integers(min_value=1, max_value=300),
    first=st.integers(min_value=0, max_value=50),
    parts=st.integers(min_value=1, max_value=20),
)
def test_worker_split_is_disjoint_and_complete(count: int, first: int, parts: int) -> None:
    indices = range(first, first + count)
    shares = [split_accounts(indices, part, parts) for part in range(parts)]
    flat = [index for share in shares for index in share]
    assert sorted(flat) == list(indices)
    assert len(set(flat)) == len(flat)
    sizes = [len(share) for share in shares]
    assert max(sizes) - min(sizes) <= 1


def _accounts(indices: list[int]) -> list[LoadAccount]:
    keys = testnet_account_keypair("pool", 0)  # keys do not matter to the pool
    return [LoadAccount(index, keys) for index in indices]


@given(
    accounts=st.integers(min_value=1, max_value=200),
    workers=st.integers(min_value=1, max_value=6),
    users=st.integers(min_value=1, max_value=12),
)
def test_users_of_all_workers_own_disjoint_accounts(
    accounts: int, workers: int, users: int
) -> None:
    owned: list[list[int]] = []
    for worker in range(workers):
        pool = AccountPool(_accounts(split_accounts(range(accounts), worker, workers)))
        for _ in range(users):
            owned.append([account.index for account in pool.claim(users)])
        assert pool.free_count == 0
    flat = [index for share in owned for index in share]
    assert sorted(flat) == list(range(accounts))  # disjoint and nothing left out
    for worker in range(workers):
        worker_shares = [len(s) for s in owned[worker * users : (worker + 1) * users] if s]
        if worker_shares:
            assert max(worker_shares) - min(worker_shares) <= 1


def test_pool_release_keeps_nonces_for_the_next_user() -> None:
    pool = AccountPool(_accounts([0, 1, 2, 3]))
    first = pool.claim(2)
    second = pool.claim(2)
    assert [a.index for a in first] == [0, 1]
    assert [a.index for a in second] == [2, 3]
    assert pool.claim(2) == []  # nothing left: a third user would stay idle
    first[0].next_nonce = 41
    pool.release(first)
    assert pool.holders == 1
    again = pool.claim(2)
    assert [(a.index, a.next_nonce) for a in again] == [(0, 41), (1, 0)]
    assert {id(a) for a in again}.isdisjoint({id(a) for a in second})


def test_probe_account_is_the_last_and_never_a_load_account(genesis: Genesis) -> None:
    probe = probe_account_index(genesis)
    assert probe == len(genesis.accounts) - 1
    assert probe not in load_account_indices(genesis, 0, None)
    assert load_account_indices(genesis, 4, 3) == range(4, 7)
    with pytest.raises(AccountError, match=r"^AITBC_ACCOUNTS=16"):
        load_account_indices(genesis, 1, 16)
    with pytest.raises(AccountError, match=r"^AITBC_FIRST_ACCOUNT=16"):
        load_account_indices(genesis, probe, None)


def test_account_keys_match_the_genesis(genesis: Genesis) -> None:
    accounts = load_accounts(genesis, [0, 5])
    assert [a.keys.public for a in accounts] == [
        genesis.accounts[0].address_bytes,
        genesis.accounts[5].address_bytes,
    ]
    assert all(a.next_nonce == 0 for a in accounts)


def test_account_keys_refuse_a_foreign_genesis(genesis: Genesis) -> None:
    other = genesis.model_copy(update={"key_seed": "another-seed"})
    with pytest.raises(AccountError, match="not the key derived from its key_seed"):
        account_keys(other, 0)
    with pytest.raises(AccountError, match="no account 99"):
        account_keys(genesis, 99)


def test_split_rejects_a_bad_part() -> None:
    with pytest.raises(AccountError):
        split_accounts(range(4), 2, 2)


def test_load_account_is_a_plain_mutable_record() -> None:
    account = _accounts([3])[0]
    assert not dataclasses.is_dataclass(account)
    account.next_nonce += 1
    assert repr(account) == "LoadAccount(index=3, next_nonce=1)"
