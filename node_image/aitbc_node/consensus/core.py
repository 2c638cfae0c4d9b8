"""The consensus core: a pure state machine (no I/O, no clock reads, no threads).

Jolteon / DiemBFT-v4 style 2-chain HotStuff with a rotating leader and the hybrid PoA/PoS quorum
of the epoch's mode. Time and messages come in as method calls carrying ``now_ms``; what must
happen comes out as a list of :mod:`actions`. The networked runtime and the simulator are its two
drivers.

Rules in one place:
- vote for block B (round r, justify qc) iff r > last_voted_round, qc.round >= locked_round and
  (r == qc.round + 1, or B carries a TC for r - 1 with qc.round >= tc.high_qc.round);
- commit B0 when a QC certifies its child B1 with round(B1) == round(B0) + 1 (and all ancestors);
- enter round r + 1 on a QC or a TC for round r; on a round timer, broadcast a timeout and stop
  voting in that round; join a round's timeouts once a weak quorum (more than a third) timed out;
  a node that forms a TC sends it to the next leader (which may have missed timeouts);
- the safety state is emitted (``PersistSafety``) before the vote, timeout or proposal it guards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from aitbc_node.consensus import codec
from aitbc_node.consensus.actions import (
    Action,
    Broadcast,
    Committed,
    EpochStarted,
    EvidenceFound,
    FetchBatches,
    PersistSafety,
    Rejected,
    RequestSync,
    RoundTimedOut,
    ScheduleTick,
    Send,
)
from aitbc_node.consensus.evidence import EvidencePool, verify_evidence
from aitbc_node.consensus.leader import select_leader
from aitbc_node.consensus.types import (
    MAX_TIMEOUT_DOUBLINGS,
    TIMEOUTS_BEFORE_BACKOFF,
    BatchRef,
    Block,
    EpochState,
    Evidence,
    Message,
    Mode,
    Proposal,
    QcMsg,
    QuorumCert,
    SafetyState,
    Timeout,
    TimeoutCert,
    TimeoutCertMsg,
    Vote,
    bitmap_from,
)
from aitbc_node.crypto import Domain, SignatureScheme

#: How many rounds ahead of ours a message may be before we stop buffering state for it.
MAX_ROUND_LEAD = 10_000
#: How often (ms) the core may ask the same peer for a sync.
SYNC_BACKOFF_MS = 500


class Application(Protocol):
    """What the core needs from the node around it (the ledger and the batch store).

    Pure in-memory work only: the core calls it synchronously.
    """

    def missing_batches(self, batches: Sequence[BatchRef]) -> list[bytes]:
        """Digests among ``batches`` that are not available locally."""
        ...

    def payload(self, limit: int, exclude: frozenset[bytes]) -> tuple[BatchRef, ...]:
        """Up to ``limit`` available, uncommitted batches not in ``exclude``, for a proposal."""
        ...

    def commit(self, block: Block, certifying_qc: QuorumCert) -> None:
        """Execute a committed block (called in height order, exactly once per block)."""
        ...

    def next_epoch(self, ended: EpochState, end_block: Block, commit_qc: QuorumCert) -> EpochState:
        """The next epoch's state, from committed data only (every honest node agrees)."""
        ...


class ConsensusCore:
    """One validator's view of consensus. See the module docstring for the rules."""

    def __init__(
        self,
        *,
        me: int,
        secret: bytes,
        scheme: SignatureScheme,
        app: Application,
        epoch: EpochState,
        root: Block,
        root_qc: QuorumCert,
        safety: SafetyState,
        previous_epoch: EpochState | None = None,
    ) -> None:
        self.me = me
        self._secret = secret
        self.scheme = scheme
        self.app = app
        self.epoch_state = epoch
        self.previous_epoch = previous_epoch
        self.safety = safety if safety.epoch == epoch.epoch else SafetyState(epoch=epoch.epoch)
        #: Byzantine behaviour switched on by the fault API / simulator (tests only).
        self.equivocate = False

        self.blocks: dict[bytes, Block] = {root.id: root}
        self.certified: dict[bytes, QuorumCert] = {root.id: root_qc}
        self.committed_block = root
        self.committed_height = root.height
        self.high_qc = root_qc
        if root.id == epoch.anchor_id:
            # Resuming at an epoch boundary: the anchor certificate is the epoch's round-0 QC.
            self.certified[root.id] = epoch.anchor_qc
            self.high_qc = epoch.anchor_qc
        self.round = 0
        self.timed_out_round = -1
        self.consecutive_timeouts = 0
        self.round_deadline_ms = 0
        self.proposal_due_ms: int | None = None
        self.last_tc: TimeoutCert | None = None

        self.votes: dict[tuple[int, bytes], _Collector] = {}
        self.timeouts: dict[int, _Collector] = {}
        self.evidence = EvidencePool()
        self.pending: dict[bytes, tuple[int, Proposal]] = {}
        self.last_sync_request_ms: dict[int, int] = {}
        self.blocked_commit: tuple[Block, QuorumCert] | None = None
        self.started = False

    # ------------------------------------------------------------------ queries

    @property
    def epoch(self) -> int:
        return self.epoch_state.epoch

    @property
    def mode(self) -> Mode:
        return self.epoch_state.mode

    def leader(self, round_: int, after_timeout: bool = False) -> int:
        """Round ``round_``'s proposer: the primary when the round follows a QC of the round
        before, the fallback when it follows a timeout certificate. A dead primary for r+1 then
        costs one timed-out round (r, whose votes it would have aggregated), not two."""
        es = self.epoch_state
        return select_leader(es.validators, es.mode, es.seed, es.epoch, round_, after_timeout)

    def _current_leader(self) -> int:
        return self.leader(self.round, self._entered_by_tc())

    def _entered_by_tc(self) -> bool:
        """The current round follows a TC (and no QC) for the round before it."""
        round_ = self.round
        return (
            self.qc_round(self.high_qc) + 1 != round_
            and self.last_tc is not None
            and self.last_tc.round == round_ - 1
        )

    def qc_round(self, qc: QuorumCert) -> int:
        """A QC's round within this epoch: the previous epoch's anchor QC counts as round 0."""
        return qc.round if qc.epoch == self.epoch else 0

    def uncommitted_chain(self) -> tuple[list[Block], QuorumCert]:
        """Blocks from just above the committed block to the highest certified block, and the
        highest QC: what a peer needs (after our committed blocks) to catch up."""
        chain: list[Block] = []
        cursor = self.blocks.get(self.high_qc.block_id)
        while cursor is not None and cursor.height > self.committed_height:
            chain.append(cursor)
            cursor = self.blocks.get(cursor.parent_id)
        chain.reverse()
        return chain, self.high_qc

    def next_wakeup(self) -> int:
        due = self.round_deadline_ms
        if self.proposal_due_ms is not None:
            due = min(due, self.proposal_due_ms)
        return due

    # ------------------------------------------------------------------ verification (thread-safe)

    def verify_qc(self, qc: QuorumCert) -> str | None:
        """None when ``qc`` is valid for this epoch, or for the previous one (the first blocks
        of an epoch carry a QC of the ended epoch: nodes may have seen different QCs end it, so
        any valid one is accepted, not only our own anchor QC), else a reason."""
        es = self.epoch_state
        if qc.epoch != es.epoch:
            if qc == es.anchor_qc:
                return None
            previous = self.previous_epoch
            if previous is None or qc.epoch != previous.epoch or qc.epoch + 1 != es.epoch:
                return "qc_wrong_epoch"
            es = previous
        signers = qc.signer_set
        if not signers or max(signers) >= len(es.validators):
            return "qc_bad_signers"
        if not es.validators.is_quorum(es.mode, signers):
            return "qc_no_quorum"
        keys = [es.validators.validators[i].public_key for i in sorted(signers)]
        message = codec.vote_message(qc.epoch, qc.round, qc.block_id)
        if not self.scheme.fast_aggregate_verify(keys, Domain.VOTE, message, qc.signature):
            return "qc_bad_signature"
        return None

    def verify_tc(self, tc: TimeoutCert) -> str | None:
        es = self.epoch_state
        if tc.epoch != es.epoch:
            return "tc_wrong_epoch"
        signers = tc.signer_set
        if not signers or max(signers) >= len(es.validators):
            return "tc_bad_signers"
        if not es.validators.is_quorum(es.mode, signers):
            return "tc_no_quorum"
        keys = [es.validators.validators[i].public_key for i in sorted(signers)]
        message = codec.timeout_message(tc.epoch, tc.round)
        if not self.scheme.fast_aggregate_verify(keys, Domain.TIMEOUT, message, tc.signature):
            return "tc_bad_signature"
        return self.verify_qc(tc.high_qc)

    def _key(self, index: int) -> bytes | None:
        validators = self.epoch_state.validators.validators
        return validators[index].public_key if 0 <= index < len(validators) else None

    def verify_message(self, sender: int, msg: Message) -> str | None:
        """Check every signature in ``msg`` against the current epoch. None when valid.

        Messages of other epochs are not checked here (the core decides what to do with them).
        Safe to call from a worker thread: it only reads immutable epoch state.
        """
        if isinstance(msg, Proposal):
            block = msg.block
            if block.epoch != self.epoch:
                return None
            key = self._key(block.proposer)
            if key is None:
                return "unknown_proposer"
            message = codec.vote_message(block.epoch, block.round, block.id)
            if not self.scheme.verify(key, Domain.PROPOSAL, message, msg.signature):
                return "bad_proposal_signature"
            randao = codec.randao_message(block.epoch)
            if not self.scheme.verify(key, Domain.RANDAO, randao, block.randao_reveal):
                return "bad_randao_reveal"
            reason = self.verify_qc(block.justify)
            if reason is None and block.tc is not None:
                reason = self.verify_tc(block.tc)
            if reason is None:
                for ev in block.evidence:
                    reason = verify_evidence(ev, self.epoch_state, self.previous_epoch, self.scheme)
                    if reason is not None:
                        break
            return reason
        if isinstance(msg, Vote):
            if msg.epoch != self.epoch:
                return None
            key = self._key(msg.voter)
            if key is None:
                return "unknown_voter"
            message = codec.vote_message(msg.epoch, msg.round, msg.block_id)
            if not self.scheme.verify(key, Domain.VOTE, message, msg.signature):
                return "bad_vote_signature"
            return None
        if isinstance(msg, Timeout):
            if msg.epoch != self.epoch:
                return None
            key = self._key(msg.voter)
            if key is None:
                return "unknown_voter"
            message = codec.timeout_message(msg.epoch, msg.round)
            if not self.scheme.verify(key, Domain.TIMEOUT, message, msg.signature):
                return "bad_timeout_signature"
            return self.verify_qc(msg.high_qc)
        if isinstance(msg, QcMsg):
            return None if msg.qc.epoch != self.epoch else self.verify_qc(msg.qc)
        if msg.tc.epoch != self.epoch:
            return None
        return self.verify_tc(msg.tc)

    # ------------------------------------------------------------------ events

    def start(self, now_ms: int) -> list[Action]:
        """Begin (or resume after a restart): enter the round after the highest QC."""
        out: list[Action] = []
        self.started = True
        # Not the persisted last voted round: the certificate that led there may be lost with
        # this node's memory, and a round nobody can certify is a round nobody can leave. The
        # persisted state still forbids voting or proposing again in the rounds already used.
        self._enter_round(self.qc_round(self.high_qc) + 1, now_ms, out)
        out.append(ScheduleTick(self.next_wakeup()))
        return out

    def on_tick(self, now_ms: int) -> list[Action]:
        out: list[Action] = []
        if self.proposal_due_ms is not None and now_ms >= self.proposal_due_ms:
            self._propose(now_ms, out)
        if now_ms >= self.round_deadline_ms:
            self._local_timeout(now_ms, out)
        out.append(ScheduleTick(self.next_wakeup()))
        return out

    def on_message(
        self, now_ms: int, sender: int, msg: Message, verified: bool = False
    ) -> list[Action]:
        """Handle a peer message. With ``verified=False`` the core checks signatures itself."""
        out: list[Action] = []
        epoch = _message_epoch(msg)
        if epoch < self.epoch:
            return out
        if epoch > self.epoch:
            # A first block of the next epoch carries the QC that ends ours: try it.
            if (
                isinstance(msg, Proposal)
                and epoch == self.epoch + 1
                and msg.block.justify.epoch == self.epoch
            ):
                reason = self.verify_qc(msg.block.justify)
                if reason is None:
                    self._process_qc(msg.block.justify, now_ms, out, sender)
                if self.epoch == epoch:
                    self._dispatch(now_ms, sender, msg, False, out)
                    out.append(ScheduleTick(self.next_wakeup()))
                    return out
            self._request_sync(sender, now_ms, out)
            return out
        self._dispatch(now_ms, sender, msg, verified, out)
        out.append(ScheduleTick(self.next_wakeup()))
        return out

    def on_batches_available(self, now_ms: int) -> list[Action]:
        """Batches arrived: retry proposals that were waiting for them."""
        out: list[Action] = []
        if self.blocked_commit is not None:
            b1, qc1 = self.blocked_commit
            self.blocked_commit = None
            self._try_commit(b1, qc1, now_ms, out)
        for block_id, (sender, proposal) in list(self.pending.items()):
            if not self.app.missing_batches(proposal.block.batches):
                del self.pending[block_id]
                self._on_proposal(now_ms, sender, proposal, out)
        if out:
            out.append(ScheduleTick(self.next_wakeup()))
        return out

    def on_sync(
        self, now_ms: int, sender: int, blocks: Sequence[Block], high_qc: QuorumCert | None
    ) -> list[Action]:
        """Blocks from a peer, ascending and linked, each certified by the next one's justify."""
        out: list[Action] = []
        for block in blocks:
            if block.height <= self.committed_height and block.epoch <= self.epoch:
                continue
            if block.epoch > self.epoch:
                # The block's justify (previous-epoch QC) may commit our last block.
                if block.justify.epoch == self.epoch and self.verify_qc(block.justify) is None:
                    self._process_qc(block.justify, now_ms, out, sender)
                if block.epoch != self.epoch:
                    break
            if block.epoch < self.epoch:
                continue
            if self.verify_qc(block.justify) is not None:
                out.append(Rejected(sender, "sync_bad_qc"))
                break
            if block.id not in self.blocks and not self._insert_block(block, out, sender, now_ms):
                break
            self._process_qc(block.justify, now_ms, out, sender)
        if high_qc is not None and high_qc.epoch == self.epoch and self.verify_qc(high_qc) is None:
            self._process_qc(high_qc, now_ms, out, sender)
        out.append(ScheduleTick(self.next_wakeup()))
        return out

    # ------------------------------------------------------------------ dispatch

    def _dispatch(
        self, now_ms: int, sender: int, msg: Message, verified: bool, out: list[Action]
    ) -> None:
        if not verified:
            reason = self.verify_message(sender, msg)
            if reason is not None:
                out.append(Rejected(sender, reason))
                return
        if isinstance(msg, Proposal):
            self._on_proposal(now_ms, sender, msg, out)
        elif isinstance(msg, Vote):
            self._on_vote(now_ms, msg, out)
        elif isinstance(msg, Timeout):
            self._on_timeout(now_ms, msg, out)
        elif isinstance(msg, QcMsg):
            self._process_qc(msg.qc, now_ms, out, sender)
        else:
            self._on_tc(now_ms, msg.tc, out, sender)

    # ------------------------------------------------------------------ rounds

    def _timeout_duration(self) -> int:
        base = self.epoch_state.params.base_timeout(self.epoch_state.mode)
        excess = max(0, self.consecutive_timeouts - TIMEOUTS_BEFORE_BACKOFF)
        return base * (1 << min(excess, MAX_TIMEOUT_DOUBLINGS))

    def _enter_round(self, round_: int, now_ms: int, out: list[Action]) -> None:
        if round_ <= self.round and self.started and self.round_deadline_ms:
            return
        self.round = round_
        self.round_deadline_ms = now_ms + self._timeout_duration()
        self.proposal_due_ms = None
        # Forget vote and timeout collections of rounds long gone.
        if len(self.votes) > 64:
            self.votes = {k: v for k, v in self.votes.items() if k[0] >= round_ - 2}
        if len(self.timeouts) > 64:
            self.timeouts = {k: v for k, v in self.timeouts.items() if k >= round_ - 2}
        self.evidence.forget_before(self.epoch, round_ - 1000)
        self._schedule_proposal(now_ms, out)

    def _schedule_proposal(self, now_ms: int, out: list[Action]) -> None:
        """As leader of the current round, propose once the parent is known and the block
        interval since the parent's timestamp has passed (at once after a TC)."""
        round_ = self.round
        if self._current_leader() != self.me or self.safety.last_proposed_round >= round_:
            return
        parent = self._proposal_parent()
        if parent is None:
            return
        interval = self.epoch_state.params.block_interval(self.epoch_state.mode)
        if self.last_tc is not None and self.last_tc.round == round_ - 1:
            due = now_ms
        else:
            due = max(now_ms, parent.timestamp_ms + interval)
        self.proposal_due_ms = due
        if due <= now_ms:
            self._propose(now_ms, out)

    def _proposal_parent(self) -> Block | None:
        es = self.epoch_state
        qc = self.high_qc
        if qc.epoch == es.epoch:
            return self.blocks.get(qc.block_id)
        if qc == es.anchor_qc:
            return self.blocks.get(es.anchor_id)
        return None

    def _advance_by_qc(self, qc: QuorumCert, now_ms: int, out: list[Action]) -> None:
        qc_round = self.qc_round(qc)
        if qc_round + 1 > self.round:
            self.consecutive_timeouts = 0
            self._enter_round(qc_round + 1, now_ms, out)

    def _on_tc(self, now_ms: int, tc: TimeoutCert, out: list[Action], sender: int) -> None:
        self._process_qc(tc.high_qc, now_ms, out, sender)
        if tc.round + 1 > self.round:
            self.last_tc = tc
            if self.timed_out_round != tc.round:  # our own timer already counted this round
                self.consecutive_timeouts += 1
            self._enter_round(tc.round + 1, now_ms, out)

    # ------------------------------------------------------------------ proposals

    def _ancestor_digests(self, block: Block) -> frozenset[bytes]:
        seen: set[bytes] = set()
        cursor: Block | None = block
        while cursor is not None and cursor.height > self.committed_height:
            seen.update(ref.digest for ref in cursor.batches)
            cursor = self.blocks.get(cursor.parent_id)
        return frozenset(seen)

    def _propose(self, now_ms: int, out: list[Action]) -> None:
        self.proposal_due_ms = None
        round_ = self.round
        if self._current_leader() != self.me or self.safety.last_proposed_round >= round_:
            return
        es = self.epoch_state
        qc = self.high_qc
        parent = self._proposal_parent()
        if parent is None:
            return
        # A TC goes into the block only when there is no QC of the round before.
        tc = self.last_tc if self._entered_by_tc() else None
        if self.qc_round(qc) + 1 != round_ and tc is None:
            return
        height = parent.height + 1
        if height > es.end_height:
            batches: tuple[BatchRef, ...] = ()
            evidence: tuple[Evidence, ...] = ()
        else:
            batches = self.app.payload(
                es.params.max_batches_per_block, self._ancestor_digests(parent)
            )
            evidence = tuple(self.evidence.pending(es.params.max_evidence_per_block))
        block = Block(
            epoch=es.epoch,
            round=round_,
            height=height,
            parent_id=parent.id,
            proposer=self.me,
            timestamp_ms=max(now_ms, parent.timestamp_ms),
            batches=batches,
            justify=qc,
            tc=tc,
            evidence=evidence,
            randao_reveal=self.scheme.sign(
                self._secret, Domain.RANDAO, codec.randao_message(es.epoch)
            ),
        )
        self.safety = replace(self.safety, last_proposed_round=round_)
        out.append(PersistSafety(self.safety))
        proposal = self._sign_proposal(block)
        out.append(Broadcast(proposal))
        if self.equivocate:
            twin = replace(block, timestamp_ms=block.timestamp_ms + 1)
            out.append(Broadcast(self._sign_proposal(twin)))
        self._on_proposal(now_ms, self.me, proposal, out)

    def _sign_proposal(self, block: Block) -> Proposal:
        message = codec.vote_message(block.epoch, block.round, block.id)
        return Proposal(block, self.scheme.sign(self._secret, Domain.PROPOSAL, message))

    def _insert_block(self, block: Block, out: list[Action], sender: int, now_ms: int) -> bool:
        """Check a block's place in the tree and add it. False (and a reason) when it does not
        fit."""
        es = self.epoch_state
        if block.justify.epoch != block.epoch:
            # An epoch's first blocks extend its anchor with a (verified) QC of the ended epoch.
            if block.justify.epoch + 1 != block.epoch or block.parent_id != es.anchor_id:
                out.append(Rejected(sender, "bad_epoch_start"))
                return False
        elif block.parent_id != block.justify.block_id:
            out.append(Rejected(sender, "parent_not_justified"))
            return False
        parent = self.blocks.get(block.parent_id)
        if parent is None:
            self._request_sync(sender, now_ms, out)
            return False
        if block.height != parent.height + 1:
            out.append(Rejected(sender, "bad_height"))
            return False
        if parent.epoch == block.epoch and block.round <= parent.round:
            out.append(Rejected(sender, "round_not_increasing"))
            return False
        if block.justify.epoch == block.epoch and block.justify.height != parent.height:
            out.append(Rejected(sender, "qc_height_mismatch"))
            return False
        if block.timestamp_ms < parent.timestamp_ms:
            out.append(Rejected(sender, "timestamp_before_parent"))
            return False
        if block.height > es.end_height and (block.batches or block.evidence):
            out.append(Rejected(sender, "payload_after_epoch_end"))
            return False
        after_timeout = block.tc is not None and block.tc.round == block.round - 1
        if block.proposer != self.leader(block.round, after_timeout):
            out.append(Rejected(sender, "wrong_leader"))
            return False
        if len(block.batches) > es.params.max_batches_per_block:
            out.append(Rejected(sender, "too_many_batches"))
            return False
        self.blocks[block.id] = block
        if (
            self.proposal_due_ms is None
            and block.id == self.high_qc.block_id
            and self.safety.last_proposed_round < self.round
        ):
            self._schedule_proposal(now_ms, out)
        return True

    def _on_proposal(self, now_ms: int, sender: int, proposal: Proposal, out: list[Action]) -> None:
        block = proposal.block
        ev = self.evidence.observe(
            "proposal", block.epoch, block.round, block.proposer, block.id, proposal.signature
        )
        if ev is not None:
            out.append(EvidenceFound(ev))
        if block.round + MAX_ROUND_LEAD < self.round or block.round > self.round + MAX_ROUND_LEAD:
            out.append(Rejected(sender, "round_out_of_range"))
            return
        for committed_ev in block.evidence:
            self.evidence.add(committed_ev)
        self._process_qc(block.justify, now_ms, out, sender)
        if block.tc is not None:
            self._on_tc(now_ms, block.tc, out, sender)
        if self.epoch != block.epoch:
            return
        if block.id not in self.blocks and not self._insert_block(block, out, sender, now_ms):
            return
        if block.round != self.round:
            return
        missing = self.app.missing_batches(block.batches)
        if missing:
            self.pending[block.id] = (sender, proposal)
            if len(self.pending) > 32:
                self.pending.pop(next(iter(self.pending)))
            peer = block.proposer if block.proposer != self.me else sender
            out.append(FetchBatches(peer, tuple(missing)))
            return
        self._maybe_vote(block, now_ms, out)

    # ------------------------------------------------------------------ voting

    def _safe_to_vote(self, block: Block) -> bool:
        s = self.safety
        if block.round <= s.last_voted_round:
            return False
        qc_round = self.qc_round(block.justify)
        if qc_round < s.locked_round and block.justify.epoch == block.epoch:
            return False
        if block.round == qc_round + 1:
            return True
        tc = block.tc
        return (
            tc is not None and block.round == tc.round + 1 and qc_round >= self.qc_round(tc.high_qc)
        )

    def _maybe_vote(self, block: Block, now_ms: int, out: list[Action]) -> None:
        if not self._safe_to_vote(block):
            return
        self.safety = replace(self.safety, last_voted_round=block.round)
        out.append(PersistSafety(self.safety))
        vote = self._sign_vote(block.round, block.height, block.id)
        next_leader = self.leader(block.round + 1)
        votes = [vote]
        if self.equivocate:
            fake = codec.block_id(replace(block, timestamp_ms=block.timestamp_ms + 1))
            votes.append(self._sign_vote(block.round, block.height, fake))
        for v in votes:
            if next_leader == self.me:
                self._on_vote(now_ms, v, out)
            else:
                out.append(Send(next_leader, v))

    def _sign_vote(self, round_: int, height: int, block_id: bytes) -> Vote:
        message = codec.vote_message(self.epoch, round_, block_id)
        signature = self.scheme.sign(self._secret, Domain.VOTE, message)
        return Vote(self.epoch, round_, height, block_id, self.me, signature)

    def _on_vote(self, now_ms: int, vote: Vote, out: list[Action]) -> None:
        ev = self.evidence.observe(
            "vote", vote.epoch, vote.round, vote.voter, vote.block_id, vote.signature
        )
        if ev is not None:
            out.append(EvidenceFound(ev))
        if vote.round < self.round - 1 or self.leader(vote.round + 1) != self.me:
            return
        es = self.epoch_state
        collector = self.votes.setdefault((vote.round, vote.block_id), _Collector())
        if collector.done or not collector.add(es, vote.voter, vote.signature, None):
            return
        if not collector.is_quorum(es):
            return
        collector.done = True
        qc = QuorumCert(
            epoch=vote.epoch,
            round=vote.round,
            height=vote.height,
            block_id=vote.block_id,
            signers=bitmap_from(set(collector.signatures), len(es.validators)),
            signature=self.scheme.aggregate(collector.ordered_signatures()),
        )
        self._process_qc(qc, now_ms, out, vote.voter)
        if self.proposal_due_ms is None or self.proposal_due_ms > now_ms:
            # Our proposal waits for the block interval: announce the QC now so replicas commit.
            out.append(Broadcast(QcMsg(qc)))

    # ------------------------------------------------------------------ QCs and commits

    def _process_qc(self, qc: QuorumCert, now_ms: int, out: list[Action], sender: int) -> None:
        if qc.epoch != self.epoch:
            if qc.epoch == self.epoch - 1 or qc == self.epoch_state.anchor_qc:
                return
            return
        if qc.block_id not in self.certified:
            self.certified[qc.block_id] = qc
        if self.qc_round(qc) > self.qc_round(self.high_qc):
            self.high_qc = qc
        if self.qc_round(qc) > self.safety.locked_round:
            self.safety = replace(self.safety, locked_round=self.qc_round(qc))
        block = self.blocks.get(qc.block_id)
        if block is None:
            self._request_sync(sender, now_ms, out)
        else:
            self._try_commit(block, qc, now_ms, out)
        self._advance_by_qc(qc, now_ms, out)

    def _try_commit(self, b1: Block, qc1: QuorumCert, now_ms: int, out: list[Action]) -> None:
        b0 = self.blocks.get(b1.parent_id)
        if b0 is None or b0.epoch != b1.epoch or b1.round != b0.round + 1:
            return
        if b0.height <= self.committed_height:
            return
        if self.blocked_commit is not None and self.blocked_commit[1].round > qc1.round:
            return
        es = self.epoch_state
        # Collect the chain from b0 down to the committed block.
        chain: list[Block] = []
        cursor: Block | None = b0
        while cursor is not None and cursor.height > self.committed_height:
            chain.append(cursor)
            cursor = self.blocks.get(cursor.parent_id)
        if cursor is None or cursor.id != self.committed_block.id:
            return  # b0 does not extend our committed block: cannot happen with < 1/3 faulty
        chain.reverse()
        missing = [d for block in chain for d in self.app.missing_batches(block.batches)]
        if missing:
            # Never execute a block without its transactions: fetch them, commit when they come.
            self.blocked_commit = (b1, qc1)
            peer = chain[-1].proposer if chain[-1].proposer != self.me else b1.proposer
            out.append(FetchBatches(peer, tuple(missing)))
            return
        # Certifying QC of each block: the justify of the next one on the chain (or b1's).
        successors = [*chain[1:], b1]
        for block, nxt in zip(chain, successors, strict=True):
            if block.height > es.end_height:
                break  # suffix blocks past the epoch end never commit
            self._commit_one(block, nxt.justify, now_ms, out)
            if block.height == es.end_height:
                self._end_epoch(block, qc1, b1, now_ms, out)
                return

    def _commit_one(
        self, block: Block, certifying: QuorumCert, now_ms: int, out: list[Action]
    ) -> None:
        self.app.commit(block, certifying)
        self.committed_block = block
        self.committed_height = block.height
        for ev in block.evidence:
            self.evidence.mark_committed(ev)
        out.append(Committed(block, certifying, now_ms))
        self._prune()

    def _prune(self) -> None:
        if len(self.blocks) < 256:
            return
        keep = self.committed_height - 8
        self.blocks = {
            k: b for k, b in self.blocks.items() if b.height >= keep or k == self.committed_block.id
        }
        self.certified = {k: q for k, q in self.certified.items() if k in self.blocks}

    def _end_epoch(
        self,
        end_block: Block,
        commit_qc: QuorumCert,
        certified: Block,
        now_ms: int,
        out: list[Action],
    ) -> None:
        proof: list[Block] = []
        cursor: Block | None = certified
        while cursor is not None and cursor.id != end_block.id:
            proof.append(cursor)
            cursor = self.blocks.get(cursor.parent_id)
        proof.reverse()
        ended = self.epoch_state
        new = self.app.next_epoch(ended, end_block, commit_qc)
        self.previous_epoch = ended
        self.epoch_state = new
        self.safety = SafetyState(epoch=new.epoch)
        out.append(PersistSafety(self.safety))
        self.blocks = {end_block.id: end_block}
        self.certified = {end_block.id: commit_qc}
        self.high_qc = new.anchor_qc
        self.round = 0
        self.round_deadline_ms = 0
        self.consecutive_timeouts = 0
        self.last_tc = None
        self.votes.clear()
        self.timeouts.clear()
        self.pending.clear()
        out.append(EpochStarted(new, tuple(proof)))
        self._enter_round(1, now_ms, out)

    # ------------------------------------------------------------------ timeouts

    def _local_timeout(self, now_ms: int, out: list[Action]) -> None:
        round_ = self.round
        if self.timed_out_round != round_:
            self.timed_out_round = round_
            out.append(RoundTimedOut(self.epoch, round_))
        self.consecutive_timeouts += 1
        self.round_deadline_ms = now_ms + self._timeout_duration()
        self._send_timeout(round_, now_ms, out)

    def _send_timeout(self, round_: int, now_ms: int, out: list[Action]) -> None:
        if self.safety.last_voted_round < round_:
            self.safety = replace(self.safety, last_voted_round=round_)
            out.append(PersistSafety(self.safety))
        signature = self.scheme.sign(
            self._secret, Domain.TIMEOUT, codec.timeout_message(self.epoch, round_)
        )
        timeout = Timeout(self.epoch, round_, self.high_qc, self.me, signature)
        out.append(Broadcast(timeout))
        if self.last_tc is not None and self.last_tc.round == round_ - 1:
            out.append(Broadcast(TimeoutCertMsg(self.last_tc)))
        self._on_timeout(now_ms, timeout, out)

    def _on_timeout(self, now_ms: int, timeout: Timeout, out: list[Action]) -> None:
        self._process_qc(timeout.high_qc, now_ms, out, timeout.voter)
        if timeout.round < self.round:
            return
        es = self.epoch_state
        collector = self.timeouts.setdefault(timeout.round, _Collector())
        if collector.done or not collector.add(
            es, timeout.voter, timeout.signature, timeout.high_qc
        ):
            return
        if self.me not in collector.signatures and collector.is_weak_quorum(es):
            # More than a third gave up on this round: join them (Bracha).
            self._send_timeout(timeout.round, now_ms, out)
            return
        if not collector.is_quorum(es):
            return
        collector.done = True
        high = max(collector.high_qcs.values(), key=self.qc_round)
        tc = TimeoutCert(
            epoch=self.epoch,
            round=timeout.round,
            signers=bitmap_from(set(collector.signatures), len(es.validators)),
            signature=self.scheme.aggregate(collector.ordered_signatures()),
            high_qc=high,
        )
        self._on_tc(now_ms, tc, out, self.me)
        next_leader = self.leader(tc.round + 1, after_timeout=True)
        if self.epoch == tc.epoch and next_leader != self.me:
            # The next leader may have missed some of these timeouts (loss, partition): without
            # the TC it cannot propose, and the round would time out again.
            out.append(Send(next_leader, TimeoutCertMsg(tc)))

    # ------------------------------------------------------------------ sync

    def _request_sync(self, peer: int, now_ms: int, out: list[Action]) -> None:
        if peer == self.me:
            return
        last = self.last_sync_request_ms.get(peer)
        if last is not None and now_ms - last < SYNC_BACKOFF_MS:
            return
        self.last_sync_request_ms[peer] = now_ms
        out.append(RequestSync(peer, self.committed_height + 1))


def _message_epoch(msg: Message) -> int:
    if isinstance(msg, Proposal):
        return msg.block.epoch
    if isinstance(msg, TimeoutCertMsg):
        return msg.tc.epoch
    if isinstance(msg, QcMsg):
        return msg.qc.epoch
    return msg.epoch


class _Collector:
    """Votes or timeouts for one (round[, block]) with running authority/stake tallies."""

    __slots__ = ("authorities", "done", "high_qcs", "signatures", "stake")

    def __init__(self) -> None:
        self.signatures: dict[int, bytes] = {}
        self.high_qcs: dict[int, QuorumCert] = {}
        self.authorities = 0
        self.stake = 0
        self.done = False

    def add(
        self, es: EpochState, signer: int, signature: bytes, high_qc: QuorumCert | None
    ) -> bool:
        if signer in self.signatures or not 0 <= signer < len(es.validators):
            return False
        self.signatures[signer] = signature
        if high_qc is not None:
            self.high_qcs[signer] = high_qc
        validator = es.validators.validators[signer]
        self.stake += validator.stake
        self.authorities += int(validator.authority)
        return True

    def ordered_signatures(self) -> list[bytes]:
        return [self.signatures[i] for i in sorted(self.signatures)]

    def is_quorum(self, es: EpochState) -> bool:
        return es.validators.quorum_from_tally(es.mode, self.authorities, self.stake)

    def is_weak_quorum(self, es: EpochState) -> bool:
        return es.validators.weak_quorum_from_tally(es.mode, self.authorities, self.stake)
