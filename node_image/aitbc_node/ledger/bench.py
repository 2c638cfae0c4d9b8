"""Measure transaction and ledger costs: ``python -m aitbc_node.ledger.bench [accounts]``.

Not a test: it prints medians on this machine (per-transaction microseconds for encode, decode,
sign and verify; block application, state root, snapshot and genesis generation).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from aitbc_node.crypto.bls import BlsScheme
from aitbc_node.crypto.keys import testnet_account_keypair
from aitbc_node.crypto.modeled import ModeledScheme
from aitbc_node.genesis import make_testnet_genesis
from aitbc_node.ledger.state import LedgerState
from aitbc_node.ledger.tx import (
    Transaction,
    decode_transaction,
    sign_transfer,
    verify_transaction_signature,
)


def _per_item_us(action: Callable[[int], object], count: int, repeats: int = 5) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for item in range(count):
            action(item)
        samples.append((time.perf_counter() - start) / count)
    return statistics.median(samples) * 1e6


def _seconds(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _fresh_copy(tx: Transaction) -> Transaction:
    return Transaction(
        kind=tx.kind,
        chain_id=tx.chain_id,
        sender=tx.sender,
        nonce=tx.nonce,
        fee=tx.fee,
        recipient=tx.recipient,
        amount=tx.amount,
        memo=tx.memo,
        signature=tx.signature,
    )


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    account_count = int(arguments[0]) if arguments else 10_000
    out = sys.stdout.write
    block_txs = 5000

    started = time.perf_counter()
    real_genesis = make_testnet_genesis(validators=1000, authorities=10, seed="bench")
    out(f"genesis 1000 validators, BLS: {time.perf_counter() - started:.3f} s\n")
    pops_s = _seconds(lambda: real_genesis.verify_pops(BlsScheme()))
    out(f"verify_pops 1000, BLS (threads): {pops_s:.3f} s\n")
    modeled = ModeledScheme()
    started = time.perf_counter()
    genesis = make_testnet_genesis(
        validators=1000, authorities=10, seed="bench", scheme=modeled, accounts=account_count
    )
    out(
        f"genesis 1000 validators + {account_count} accounts, modeled: "
        f"{time.perf_counter() - started:.3f} s\n"
    )

    keys = [testnet_account_keypair("bench", index) for index in range(block_txs + 1)]
    memo = b"m" * 100
    txs = [
        sign_transfer(keys[i], genesis.chain_id, keys[i + 1].public, 1, 0, fee=1, memo=memo)
        for i in range(block_txs)
    ]
    raws = [tx.encode() for tx in txs]
    out(f"transfer size: {len(raws[0])} bytes (memo {len(memo)})\n")
    out(f"tx encode:  {_per_item_us(lambda i: _fresh_copy(txs[i]).encode(), block_txs):7.2f} us\n")
    out(f"tx decode:  {_per_item_us(lambda i: decode_transaction(raws[i]), block_txs):7.2f} us\n")
    out(
        "tx decode+id: "
        f"{_per_item_us(lambda i: decode_transaction(raws[i]).id, block_txs):7.2f} us\n"
    )
    sign_us = _per_item_us(
        lambda i: sign_transfer(keys[i], genesis.chain_id, keys[0].public, 1, i), 2000
    )
    out(f"tx sign:    {sign_us:7.2f} us\n")
    verify_us = _per_item_us(lambda i: verify_transaction_signature(txs[i]), 2000)
    out(f"tx verify:  {verify_us:7.2f} us ({1e6 / verify_us:.0f}/s on one core)\n")

    state = LedgerState.from_genesis(genesis, scheme=modeled)
    first_root_ms = _seconds(state.state_root) * 1e3
    out(f"first state_root ({state.account_count} accounts): {first_root_ms:.2f} ms\n")
    apply_ms = _seconds(lambda: state.apply_block(txs, 0)) * 1e3
    out(f"apply_block {block_txs} transfers: {apply_ms:.2f} ms\n")
    out(f"state_root after it: {_seconds(state.state_root) * 1e3:.2f} ms\n")
    empty_apply, empty_root = [], []
    for _ in range(20):
        empty_apply.append(_seconds(lambda: state.apply_block([], 1)))
        empty_root.append(_seconds(state.state_root))
    out(
        "empty block (1000 reward payouts): apply "
        f"{statistics.median(empty_apply) * 1e3:.2f} ms, state_root "
        f"{statistics.median(empty_root) * 1e3:.2f} ms\n"
    )
    snapshot = state.snapshot()
    out(f"snapshot: {_seconds(state.snapshot) * 1e3:.2f} ms, {len(snapshot)} bytes\n")
    restore_s = _seconds(lambda: LedgerState.restore(snapshot, genesis, scheme=modeled))
    out(f"restore: {restore_s * 1e3:.2f} ms\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
