"""Signed batches: exact transaction sizes, valid signatures, round-robin nonces, rewinds."""

from __future__ import annotations

import pytest
from aitbc_node.genesis import Genesis
from aitbc_node.ledger.tx import (
    MAX_MEMO_BYTES,
    decode_transaction,
    verify_transaction_signature,
)
from hypothesis import given
from hypothesis import strategies as st

from loadgen.accounts import load_accounts
from loadgen.batches import (
    SINK_ADDRESS,
    BatchSource,
    TransferSigner,
    padding_memo,
    transfer_size,
)
from loadgen.errors import LoadgenConfigError, LoadgenError


def test_transfer_size_formula_matches_the_encoding(genesis: Genesis) -> None:
    account = load_accounts(genesis, [0])[0]
    for memo_length in (0, 1, 77, MAX_MEMO_BYTES):
        tx = TransferSigner(genesis.chain_id, b"m" * memo_length).sign_next(account)
        assert len(tx.encode()) == transfer_size(genesis.chain_id, memo_length)


@given(
    chain_id=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True),
    extra=st.integers(min_value=0, max_value=MAX_MEMO_BYTES),
    tag=st.binary(max_size=40),
)
def test_padding_reaches_the_requested_size_exactly(chain_id: str, extra: int, tag: bytes) -> None:
    size = transfer_size(chain_id) + extra
    memo = padding_memo(chain_id, size, tag)
    assert transfer_size(chain_id, len(memo)) == size
    assert memo.startswith(tag[: len(memo)])


def test_padded_transactions_have_the_requested_wire_size(genesis: Genesis) -> None:
    accounts = load_accounts(genesis, [0, 1])
    smallest = transfer_size(genesis.chain_id)
    for size in (0, smallest, smallest + 1, 256, 512, transfer_size(genesis.chain_id, 512)):
        memo = padding_memo(genesis.chain_id, size, b"aitbc-loadgen/run/")
        batch = BatchSource(TransferSigner(genesis.chain_id, memo), accounts, 4).next_batch()
        expected = size or smallest
        assert {len(raw) for raw in batch.transactions} == {expected}


@pytest.mark.parametrize("delta", [-1, MAX_MEMO_BYTES + 1])
def test_unreachable_sizes_name_the_variable(delta: int) -> None:
    size = transfer_size("chain") + delta
    with pytest.raises(LoadgenConfigError, match=rf"^AITBC_TX_SIZE={size} cannot be reached"):
        padding_memo("chain", size)


def test_batches_are_signed_transfers_round_robin(genesis: Genesis) -> None:
    accounts = load_accounts(genesis, [2, 3, 4])
    source = BatchSource(TransferSigner(genesis.chain_id), accounts, batch_size=5)
    first, second = source.next_batch(), source.next_batch()
    assert len(first) == 5
    assert first.nonces == ((2, 0), (3, 0), (4, 0), (2, 1), (3, 1))
    assert second.nonces == ((4, 1), (2, 2), (3, 2), (4, 2), (2, 3))
    for raw, tx_id, (index, nonce) in zip(
        first.transactions + second.transactions,
        first.tx_ids + second.tx_ids,
        first.nonces + second.nonces,
        strict=True,
    ):
        tx = decode_transaction(raw)
        assert verify_transaction_signature(tx)
        assert tx.id == tx_id
        assert tx.chain_id == genesis.chain_id
        assert tx.sender == genesis.accounts[index].address_bytes
        assert tx.nonce == nonce
        assert tx.recipient == SINK_ADDRESS
        assert tx.amount == 1
    assert first.wire_bytes == sum(len(raw) for raw in first.transactions)
    assert [a.next_nonce for a in accounts] == [4, 3, 3]


def test_rewind_resigns_the_same_transactions(genesis: Genesis) -> None:
    accounts = load_accounts(genesis, [7, 8])
    source = BatchSource(TransferSigner(genesis.chain_id), accounts, batch_size=2)
    sent = source.next_batch()
    unsent = [source.next_batch(), source.next_batch()]
    source.rewind(unsent)
    assert [a.next_nonce for a in accounts] == [1, 1]
    replay = [source.next_batch(), source.next_batch()]
    assert [b.tx_ids for b in replay] == [b.tx_ids for b in unsent]  # deterministic signatures
    assert sent.tx_ids[0] not in replay[0].tx_ids


def test_batch_source_needs_accounts(genesis: Genesis) -> None:
    with pytest.raises(LoadgenError, match="no accounts"):
        BatchSource(TransferSigner(genesis.chain_id), [], 5)
