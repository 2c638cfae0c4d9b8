"""The shared pacing controller of one load-generator process.

The schedule is a sequence of batch slots: slot ``k`` is due when the shape (times this
process's share of the rate) has offered ``(k + 1) * batch_size`` transactions. Users claim
slots in order and send one batch per slot at its due time. A slot that nobody could claim
within ``max_lateness_s`` of its due time is *missed*: it stays counted as offered and is
never sent, so a slow client shows up as offered > sent instead of silently delivering less.

Pure bookkeeping: the caller passes the time (monotonic seconds) in, so the controller is
tested without a clock, and Locust users sleep with gevent themselves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from loadgen.errors import LoadgenError
from loadgen.shapes import LoadShape, time_to_offer


@dataclass(frozen=True)
class SlotClaim:
    """One batch slot handed to a user: send at ``due_at`` (monotonic seconds)."""

    index: int
    due_at: float


class PacingController:
    """Hands out batch slots of ``shape`` scaled by ``rate_share`` (1 / number of workers)."""

    def __init__(
        self,
        shape: LoadShape,
        batch_size: int,
        *,
        rate_share: float = 1.0,
        max_lateness_s: float = 1.0,
    ) -> None:
        if batch_size < 1:
            raise LoadgenError(f"pacing batch_size={batch_size}: use 1 or more")
        if not 0 < rate_share <= 1:
            raise LoadgenError(f"pacing rate_share={rate_share}: use a fraction in (0, 1]")
        if max_lateness_s <= 0:
            raise LoadgenError(f"pacing max_lateness_s={max_lateness_s}: use a positive number")
        self.shape = shape
        self.batch_size = batch_size
        self.rate_share = rate_share
        self.max_lateness_s = max_lateness_s
        self._started_at: float | None = None
        self._next_slot = 0
        self._missed_slots = 0
        self._returned_due: list[float] = []

    # -- time ----------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._started_at is not None

    def start(self, now: float) -> None:
        """Start the schedule at ``now`` (later calls do nothing)."""
        if self._started_at is None:
            self._started_at = now

    def elapsed(self, now: float) -> float:
        return 0.0 if self._started_at is None else now - self._started_at

    # -- schedule ------------------------------------------------------------------------------
    def target_tps(self, now: float) -> float:
        """This process's offered rate at ``now``."""
        if self._started_at is None:
            return 0.0
        return self.shape.tps_at(self.elapsed(now)) * self.rate_share

    def slots_due(self, now: float) -> int:
        """How many slots have come due by ``now``."""
        if self._started_at is None:
            return 0
        offered = self.shape.offered_until(self.elapsed(now)) * self.rate_share
        # A hair of tolerance so that a slot is due at exactly its computed due time.
        return math.floor(offered / self.batch_size + 1e-6)

    def offered_txs(self, now: float) -> int:
        """Transactions the schedule has asked for by ``now`` (whole batches)."""
        return self.slots_due(now) * self.batch_size

    def due_at(self, index: int) -> float | None:
        """Monotonic time at which slot ``index`` comes due; None if it never does."""
        if self._started_at is None:
            raise LoadgenError("pacing: due_at called before start(): start the schedule first")
        elapsed = time_to_offer(self.shape, (index + 1) * self.batch_size / self.rate_share)
        return None if elapsed is None else self._started_at + elapsed

    # -- claims --------------------------------------------------------------------------------
    @property
    def claimed_slots(self) -> int:
        return self._next_slot

    @property
    def missed_slots(self) -> int:
        return self._missed_slots

    def return_unsent(self, claim: SlotClaim) -> None:
        """A user stopped holding ``claim`` without having sent it (killed while waiting for
        its due time or during its call): ``abandon_unclaimed`` counts it as missed if due."""
        self._returned_due.append(claim.due_at)

    def abandon_unclaimed(self, now: float) -> int:
        """At the end of a run: count every slot due by ``now`` that was never sent (nobody
        claimed it, or its claim was returned unsent) as missed; returns how many."""
        unclaimed = max(0, self.slots_due(now) - self._next_slot)
        self._next_slot += unclaimed
        returned = sum(1 for due in self._returned_due if due <= now)
        self._returned_due = [due for due in self._returned_due if due > now]
        self._missed_slots += unclaimed + returned
        return unclaimed + returned

    def claim(self, now: float) -> SlotClaim | None:
        """The next slot to send (starting the schedule if needed), after skipping slots that
        are already more than ``max_lateness_s`` late (they add to ``missed_slots``); None if
        no slot will ever come due."""
        self.start(now)
        too_late = self.slots_due(now - self.max_lateness_s)
        missed = max(0, too_late - self._next_slot)
        self._next_slot += missed
        self._missed_slots += missed
        due = self.due_at(self._next_slot)
        if due is None:
            return None
        claim = SlotClaim(index=self._next_slot, due_at=due)
        self._next_slot += 1
        return claim
