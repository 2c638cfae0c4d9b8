"""A plain client of the validators (no Locust, no gevent): a quick transaction burst and the
commit stream, for the orchestrator and for scripts.

It signs with the same ``BatchSource`` and submits with the same ``submit_batch`` as the
Locust users, so a burst and a load test produce the same transactions.

    result = submit_burst(["127.0.0.1:50051"], "genesis.json", count=1000, batch_size=100)
    done = wait_for_commits("127.0.0.1:50051", result.accepted_ids, timeout_s=30,
                            from_height=result.height_before + 1)
"""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter
from collections.abc import Generator, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
from aitbc_node.errors import ConfigError, DecodeError
from aitbc_node.genesis import Genesis, load_genesis
from aitbc_node.proto.aitbc.v1 import node_pb2_grpc

from loadgen.accounts import load_account_indices, load_accounts
from loadgen.batches import BatchSource, SignedBatch, TransferSigner, padding_memo
from loadgen.errors import CommitStreamError, LoadgenConfigError
from loadgen.rpc import (
    DEFAULT_TIMEOUT_S,
    SubmitOutcome,
    commit_stream,
    get_status,
    node_stub,
    open_channel,
    submit_batch,
)


@dataclass(frozen=True)
class BurstResult:
    """What ``submit_burst`` did. ``sent`` counts transactions in calls (resends included);
    ``accepted + sum(rejected.values()) == requested`` once every batch has a final answer."""

    requested: int
    sent: int
    accepted: int
    rejected: dict[str, int]
    accepted_ids: tuple[bytes, ...]
    calls: int
    retries: int
    elapsed_s: float
    next_nonces: dict[int, int]
    height_before: int | None = None
    per_target: dict[str, int] = field(default_factory=dict)

    @property
    def accepted_tps(self) -> float:
        return self.accepted / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def all_accepted(self) -> bool:
        return self.accepted == self.requested


@dataclass(frozen=True)
class CommitRecord:
    """One committed block as a validator's commit stream reported it."""

    height: int
    block_hash: bytes
    epoch: int
    round: int
    tx_ids: tuple[bytes, ...]
    tx_count: int
    commit_time: float
    proposed_time: float
    seen_at: float


@dataclass(frozen=True)
class CommitWait:
    """``wait_for_commits``'s answer: the height of each committed id, and those not seen."""

    committed: dict[bytes, int]
    missing: frozenset[bytes]
    elapsed_s: float

    @property
    def complete(self) -> bool:
        return not self.missing


def _genesis_of(genesis: Genesis | str | os.PathLike[str]) -> Genesis:
    if isinstance(genesis, Genesis):
        return genesis
    try:
        return load_genesis(genesis)
    except (ConfigError, DecodeError) as error:
        raise LoadgenConfigError(f"genesis {genesis}: {error}") from None


def submit_burst(
    targets: Sequence[str],
    genesis: Genesis | str | os.PathLike[str],
    count: int,
    batch_size: int = 100,
    *,
    accounts: Iterable[int] | None = None,
    nonces: Mapping[int, int] | None = None,
    tx_size: int = 0,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_attempts: int = 3,
    in_flight: int = 4,
    run_id: str = "burst",
) -> BurstResult:
    """Sign and submit ``count`` transfers in batches of ``batch_size``, round robin over
    ``targets``, with up to ``in_flight`` calls at once. A batch whose call fails with a
    retryable code is resent (to the next target) up to ``max_attempts`` times in all.

    ``accounts``: genesis account indices to send from (default: every account but the last,
    the latency probe's); ``nonces``: their next nonces (default 0, fresh accounts; pass a
    previous result's ``next_nonces`` to continue). Use accounts that no concurrent load uses.
    """
    if not targets:
        raise LoadgenConfigError("submit_burst targets is empty: give at least one host:port")
    if count < 0 or batch_size < 1 or max_attempts < 1 or in_flight < 1:
        raise LoadgenConfigError(
            f"submit_burst count={count} batch_size={batch_size} max_attempts={max_attempts} "
            f"in_flight={in_flight}: use count >= 0 and the others >= 1"
        )
    chain = _genesis_of(genesis)
    indices = list(accounts) if accounts is not None else list(load_account_indices(chain, 0, None))
    if not indices:
        raise LoadgenConfigError("submit_burst accounts is empty: give at least one index")
    senders = load_accounts(chain, indices)
    for account in senders:
        account.next_nonce = (nonces or {}).get(account.index, 0)
    memo = padding_memo(chain.chain_id, tx_size, f"aitbc-loadgen/{run_id}/".encode())
    source = BatchSource(TransferSigner(chain.chain_id, memo), senders, batch_size)

    channels = {target: open_channel(target) for target in targets}
    stubs = {target: node_stub(channel) for target, channel in channels.items()}
    target_cycle = itertools.cycle(targets)
    accepted_ids: list[bytes] = []
    rejected: Counter[str] = Counter()
    per_target: Counter[str] = Counter()
    sent = calls = retries = 0
    started = time.perf_counter()
    try:
        height_before = _height_or_none(stubs[targets[0]], timeout_s)
        with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="burst") as pool:
            pending: dict[Future[SubmitOutcome], tuple[SignedBatch, int]] = {}

            def launch(batch: SignedBatch, attempt: int) -> Future[SubmitOutcome]:
                target = next(target_cycle)
                future = pool.submit(
                    submit_batch,
                    stubs[target],
                    batch.transactions,
                    target=target,
                    timeout_s=timeout_s,
                )
                pending[future] = (batch, attempt)
                return future

            remaining = count
            while remaining > 0 or pending:
                while remaining > 0 and len(pending) < in_flight:
                    batch = source.next_batch(min(batch_size, remaining))
                    remaining -= len(batch)
                    launch(batch, 1)
                future = next(iter(pending))
                outcome = future.result()
                batch, attempt = pending.pop(future)
                calls += 1
                sent += outcome.sent
                per_target[outcome.target] += outcome.sent
                if outcome.retryable and attempt < max_attempts:
                    retries += 1
                    launch(batch, attempt + 1)
                    continue
                accepted_ids.extend(outcome.accepted_ids)
                rejected.update(outcome.rejection_counts())
    finally:
        for channel in channels.values():
            channel.close()
    return BurstResult(
        requested=count,
        sent=sent,
        accepted=len(accepted_ids),
        rejected=dict(rejected),
        accepted_ids=tuple(accepted_ids),
        calls=calls,
        retries=retries,
        elapsed_s=time.perf_counter() - started,
        next_nonces={account.index: account.next_nonce for account in senders},
        height_before=height_before,
        per_target=dict(per_target),
    )


def _height_or_none(stub: node_pb2_grpc.NodeStub, timeout_s: float) -> int | None:
    try:
        return int(get_status(stub, timeout_s=timeout_s).height)
    except grpc.RpcError:
        return None


def follow_commits(
    target: str,
    *,
    from_height: int = 0,
    include_tx_ids: bool = True,
    timeout_s: float = 60.0,
) -> Generator[CommitRecord, None, None]:
    """Committed blocks of ``target`` from ``from_height`` (0: only new ones), as they commit,
    for at most ``timeout_s`` seconds (then the iterator ends). Closing the iterator cancels
    the stream. Raises ``CommitStreamError`` when the stream fails otherwise."""
    channel = open_channel(target)
    stream = commit_stream(
        node_stub(channel),
        from_height=from_height,
        include_tx_ids=include_tx_ids,
        timeout_s=timeout_s,
    )
    try:
        for event in stream:
            yield CommitRecord(
                height=event.height,
                block_hash=bytes(event.block_hash),
                epoch=event.epoch,
                round=event.round,
                tx_ids=tuple(bytes(tx_id) for tx_id in event.tx_ids),
                tx_count=event.tx_count,
                commit_time=event.commit_time,
                proposed_time=event.proposed_time,
                seen_at=time.time(),
            )
    except grpc.RpcError as error:
        code = error.code() if isinstance(error, grpc.Call) else None
        if code not in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
            details = error.details() if isinstance(error, grpc.Call) else str(error)
            raise CommitStreamError(
                f"commit stream of {target} failed with {code.name if code else 'UNKNOWN'}: "
                f"{details}: check the validator is up and reachable"
            ) from None
    finally:
        cancel = getattr(stream, "cancel", None)
        if callable(cancel):
            cancel()
        channel.close()


def wait_for_commits(
    target: str,
    tx_ids: Iterable[bytes],
    *,
    timeout_s: float,
    from_height: int = 1,
) -> CommitWait:
    """Follow ``target``'s commits from ``from_height`` until every id in ``tx_ids`` is
    committed or ``timeout_s`` passes."""
    wanted = set(tx_ids)
    committed: dict[bytes, int] = {}
    started = time.perf_counter()
    if wanted:
        commits = follow_commits(target, from_height=from_height, timeout_s=timeout_s)
        try:
            for record in commits:
                for tx_id in record.tx_ids:
                    if tx_id in wanted:
                        wanted.discard(tx_id)
                        committed[tx_id] = record.height
                if not wanted:
                    break
        finally:
            commits.close()
    return CommitWait(
        committed=committed, missing=frozenset(wanted), elapsed_s=time.perf_counter() - started
    )
