"""A plain client of the validators (no Locust, no gevent): a quick transaction burst and the
commit stream, for the orchestrator and for scripts.

It signs with the same ``BatchSource`` and submits with the same ``submit_batch`` as the
Locust users, so a burst and a load test produce the same transactions.

    result = submit_burst(["127.0.0.1:50051"], "genesis.json", count=1000, batch_size=100)
    done = wait_for_commits("127.0.0.1:50051", result.accepted_ids, timeout_s=30,
                            from_height=result.height_before + 1)
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter, deque
from collections.abc import Generator, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import grpc
from aitbc_node.errors import ConfigError, DecodeError
from aitbc_node.genesis import Genesis, load_genesis
from aitbc_node.proto.aitbc.v1 import node_pb2_grpc

from loadgen.accounts import LoadAccount, load_account_indices, load_accounts
from loadgen.batches import SignedBatch, TransferSigner, padding_memo
from loadgen.errors import CommitStreamError, LoadgenConfigError
from loadgen.routing import DOWN_CODES, Lane, pick_destination, route_accounts, split_lanes
from loadgen.rpc import (
    DEFAULT_TIMEOUT_S,
    SubmitOutcome,
    commit_stream,
    committed_nonces,
    get_status,
    node_stub,
    open_channel,
    rpc_code,
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
    """Sign and submit ``count`` transfers in batches of ``batch_size``, with up to
    ``in_flight`` calls at once, routed by account (``loadgen.routing``): every transaction of
    an account goes to the same target, one call at a time per lane of accounts, so each
    account's nonces reach its validator in order. A batch whose call fails with a retryable
    code is resent to the same target up to ``max_attempts`` times in all; when it still fails
    because the target is unreachable, the lane's accounts move to another target, starting
    again from the nonces that target has committed (``GetAccount``).

    ``accounts``: genesis account indices to send from (default: every account but the last,
    the latency probe's); ``nonces``: their next nonces (default: the committed next nonce
    from ``GetAccount``, or 0 when the validators do not have it; pass a previous result's
    ``next_nonces`` to continue). Use accounts that no concurrent load uses.
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
    memo = padding_memo(chain.chain_id, tx_size, f"aitbc-loadgen/{run_id}/".encode())
    signer = TransferSigner(chain.chain_id, memo)

    channels = {target: open_channel(target) for target in targets}
    stubs = {target: node_stub(channel) for target, channel in channels.items()}
    accepted: dict[bytes, None] = {}
    rejected: Counter[str] = Counter()
    per_target: Counter[str] = Counter()
    sent = calls = retries = 0
    started = time.perf_counter()
    try:
        height_before = _height_or_none(stubs[targets[0]], timeout_s)
        routed = route_accounts(senders, targets)
        if nonces is not None:
            for account in senders:
                account.next_nonce = nonces.get(account.index, 0)
        else:
            for target, group in routed.items():
                _sync_nonces(group, [target, *targets], stubs, timeout_s)
        lanes = _interleaved_lanes(
            routed, max(1, math.ceil(in_flight / len(routed))), signer, batch_size
        )
        # Batch k goes to lane k % lanes: a fixed plan, whatever order the calls finish in.
        sizes: dict[int, deque[int]] = {id(lane): deque() for lane in lanes}
        for number, first in enumerate(range(0, count, batch_size)):
            sizes[id(lanes[number % len(lanes)])].append(min(batch_size, count - first))
        attempts: dict[int, int] = {}  # id(batch) -> calls made with it
        with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="burst") as pool:
            busy: dict[Future[SubmitOutcome], tuple[Lane, SignedBatch]] = {}
            while True:
                for lane in lanes:
                    if len(busy) >= in_flight:
                        break
                    if lane.in_flight is not None or not (lane.retry or sizes[id(lane)]):
                        continue
                    if lane.retry:
                        batch, _ = lane.take()
                    else:
                        batch, _ = lane.take(sizes[id(lane)].popleft())
                    lane.in_flight = batch
                    future = pool.submit(
                        submit_batch,
                        stubs[lane.target],
                        batch.transactions,
                        target=lane.target,
                        timeout_s=timeout_s,
                    )
                    busy[future] = (lane, batch)
                if not busy:
                    break
                done, _ = wait(busy, return_when=FIRST_COMPLETED)
                for future in done:
                    lane, batch = busy.pop(future)
                    lane.in_flight = None
                    outcome = future.result()
                    attempt = attempts.get(id(batch), 0) + 1
                    attempts[id(batch)] = attempt
                    calls += 1
                    sent += outcome.sent
                    per_target[outcome.target] += outcome.sent
                    if outcome.retryable and attempt < max_attempts:
                        retries += 1
                        lane.failed(batch, outcome.error_code, time.monotonic())
                        continue
                    attempts.pop(id(batch), None)
                    if outcome.retryable and outcome.error_code in DOWN_CODES:
                        resend = _move_lane(lane, targets, stubs, timeout_s)
                        if resend is not None:
                            pending = resend + sum(sizes[id(lane)])
                            sizes[id(lane)] = deque(_chunks(pending, batch_size))
                            continue
                    lane.succeeded()
                    accepted.update(dict.fromkeys(outcome.accepted_ids))
                    rejected.update(outcome.rejection_counts())
    finally:
        for channel in channels.values():
            channel.close()
    return BurstResult(
        requested=count,
        sent=sent,
        accepted=len(accepted),
        rejected=dict(rejected),
        accepted_ids=tuple(accepted),
        calls=calls,
        retries=retries,
        elapsed_s=time.perf_counter() - started,
        next_nonces={account.index: account.next_nonce for account in senders},
        height_before=height_before,
        per_target=dict(per_target),
    )


def _interleaved_lanes(
    routed: Mapping[str, list[LoadAccount]],
    per_target: int,
    signer: TransferSigner,
    batch_size: int,
) -> list[Lane]:
    """Up to ``per_target`` lanes per target, ordered target by target in turn (A0, B0, A1,
    B1, ...) so that consecutive batches go to different validators."""
    groups = {target: split_lanes(accounts, per_target) for target, accounts in routed.items()}
    lanes: list[Lane] = []
    for position in range(max(len(parts) for parts in groups.values())):
        for target, parts in groups.items():
            if position < len(parts):
                lanes.append(Lane(target, parts[position], signer, batch_size))
    return lanes


def _chunks(total: int, size: int) -> list[int]:
    """``total`` transactions as batch sizes of at most ``size``."""
    return [min(size, total - first) for first in range(0, total, size)]


def _sync_nonces(
    accounts: Sequence[LoadAccount],
    candidates: Sequence[str],
    stubs: Mapping[str, node_pb2_grpc.NodeStub],
    timeout_s: float,
) -> bool:
    """Set ``accounts``' next nonces from the first candidate whose ``GetAccount`` answers.
    A validator without the account API (UNIMPLEMENTED) leaves them as they are (True);
    False when no candidate answered."""
    for candidate in dict.fromkeys(candidates):
        try:
            found = committed_nonces(
                stubs[candidate], [a.keys.public for a in accounts], timeout_s=timeout_s
            )
        except grpc.RpcError as error:
            if rpc_code(error) == "UNIMPLEMENTED":
                return True
            continue
        for account, nonce in zip(accounts, found, strict=True):
            account.next_nonce = nonce
            account.synced = True
        return True
    return False


def _move_lane(
    lane: Lane,
    targets: Sequence[str],
    stubs: Mapping[str, node_pb2_grpc.NodeStub],
    timeout_s: float,
) -> int | None:
    """Move ``lane``'s accounts off its unreachable target to the next target that answers
    ``GetAccount``, from the nonces it has committed. Returns how many transactions must be
    sent (again) because of the move, or None when no target took them."""
    others = [t for t in targets if t != lane.target]
    destination = pick_destination(lane.target, targets, lambda t: t in others)
    while destination is not None:
        before = {account.index: account.next_nonce for account in lane.accounts}
        if _sync_nonces(lane.accounts, [destination], stubs, timeout_s):
            resend = sum(before[a.index] - a.next_nonce for a in lane.accounts)
            accounts = lane.hand_over()
            lane.target = destination
            lane.adopt(accounts)
            return max(0, resend)
        others.remove(destination)
        destination = pick_destination(lane.target, targets, lambda t: t in others)
    return None


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
