"""The Locust users: ``TransactionLoadUser`` sends pre-signed batches at the paced rate,
``LatencyProbeUser`` measures submit-to-commit latency. Both are abstract: the locustfile
subclasses them with its process's ``LoadgenRuntime``.

Import this module only after ``import locust`` and ``grpc.experimental.gevent.init_gevent()``
(the locustfile does both first), so gRPC calls cooperate with gevent.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import gevent
import grpc
from gevent.event import Event
from gevent.greenlet import Greenlet
from locust import User, constant, task

from loadgen.accounts import LoadAccount, account_keys
from loadgen.batches import SignedBatch, TransferSigner
from loadgen.commit_follower import CommitFollower
from loadgen.errors import SubmitError
from loadgen.pacing import SlotClaim
from loadgen.probe import PendingProbe, ProbeLog, ProbeRecord, ProbeTracker
from loadgen.routing import Lane, pick_destination, route_accounts
from loadgen.rpc import (
    SubmitOutcome,
    committed_nonces,
    node_stub,
    open_channel,
    rpc_code,
    submit_batch,
)
from loadgen.runtime import LoadgenRuntime

logger = logging.getLogger("loadgen")

REQUEST_TYPE = "grpc"
SUBMIT_NAME = "SubmitTransactions"
PROBE_NAME = "probe"
#: Back-off after RESOURCE_EXHAUSTED: first, and the cap as it doubles.
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 1.0
_IDLE_SLEEP_S = 0.5


def expected_load_users(user: User, load_class: type[User], probe_active: bool) -> int:
    """How many load users this process is running (for a fair account split): the runner's
    per-class target when it has one (workers), else its total minus the probe."""
    runner = user.environment.runner
    per_class: dict[str, int] = dict(getattr(runner, "target_user_classes_count", {}) or {})
    if per_class.get(load_class.__name__):
        return per_class[load_class.__name__]
    total = int(getattr(runner, "target_user_count", 0) or 0)
    return max(1, total - (1 if probe_active else 0))


class TransactionLoadUser(User):
    """Sends one batch per claimed pacing slot. Its accounts are routed by account
    (``loadgen.routing``): one lane per target its accounts map to, lanes taken round robin,
    a failed batch sent again on the same lane first; a target down for ``TARGET_DOWN_S``
    hands its accounts to another target after their nonces are re-read there."""

    abstract = True
    wait_time = constant(0)
    runtime: ClassVar[LoadgenRuntime]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._accounts: list[LoadAccount] = []
        self._lanes: list[Lane] = []
        self._lane_cursor = 0
        self._claim: SlotClaim | None = None  # claimed and not yet sent
        self._channels: list[grpc.Channel] = []
        self._stubs: dict[str, Any] = {}
        self._targets: list[str] = []
        self._depth = 2
        self._refill: Greenlet | None = None
        self._consumed = Event()
        self._backoff_s = BACKOFF_FIRST_S

    # -- lifecycle -------------------------------------------------------------------------
    def on_start(self) -> None:
        runtime = self.runtime
        settings = runtime.settings
        users = expected_load_users(self, type(self), settings.probe_enabled)
        self._accounts = runtime.pool.claim(users)
        if not self._accounts:
            logger.warning(
                "load user has no accounts (AITBC_ACCOUNTS for this worker: %d, users: %d): "
                "it stays idle; raise AITBC_ACCOUNTS or lower the user count",
                len(settings.worker_accounts),
                users,
            )
            return
        self._targets = runtime.targets_for(runtime.next_user_number())
        for target in self._targets:
            channel = open_channel(target)
            self._channels.append(channel)
            self._stubs[target] = node_stub(channel)
        routed = route_accounts(self._accounts, settings.entry_targets, runtime.route_overrides)
        for target, accounts in routed.items():
            self._sync_nonces(target, [a for a in accounts if not a.synced])
        # Lanes in this user's rotated target order, so users start on different validators.
        order = sorted(
            routed,
            key=lambda t: self._targets.index(t) if t in self._targets else len(self._targets),
        )
        self._lanes = [
            Lane(target, routed[target], runtime.signer, settings.batch_size) for target in order
        ]
        self._depth = max(2, math.ceil(runtime.presign_depth(users) / len(self._lanes)))
        for lane in list(self._lanes):
            while len(lane.ready) < self._depth:
                self._sign_one(lane)
                gevent.sleep(0)
        self._refill = gevent.spawn(self._refill_loop)

    def on_stop(self) -> None:
        if self._claim is not None:
            self.runtime.pacer.return_unsent(self._claim)
            self._claim = None
        if self._refill is not None:
            self._refill.kill(block=True)
            self._refill = None
        if self._lanes:
            for lane in self._lanes:
                self.runtime.metrics.presigned.dec(lane.rewind_unsent())
            self._lanes = []
            self.runtime.pool.release(self._accounts)
            self._accounts = []
        for channel in self._channels:
            channel.close()
        self._channels, self._stubs = [], {}

    def _sync_nonces(self, target: str, accounts: list[LoadAccount]) -> bool:
        """Start ``accounts`` at their committed next nonce (``GetAccount``), asked of
        ``target`` first, then of the other targets. False when no validator answered."""
        if not accounts:
            return True
        timeout = self.runtime.settings.rpc_timeout_s
        candidates = [target, *(t for t in self._targets if t != target)]
        for candidate in candidates:
            try:
                nonces = committed_nonces(
                    self._stubs[candidate], [a.keys.public for a in accounts], timeout_s=timeout
                )
            except grpc.RpcError as error:
                if rpc_code(error) == "UNIMPLEMENTED":  # a node without the account API
                    logger.warning(
                        "%s has no GetAccount: accounts %s start at their current nonces",
                        candidate,
                        [a.index for a in accounts],
                    )
                    for account in accounts:
                        account.synced = True
                    return True
                continue
            for account, nonce in zip(accounts, nonces, strict=True):
                account.next_nonce = nonce
                account.synced = True
            return True
        logger.warning(
            "no validator answered GetAccount for accounts %s: they start at their current "
            "nonces (a second run on this chain may see stale_nonce rejections)",
            [a.index for a in accounts],
        )
        return False

    # -- signing ahead ---------------------------------------------------------------------
    def _sign_one(self, lane: Lane) -> None:
        batch = lane.sign_ahead()
        self.runtime.metrics.presigned.inc(len(batch))

    def _refill_loop(self) -> None:
        while True:
            short = [lane for lane in list(self._lanes) if len(lane.ready) < self._depth]
            if short:
                for lane in short:
                    self._sign_one(lane)
                    gevent.sleep(0)  # one batch at a time: sends are never held up by signing
            else:
                self._consumed.clear()
                self._consumed.wait(timeout=1.0)

    def _next_lane(self) -> Lane:
        lane = self._lanes[self._lane_cursor % len(self._lanes)]
        self._lane_cursor = (self._lane_cursor + 1) % len(self._lanes)
        return lane

    def _take_batch(self, lane: Lane) -> tuple[SignedBatch, bool]:
        """The lane's next batch to send, and whether it is a resend."""
        pre_signed = len(lane.ready[0]) if lane.ready and not lane.retry else 0
        batch, resend = lane.take()
        if pre_signed:
            self.runtime.metrics.presigned.dec(pre_signed)
        self._consumed.set()
        return batch, resend

    # -- sending ---------------------------------------------------------------------------
    @task
    def send_batch(self) -> None:
        runtime = self.runtime
        if not self._lanes:
            gevent.sleep(_IDLE_SLEEP_S)
            return
        if not runtime.pacer.started:
            logger.info(
                "load schedule starts: shape %s, %g tx/s peak in this process, batches of %d",
                runtime.settings.shape.name,
                runtime.settings.shape.peak_tps * runtime.settings.rate_share,
                runtime.settings.batch_size,
            )
        claim = runtime.pacer.claim(runtime.clock())
        if claim is None:  # the shape offers nothing more
            gevent.sleep(_IDLE_SLEEP_S)
            return
        self._claim = claim
        delay = claim.due_at - runtime.clock()
        if delay > 0:
            gevent.sleep(delay)
        runtime.publish_schedule()  # offered is counted before the slot's batch is sent
        lane = self._next_lane()
        batch, resend = self._take_batch(lane)
        lane.in_flight = batch
        runtime.track_sending(batch.tx_ids)
        outcome = submit_batch(
            self._stubs[lane.target],
            batch.transactions,
            target=lane.target,
            timeout_s=runtime.settings.rpc_timeout_s,
        )
        runtime.track_answer(batch.tx_ids, outcome.accepted_ids)
        lane.in_flight = None
        self._claim = None
        self._record(outcome, resend)
        if outcome.retryable:
            lane.failed(batch, outcome.error_code, runtime.clock())
            if lane.down(runtime.clock(), runtime.target_down_s):
                self._move_lane(lane)
        elif outcome.ok:
            lane.succeeded()
        if outcome.error_code == "RESOURCE_EXHAUSTED":
            runtime.metrics.backoffs.inc()
            gevent.sleep(self._backoff_s)
            self._backoff_s = min(BACKOFF_MAX_S, self._backoff_s * 2)
        elif outcome.ok:
            self._backoff_s = BACKOFF_FIRST_S

    def _move_lane(self, lane: Lane) -> None:
        """``lane``'s target has been failing for long: hand its accounts to another target,
        starting from the nonces that target has committed."""
        runtime = self.runtime
        now = runtime.clock()
        suspect = {other.target for other in self._lanes if other.failing_since is not None}
        destination = pick_destination(
            lane.target, runtime.settings.targets, lambda t: t not in suspect
        )
        if destination is None:
            return
        if destination not in self._stubs:
            channel = open_channel(destination)
            self._channels.append(channel)
            self._stubs[destination] = node_stub(channel)
        accounts = list(lane.accounts)
        for account in accounts:
            account.synced = False
        if not self._sync_nonces(destination, accounts):
            lane.failing_since = now  # try again after another TARGET_DOWN_S
            return
        runtime.metrics.presigned.dec(lane.presigned)
        lane.hand_over()
        self._lanes.remove(lane)
        receiver = next((other for other in self._lanes if other.target == destination), None)
        if receiver is None:
            self._lanes.append(
                Lane(destination, accounts, runtime.signer, runtime.settings.batch_size)
            )
        else:
            receiver.adopt(accounts)
        for account in accounts:
            runtime.route_overrides[account.index] = destination
        logger.warning(
            "%s failed for %gs: accounts %s move to %s from their committed nonces",
            lane.target,
            runtime.target_down_s,
            [a.index for a in accounts],
            destination,
        )

    def _record(self, outcome: SubmitOutcome, resend: bool) -> None:
        metrics = self.runtime.metrics
        metrics.sent.inc(outcome.sent)
        if resend:
            metrics.resent.inc(outcome.sent)
        if outcome.accepted:
            metrics.acked.inc(outcome.accepted)
        metrics.record_rejections(outcome.rejection_counts())
        exception = None
        if not outcome.ok:
            exception = SubmitError(
                f"SubmitTransactions to {outcome.target} failed with {outcome.error_code}: "
                f"{outcome.error_detail}"
            )
        self.environment.events.request.fire(
            request_type=REQUEST_TYPE,
            name=SUBMIT_NAME,
            response_time=outcome.latency_s * 1000.0,
            response_length=outcome.sent,
            response=None,
            context={"target": outcome.target, "accepted": outcome.accepted},
            exception=exception,
        )


class ProbeTimeout(Exception):
    """A probe transaction was not seen committed in time."""


class ProbeFailed(Exception):
    """A probe transaction was rejected or its submission failed."""


class LatencyProbeUser(User):
    """One user per run: every ``AITBC_PROBE_INTERVAL_S`` a transfer from the probe account to
    the validator whose commit stream the process's ``CommitFollower`` watches; the probe
    awaits its id there and moves with the follower when it switches validator."""

    abstract = True
    fixed_count = 1
    weight = 0
    wait_time = constant(0)
    runtime: ClassVar[LoadgenRuntime]
    follower: ClassVar[CommitFollower]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = self.runtime.settings
        index = settings.probe_account
        self._account = LoadAccount(index, account_keys(settings.genesis, index))
        self._signer = TransferSigner(settings.chain_id, self.runtime.signer.memo)
        self._tracker = ProbeTracker(settings.run_id, settings.probe_timeout_s)
        self._log: ProbeLog | None = None
        self._channel: grpc.Channel | None = None
        self._stub: Any = None
        self._sweeper: Greenlet | None = None
        self._unsent: tuple[bytes, bytes, int] | None = None  # raw, id, nonce
        self._next_probe_at = 0.0

    @property
    def target(self) -> str:
        return self.follower.target

    # -- lifecycle -------------------------------------------------------------------------
    def on_start(self) -> None:
        settings = self.runtime.settings
        if settings.probe_log is not None:
            self._log = ProbeLog(settings.probe_log)
        self._connect()
        self._sync_nonce()
        self.follower.listeners.append(self)
        self.follower.switch_listeners.append(self._on_switch)
        self.follower.start()
        self._sweeper = gevent.spawn(self._sweep_loop)
        self._next_probe_at = self.runtime.clock() + min(settings.probe_interval_s, 0.5)

    def on_stop(self) -> None:
        if self in self.follower.listeners:
            self.follower.listeners.remove(self)
        if self._on_switch in self.follower.switch_listeners:
            self.follower.switch_listeners.remove(self._on_switch)
        if self._sweeper is not None:
            self._sweeper.kill(block=True)
            self._sweeper = None
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _connect(self) -> None:
        """A channel to the current target; the previous one (if any) closes after the swap, so
        the probe task never picks up a closed channel."""
        previous = self._channel
        self._channel = open_channel(self.target)
        self._stub = node_stub(self._channel)
        if previous is not None:
            previous.close()

    def _on_switch(self, target: str) -> None:
        del target
        self._connect()
        self._sync_nonce()

    # -- probing ---------------------------------------------------------------------------
    @task
    def probe(self) -> None:
        runtime = self.runtime
        interval = runtime.settings.probe_interval_s
        delay = self._next_probe_at - runtime.clock()
        if delay > 0:
            gevent.sleep(delay)
        self._next_probe_at = max(self._next_probe_at + interval, runtime.clock())
        if self._unsent is None:
            nonce = self._account.next_nonce
            tx = self._signer.sign_next(self._account)
            self._unsent = (tx.encode(), tx.id, nonce)
        raw, tx_id, nonce = self._unsent
        target = self.target
        pending = PendingProbe(
            tx_id=tx_id,
            target=target,
            nonce=nonce,
            submitted_at=time.time(),
            submitted_mono=runtime.clock(),
        )
        # Pending before the call: its block may reach the commit stream before the call's
        # answer reaches us (a fast network, a busy load generator).
        if not self._tracker.is_pending(tx_id):
            self._tracker.submitted(pending)
        outcome = submit_batch(
            self._stub, [raw], target=target, timeout_s=runtime.settings.rpc_timeout_s
        )
        reasons = outcome.rejection_counts()
        if outcome.accepted or "duplicate" in reasons or not self._tracker.is_pending(tx_id):
            self._unsent = None  # accepted (or committed already, whatever the call says)
            return
        if not outcome.ok:
            record = self._tracker.failed(
                pending, "rpc_error", f"{outcome.error_code}: {outcome.error_detail}"
            )
            self._report(record)  # the same transaction is sent again next time
            return
        reason = next(iter(reasons), "unspecified")
        if reason == "stale_nonce":
            self._unsent = None  # the account is ahead of us: move on to the next nonce
        self._report(self._tracker.failed(pending, "rejected", reason))

    def _report(self, record: ProbeRecord) -> None:
        metrics = self.runtime.metrics
        metrics.probes.labels(outcome=record.outcome).inc()
        exception: Exception | None = None
        response_time = 0.0
        if record.outcome == "committed" and record.latency_s is not None:
            metrics.e2e_latency.observe(record.latency_s)
            response_time = record.latency_s * 1000.0
        elif record.outcome == "timeout":
            exception = ProbeTimeout(
                f"probe {record.tx_id[:16]} to {record.target}: {record.reason}"
            )
            response_time = self.runtime.settings.probe_timeout_s * 1000.0
        else:
            exception = ProbeFailed(
                f"probe {record.tx_id[:16]} to {record.target} {record.outcome}: {record.reason}"
            )
        self.environment.events.request.fire(
            request_type=REQUEST_TYPE,
            name=PROBE_NAME,
            response_time=response_time,
            response_length=1,
            response=None,
            context={"target": record.target, "height": record.height},
            exception=exception,
        )
        if self._log is not None:
            self._log.write(record)

    # -- commits -----------------------------------------------------------------------------
    def on_commit(self, height: int, tx_ids: Sequence[bytes], mono: float) -> None:
        for record in self._tracker.committed(list(tx_ids), height, time.time(), mono):
            self._report(record)

    def awaiting(self) -> bool:
        return self._tracker.pending_count > 0

    def _sync_nonce(self) -> None:
        """Continue the probe account from the current target's committed next nonce
        (``GetAccount``): a second run on one chain, or a switch away from a validator that
        lost the probe's last transactions, then leaves no nonce gap. Keeps the current
        nonce when the target does not answer."""
        try:
            (nonce,) = committed_nonces(
                self._stub,
                [self._account.keys.public],
                timeout_s=self.runtime.settings.rpc_timeout_s,
            )
        except grpc.RpcError:
            return
        if self._unsent is not None and self._unsent[2] != nonce:
            self._unsent = None
        if self._unsent is None:
            self._account.next_nonce = nonce

    def _sweep_loop(self) -> None:
        timeout = self.runtime.settings.probe_timeout_s
        while True:
            gevent.sleep(min(1.0, timeout / 4))
            for record in self._tracker.expire(self.runtime.clock()):
                self._report(record)
