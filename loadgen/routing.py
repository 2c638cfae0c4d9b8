"""Routing by account: every transaction of one account goes to the same validator, in nonce
order.

Nonces are per account and the ledger skips a transaction whose nonce is not the next one, so
two validators must never race each other with one account's transactions. Each account is
routed to one target (``route_accounts``: genesis account ``i`` to ``targets[i % N]``); a
client keeps one ``Lane`` per (target, subset of its accounts) and sends a lane's batches one
call at a time, a failed batch again on the same lane before anything newer. When a target has
failed for ``TARGET_DOWN_S`` the lane's accounts move to another target (``Lane.adopt``) after
their nonces are re-read from that target's ``GetAccount`` (the committed next nonce), so the
new validator sees each nonce sequence from its committed start.

Pure logic: no gRPC, gevent or Locust here (``loadgen.rpc.account_nonce`` does the calls).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence

from loadgen.accounts import LoadAccount
from loadgen.batches import BatchSource, SignedBatch, TransferSigner
from loadgen.errors import LoadgenError

#: Seconds of consecutive failures after which a target counts as down and its accounts move.
TARGET_DOWN_S = 5.0
#: Failures that say "the validator is not there" (RESOURCE_EXHAUSTED is back-pressure).
DOWN_CODES: frozenset[str] = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED"})


def target_index(account_index: int, targets: int) -> int:
    """The target (position in the target list) of genesis account ``account_index``."""
    if targets < 1:
        raise LoadgenError("routing needs at least one target: set AITBC_TARGETS")
    return account_index % targets


def route_accounts(
    accounts: Iterable[LoadAccount],
    targets: Sequence[str],
    overrides: Mapping[int, str] | None = None,
) -> dict[str, list[LoadAccount]]:
    """Target -> the accounts routed to it (only targets with accounts; targets in list
    order, accounts by index). ``overrides``: account index -> target, for accounts that
    moved away from a failed target."""
    routed: dict[str, list[LoadAccount]] = {}
    moved = overrides or {}
    for account in sorted(accounts, key=lambda a: a.index):
        target = moved.get(account.index) or targets[target_index(account.index, len(targets))]
        routed.setdefault(target, []).append(account)
    return {target: routed[target] for target in _ordered(targets, routed)}


def _ordered(targets: Sequence[str], routed: Mapping[str, object]) -> list[str]:
    known = [t for t in targets if t in routed]
    return known + [t for t in routed if t not in known]


def split_lanes(accounts: Sequence[LoadAccount], parts: int) -> list[list[LoadAccount]]:
    """``accounts`` in at most ``parts`` non-empty groups by stride (each one lane)."""
    parts = max(1, min(parts, len(accounts)))
    return [list(accounts[i::parts]) for i in range(parts)]


class Lane:
    """Some accounts routed to one target, their pre-signed batches and the batches to send
    again. One call at a time per lane keeps each account's nonces in order at the node."""

    def __init__(
        self, target: str, accounts: Sequence[LoadAccount], signer: TransferSigner, batch_size: int
    ) -> None:
        self.target = target
        self.accounts = list(accounts)
        self.signer = signer
        self.batch_size = batch_size
        self.source = BatchSource(signer, self.accounts, batch_size)
        self.ready: deque[SignedBatch] = deque()
        self.retry: deque[SignedBatch] = deque()
        self.in_flight: SignedBatch | None = None
        self.failing_since: float | None = None

    def __repr__(self) -> str:
        indices = [account.index for account in self.accounts]
        return f"Lane({self.target}, accounts={indices})"

    @property
    def presigned(self) -> int:
        """Transactions signed and waiting in ``ready``."""
        return sum(len(batch) for batch in self.ready)

    def sign_ahead(self, size: int | None = None) -> SignedBatch:
        batch = self.source.next_batch(size)
        self.ready.append(batch)
        return batch

    def take(self, size: int | None = None) -> tuple[SignedBatch, bool]:
        """The next batch to send and whether it is a resend: a failed batch first, then a
        pre-signed one, else one signed now (``size`` only applies to a new batch)."""
        if self.retry:
            return self.retry.popleft(), True
        if self.ready and (size is None or len(self.ready[0]) == size):
            return self.ready.popleft(), False
        if size is not None and self.ready:
            # A smaller last batch: hand back what was signed ahead, then sign the size needed.
            self.source.rewind(list(self.ready))
            self.ready.clear()
        return self.source.next_batch(size), False

    def failed(self, batch: SignedBatch, code: str | None, now: float) -> None:
        """A call with ``batch`` failed with ``code``: send it again on this lane first."""
        self.retry.appendleft(batch)
        if code in DOWN_CODES:
            if self.failing_since is None:
                self.failing_since = now
        else:
            self.failing_since = None

    def succeeded(self) -> None:
        self.failing_since = None

    def down(self, now: float, down_after_s: float = TARGET_DOWN_S) -> bool:
        """Whether this lane's target has failed for ``down_after_s`` without a success."""
        return self.failing_since is not None and now - self.failing_since >= down_after_s

    def unsent(self) -> list[SignedBatch]:
        """Every batch signed here and not known to be delivered."""
        batches = [*self.retry, *self.ready]
        if self.in_flight is not None:
            batches.append(self.in_flight)
        return batches

    def rewind_unsent(self) -> int:
        """Drop the unsent batches, moving the accounts' nonces back to the lowest unsent one
        (no nonce gap). Returns how many pre-signed transactions were dropped from ``ready``."""
        dropped = self.presigned
        self.source.rewind(self.unsent())
        self.ready.clear()
        self.retry.clear()
        self.in_flight = None
        return dropped

    def hand_over(self) -> list[LoadAccount]:
        """Give up every account (for a move): unsent batches are dropped."""
        self.ready.clear()
        self.retry.clear()
        self.in_flight = None
        accounts, self.accounts = self.accounts, []
        return accounts

    def adopt(self, accounts: Sequence[LoadAccount]) -> None:
        """Take ``accounts`` (their ``next_nonce`` already resynchronised with this lane's
        target) in addition to this lane's own; batches already signed stay valid."""
        self.accounts = [*self.accounts, *accounts]
        self.source = BatchSource(self.signer, self.accounts, self.batch_size)


def resync_nonces(accounts: Iterable[LoadAccount], committed_nonce: Callable[[bytes], int]) -> None:
    """Set every account's next nonce to ``committed_nonce(address)`` (the target's
    ``GetAccount``). Raises whatever ``committed_nonce`` raises, before changing anything."""
    found = [(account, committed_nonce(account.keys.public)) for account in accounts]
    for account, nonce in found:
        account.next_nonce = nonce


def pick_destination(
    failed: str, targets: Sequence[str], healthy: Callable[[str], bool]
) -> str | None:
    """Where the accounts of ``failed`` go: the next target after it (in list order) that
    ``healthy`` accepts, or None when there is none."""
    if failed not in targets:
        candidates = list(targets)
    else:
        start = targets.index(failed)
        candidates = [targets[(start + step) % len(targets)] for step in range(1, len(targets))]
    return next((target for target in candidates if healthy(target)), None)
