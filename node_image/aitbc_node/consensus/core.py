"""The consensus core: a pure state machine (no I/O, no clock reads, no threads).

Jolteon / DiemBFT-v4 style 2-chain HotStuff with a rotating leader and the hybrid PoA/PoS quorum
of the epoch's mode. Time and messages come in as method calls carrying ``now_ms``; what must
happen comes out as a list of :mod:`actions`. The networked runtime and the simulator are its two
drivers. Signature checks live in ``verify``, the acceptance rules in ``rules``, vote and
timeout gathering in ``collector``, the block tree in ``tree``. What stays here (over 600 lines,
on purpose) is the one state machine whose handlers all read and write the same round, lock,
highest-QC and tree state: splitting it further would spread one transition over modules.

Rules in one place (docs/architecture.md gives the reasons):
- screen every peer message before any signature check: the sender is its author, its round is
  neither stale nor more than ``FUTURE_ROUND_WINDOW`` ahead, a proposal comes from its round's
  leader with bounded payload;
- vote for block B (round r, justify qc) iff r > last_voted_round, qc.round >= locked_round
  (always, an epoch's start included: an earlier epoch's QC counts as round 0) and
  (r == qc.round + 1, or B carries a TC for r - 1 with qc.round >= the TC's signed highest QC
  round), and B's timestamp is within ``MAX_CLOCK_DRIFT_MS`` of the local clock;
- at most two proposals per (round, proposer) enter the tree (a second one is equivocation:
  evidence; a third is refused);
  blocks from a sync must each be certified by a verified QC;
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

from aitbc_node.consensus import reputation, rules
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
from aitbc_node.consensus.codec import message_epoch
from aitbc_node.consensus.collector import (
    TimeoutCollector,
    VoteCollector,
    vote_signature_valid,
)
from aitbc_node.consensus.evidence import EvidencePool
from aitbc_node.consensus.reasons import Reason
from aitbc_node.consensus.signing import Signer, qc_round_in
from aitbc_node.consensus.tree import BlockTree
from aitbc_node.consensus.types import (
    MAX_CLOCK_DRIFT_MS,
    MAX_TIMEOUT_DOUBLINGS,
    TIMEOUTS_BEFORE_BACKOFF,
    BatchRef,
    Block,
    EpochState,
    Evidence,
    EvidenceMsg,
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
)
from aitbc_node.consensus.verify import Verifier
from aitbc_node.crypto import SignatureScheme

#: Votes of one voter collected in one round, at most (see ``ConsensusCore.voters``). Two
#: QCs of one round for different blocks would need two quorums, which intersect in more than a
#: third: impossible with fewer than a third byzantine, however their votes are counted.
VOTES_PER_VOTER = 2
#: Blocks one proposer may put into the tree per round (see ``ConsensusCore.proposed``).
PROPOSALS_PER_PROPOSER = 2
#: Proposals waiting for their batches, at most.
MAX_PENDING_PROPOSALS = 32
#: How often (ms) the core may ask the same peer for a sync.
SYNC_BACKOFF_MS = 500
#: How often (ms) the core sends the same straggler the certificate of its current round.
HELP_BACKOFF_MS = 500


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
        history: Sequence[Block] = (),
    ) -> None:
        """``history``: committed blocks just below ``root`` (a restart passes the last
        ``reputation.WINDOW``): the leader reputation reads them, so a restarted node draws the
        same leaders as the others."""
        self.me = me
        self.scheme = scheme
        self.signer = Signer(me, secret, scheme, epoch.chain_id)
        self.app = app
        self.epoch_state = epoch
        self.previous_epoch = previous_epoch
        self.verifier = Verifier(scheme, epoch, previous_epoch)
        self.safety = safety if safety.epoch == epoch.epoch else SafetyState(epoch=epoch.epoch)

        self.high_qc = root_qc
        if root.id == epoch.anchor_id:
            # Resuming at an epoch boundary: the anchor certificate is the epoch's round-0 QC.
            root_qc = self.high_qc = epoch.anchor_qc
        self.tree = BlockTree(root, root_qc)
        for block in history:
            if block.height < root.height:
                self.tree.add(block)
        self.round = 0
        self.timed_out_round = -1
        self.consecutive_timeouts = 0
        self.round_deadline_ms = 0
        #: When this node entered its current round (``_help_straggler``).
        self.round_entered_ms = 0
        self.proposal_due_ms: int | None = None
        self.last_tc: TimeoutCert | None = None

        self.votes: dict[tuple[int, int, bytes], VoteCollector] = {}
        #: Votes collected per round and voter: at most ``VOTES_PER_VOTER`` (an equivocator's
        #: two votes both count, as an honest leader cannot tell which one is its real vote;
        #: a flood of further ones does not grow the collectors).
        self.voters: dict[int, dict[int, int]] = {}
        self.timeouts: dict[int, TimeoutCollector] = {}
        #: The blocks each (round, proposer) put into the tree: a second one is equivocation
        #: (evidence) but kept, as others may certify it; a third is not inserted. (A round can
        #: have two honest proposers: its primary, for nodes that entered it by a QC, and its
        #: fallback, for nodes that entered it by a TC.)
        self.proposed: dict[tuple[int, int], list[bytes]] = {}
        self.evidence = EvidencePool()
        self.pending: dict[bytes, tuple[int, Proposal]] = {}
        self.last_sync_request_ms: dict[int, int] = {}
        #: When each straggler was last sent a certificate (``_help_straggler``).
        self.last_help_ms: dict[int, int] = {}
        self.blocked_commit: tuple[Block, QuorumCert] | None = None
        #: ``reputation.absent`` per parent block id (certified data: it never changes).
        self.absent_after: dict[bytes, frozenset[int] | None] = {}
        self.started = False

    # ------------------------------------------------------------------ queries

    @property
    def epoch(self) -> int:
        return self.epoch_state.epoch

    @property
    def mode(self) -> Mode:
        return self.epoch_state.mode

    @property
    def committed_block(self) -> Block:
        return self.tree.committed

    @property
    def committed_height(self) -> int:
        return self.tree.committed.height

    def leader(self, round_: int, after_timeout: bool = False, parent: Block | None = None) -> int:
        """Round ``round_``'s proposer for a block extending ``parent`` (by default the block of
        this node's highest QC, which it would extend): the primary when the round follows a
        QC of the round before, the fallback when it follows a timeout certificate (a dead
        primary for r+1 then costs one timed-out round, r, whose votes it would have
        aggregated, not two); never a validator absent from ``parent``'s recent certified
        chain (``reputation``)."""
        if parent is None:
            parent = self._proposal_parent()
        excluded = self._absent(parent) if parent is not None else None
        return rules.leader_of(self.epoch_state, round_, after_timeout, excluded or frozenset())

    def may_lead(self, round_: int, after_timeout: bool, parent_id: bytes) -> frozenset[int] | None:
        """The proposers this node accepts for ``round_`` extending block ``parent_id``: the
        one leader drawn without the validators absent from that block's recent certified
        chain (``reputation``); None (not checked) when this node lacks the block or the
        ancestry the reputation reads (a vote or proposal that overtook its block, a node
        restarted from its committed block): it cannot tell, and refusing would turn an
        honest sender into a suspect. Such a proposal is checked and then waits for a sync
        (its parent is missing); such a vote is only collected (a quorum of them is checked
        once, as any)."""
        parent = self.tree.get(parent_id)
        if parent is None:
            return None
        excluded = self._absent(parent)
        if excluded is None:
            return None
        return frozenset({rules.leader_of(self.epoch_state, round_, after_timeout, excluded)})

    def _absent(self, parent: Block) -> frozenset[int] | None:
        cached = self.absent_after.get(parent.id, ())
        if cached != ():
            return cached  # type: ignore[return-value]
        if len(self.absent_after) > 1024:
            self.absent_after.clear()
        found = reputation.absent(parent, self.tree.get, self.epoch_state)
        self.absent_after[parent.id] = found
        return found

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
        return qc_round_in(self.epoch, qc)

    def uncommitted_chain(self) -> tuple[list[Block], QuorumCert]:
        """Blocks from just above the committed block to the highest certified block, and the
        highest QC: what a peer needs (after our committed blocks) to catch up. Every block is
        certified (by its child's justify, the last by the QC)."""
        return self.tree.uncommitted_chain(self.high_qc), self.high_qc

    def next_wakeup(self) -> int:
        due = self.round_deadline_ms
        if self.proposal_due_ms is not None:
            due = min(due, self.proposal_due_ms)
        return due

    # ------------------------------------------------------------------ checks (thread-safe)

    def verify_qc(self, qc: QuorumCert) -> Reason | None:
        return self.verifier.qc(qc)

    def verify_tc(self, tc: TimeoutCert) -> Reason | None:
        return self.verifier.tc(tc)

    def verify_message(self, msg: Message) -> Reason | None:
        """Every signature in ``msg`` against the current epoch (None when valid). Safe from a
        worker thread: the verifier is an immutable snapshot of the epoch states."""
        return self.verifier.message(msg)

    def screen(self, sender: int, msg: Message) -> Reason | None:
        """Why ``msg`` from ``sender`` is refused before any signature is checked, or None
        (``rules.screen``: a flood that fails here costs no cryptography)."""
        return rules.screen(
            sender,
            msg,
            self.epoch_state,
            round_=self.round,
            me=self.me,
            high_qc_round=self.qc_round(self.high_qc),
            committed_height=self.committed_height,
            may_lead=self.may_lead,
        )

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
        reason = self.screen(sender, msg)
        if reason is not None:
            out.append(Rejected(sender, reason))
            return out
        epoch = message_epoch(msg)
        if epoch > self.epoch:
            # A first block of the next epoch carries the QC that ends ours: try it.
            if (
                isinstance(msg, Proposal)
                and epoch == self.epoch + 1
                and msg.block.justify.epoch == self.epoch
                and self.verifier.qc(msg.block.justify) is None
            ):
                self._process_qc(msg.block.justify, now_ms, out, sender)
                if self.epoch == epoch:
                    return out + self.on_message(now_ms, sender, msg)
            self._request_sync(sender, now_ms, out)
            return out
        if not verified:
            reason = self.verifier.message(msg)
            if reason is not None:
                out.append(Rejected(sender, reason))
                return out
        if isinstance(msg, Proposal):
            self._on_proposal(now_ms, sender, msg, out)
        elif isinstance(msg, Vote):
            self._on_vote(now_ms, msg, out)
        elif isinstance(msg, Timeout):
            self._on_timeout(now_ms, msg, out)
        elif isinstance(msg, QcMsg):
            self._process_qc(msg.qc, now_ms, out, sender)
        elif isinstance(msg, EvidenceMsg):
            self.evidence.add(msg.evidence)
        else:
            self._on_tc(now_ms, msg.tc, out, sender)
        out.append(ScheduleTick(self.next_wakeup()))
        return out

    def on_batches_available(self, now_ms: int) -> list[Action]:
        """Batches arrived: retry commits and proposals that were waiting for them."""
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
        """Blocks from a peer (or this node's own store), ascending and linked. Each new block
        must be certified by a verified QC in the answer (a later block's justify, or
        ``high_qc``): an uncertified block is never inserted (the answer's last block may lack
        its certifier when the answer was cut short; it is skipped quietly)."""
        out: list[Action] = []
        certifiers = {block.justify.block_id: block.justify for block in blocks}
        if high_qc is not None:
            certifiers[high_qc.block_id] = high_qc
        for position, block in enumerate(blocks):
            if block.height <= self.committed_height and block.epoch <= self.epoch:
                continue
            if block.epoch > self.epoch:
                # The block's justify (previous-epoch QC) may commit our last block.
                if block.justify.epoch == self.epoch and self.verifier.qc(block.justify) is None:
                    self._process_qc(block.justify, now_ms, out, sender)
                if block.epoch != self.epoch:
                    break
            if block.epoch < self.epoch:
                continue
            if self.verifier.qc(block.justify) is not None:
                out.append(Rejected(sender, Reason.SYNC_BAD_QC))
                break
            if block.id not in self.tree:
                certifying = certifiers.get(block.id)
                if certifying is None:
                    if position + 1 < len(blocks):
                        out.append(Rejected(sender, Reason.SYNC_UNCERTIFIED_BLOCK))
                    break
                if (certifying.epoch, certifying.round, certifying.height) != (
                    block.epoch,
                    block.round,
                    block.height,
                ) or self.verifier.qc(certifying) is not None:
                    out.append(Rejected(sender, Reason.SYNC_BAD_QC))
                    break
                if not self._insert_block(block, out, sender, now_ms, certified=True):
                    break
            self._process_qc(block.justify, now_ms, out, sender)
        if high_qc is not None and high_qc.epoch == self.epoch and not self.verifier.qc(high_qc):
            self._process_qc(high_qc, now_ms, out, sender)
        out.append(ScheduleTick(self.next_wakeup()))
        return out

    # ------------------------------------------------------------------ rounds

    def round_duration_ms(self) -> int:
        """How long the current round lasts before this node times out of it."""
        base = self.epoch_state.params.base_timeout(self.epoch_state.mode)
        excess = max(0, self.consecutive_timeouts - TIMEOUTS_BEFORE_BACKOFF)
        return base * (1 << min(excess, MAX_TIMEOUT_DOUBLINGS))

    def _enter_round(self, round_: int, now_ms: int, out: list[Action]) -> None:
        if round_ <= self.round and self.started and self.round_deadline_ms:
            return
        self.round = round_
        self.round_entered_ms = now_ms
        self.round_deadline_ms = now_ms + self.round_duration_ms()
        self.proposal_due_ms = None
        # Forget what was gathered for rounds long gone.
        if len(self.votes) > 64:
            self.votes = {k: v for k, v in self.votes.items() if k[0] >= round_ - 2}
        if len(self.voters) > 64:
            self.voters = {k: v for k, v in self.voters.items() if k >= round_ - 2}
        if len(self.timeouts) > 64:
            self.timeouts = {k: v for k, v in self.timeouts.items() if k >= round_ - 2}
        if len(self.proposed) > 1024:
            self.proposed = {k: v for k, v in self.proposed.items() if k[0] >= round_ - 512}
        self.evidence.forget_before(self.epoch, round_ - 1000)
        self._schedule_proposal(now_ms, out)

    def _schedule_proposal(self, now_ms: int, out: list[Action]) -> None:
        """As leader of the current round, propose once the parent is known and the block
        interval since the parent's timestamp has passed (at once after a TC). Never wait more
        than one interval: a parent stamped ahead of this node's clock (skew) must not stall."""
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
            due = max(now_ms, min(parent.timestamp_ms, now_ms) + interval)
        self.proposal_due_ms = due
        if due <= now_ms:
            self._propose(now_ms, out)

    def _proposal_parent(self) -> Block | None:
        es = self.epoch_state
        qc = self.high_qc
        if qc.epoch == es.epoch:
            return self.tree.get(qc.block_id)
        if qc == es.anchor_qc:
            return self.tree.get(es.anchor_id)
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
                es.params.max_batches_per_block, self.tree.ancestor_digests(parent)
            )
            evidence = tuple(self.evidence.pending(es.params.max_evidence_per_block, es.epoch))
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
            randao_reveal=self.signer.randao_reveal(es.epoch),
        )
        self.safety = replace(self.safety, last_proposed_round=round_)
        out.append(PersistSafety(self.safety))
        proposal = self.signer.proposal(block)
        out.append(Broadcast(proposal))
        self._on_proposal(now_ms, self.me, proposal, out)

    def _insert_block(
        self, block: Block, out: list[Action], sender: int, now_ms: int, certified: bool = False
    ) -> bool:
        """Check a block's place in the tree and add it. False (and a reason) when it does not
        fit. The proposer of a ``certified`` block (a verified QC names it) is not checked:
        a quorum accepted it, and this node may lack the history its leader was drawn from."""
        es = self.epoch_state
        if block.justify.epoch != block.epoch:
            # An epoch's first blocks extend its anchor with a (verified) QC of the ended epoch.
            if block.justify.epoch + 1 != block.epoch or block.parent_id != es.anchor_id:
                out.append(Rejected(sender, Reason.BAD_EPOCH_START))
                return False
        elif block.parent_id != block.justify.block_id:
            out.append(Rejected(sender, Reason.PARENT_NOT_JUSTIFIED))
            return False
        parent = self.tree.get(block.parent_id)
        if parent is None:
            self._request_sync(sender, now_ms, out)
            return False
        reason = rules.block_shape(block, es, None if certified else self.may_lead)
        if reason is None:
            reason = rules.placement(block, parent, es)
        if reason is not None:
            out.append(Rejected(sender, reason))
            return False
        self.tree.add(block)
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
            "proposal",
            block.epoch,
            block.round,
            block.proposer,
            block.height,
            block.id,
            proposal.signature,
        )
        if ev is not None:
            _found(ev, out)
        for carried in block.evidence:
            self.evidence.add(carried)
        self._process_qc(block.justify, now_ms, out, sender)
        if block.tc is not None:
            self._on_tc(now_ms, block.tc, out, sender)
        if self.epoch != block.epoch:
            return
        if block.round > self.round:
            # Its certificates did not bring us to its round: neither is for the round before.
            out.append(Rejected(sender, Reason.NO_CERTIFICATE_FOR_ROUND))
            return
        if block.id not in self.tree:
            if block.height <= self.committed_height:
                out.append(Rejected(sender, Reason.STALE_MESSAGE))
                return
            proposed = self.proposed.setdefault((block.round, block.proposer), [])
            if len(proposed) >= PROPOSALS_PER_PROPOSER:
                out.append(Rejected(sender, Reason.PROPOSAL_FLOOD))
                return
            if block.timestamp_ms > now_ms + MAX_CLOCK_DRIFT_MS:
                out.append(Rejected(sender, Reason.TIMESTAMP_IN_FUTURE))
                return
            if not self._insert_block(block, out, sender, now_ms):
                return
            proposed.append(block.id)
        if block.round != self.round:
            return
        missing = self.app.missing_batches(block.batches)
        if missing:
            self.pending[block.id] = (sender, proposal)
            if len(self.pending) > MAX_PENDING_PROPOSALS:
                self.pending.pop(next(iter(self.pending)))
            peer = self._batch_source((block.proposer, sender), block.round)
            out.append(FetchBatches(peer, tuple(missing)))
            return
        self._maybe_vote(block, now_ms, out)

    # ------------------------------------------------------------------ voting

    def _maybe_vote(self, block: Block, now_ms: int, out: list[Action]) -> None:
        allowed, reason = rules.vote_refusal(self.safety, block, now_ms, self.round_duration_ms())
        if not allowed:
            if reason is not None:
                out.append(Rejected(block.proposer, reason))
            return
        self.safety = replace(self.safety, last_voted_round=block.round)
        out.append(PersistSafety(self.safety))
        vote = self.signer.vote(self.epoch, block.round, block.height, block.id)
        next_leader = self.leader(block.round + 1, parent=block)
        if next_leader == self.me:
            self._on_vote(now_ms, vote, out, own=True)
        else:
            out.append(Send(next_leader, vote))

    def _on_vote(self, now_ms: int, vote: Vote, out: list[Action], own: bool = False) -> None:
        """Collect a vote. Its signature is checked aggregate first (``collector``), except
        for a voter's second vote of a round for another block: equivocation, or a forgery in
        the voter's name (peer transports are not authenticated), so both are checked alone
        before either counts or becomes evidence."""
        if not own and not self._second_vote_checked(vote, out):
            return
        ev = self.evidence.observe(
            "vote", vote.epoch, vote.round, vote.voter, vote.height, vote.block_id, vote.signature
        )
        if ev is not None:
            _found(ev, out)
        if vote.round + 1 < self.round:
            return
        leaders = self.may_lead(vote.round + 1, False, vote.block_id)
        if leaders is not None and self.me not in leaders:
            return
        voters = self.voters.setdefault(vote.round, {})
        if voters.get(vote.voter, 0) >= VOTES_PER_VOTER:
            return
        es = self.epoch_state
        key = (vote.round, vote.height, vote.block_id)
        collector = self.votes.get(key)
        if collector is None:
            collector = self.votes[key] = VoteCollector(
                vote.epoch, vote.round, vote.height, vote.block_id
            )
        if collector.done:
            return
        added, bad = collector.add(self.scheme, es, vote.voter, vote.signature, checked=own)
        _reject_all(bad, Reason.BAD_VOTE_SIGNATURE, out)
        if not added:
            return
        voters[vote.voter] = voters.get(vote.voter, 0) + 1
        if not collector.is_quorum(es):
            return
        for voter in collector.settle(self.scheme, es):
            voters[voter] -= 1
            out.append(Rejected(voter, Reason.BAD_VOTE_SIGNATURE))
        if not collector.is_quorum(es):
            return
        collector.done = True
        qc = collector.certificate(self.scheme, es)
        self._process_qc(qc, now_ms, out, vote.voter)
        if self.proposal_due_ms is None or self.proposal_due_ms > now_ms:
            # Our proposal waits for the block interval: announce the QC now so replicas commit.
            out.append(Broadcast(QcMsg(qc)))

    def _second_vote_checked(self, vote: Vote, out: list[Action]) -> bool:
        """For a vote of a voter that already has one for another block in this round: check
        both signatures. False when this vote's is bad (reported); a bad first vote is dropped
        from the evidence pool and its collector (reported), and this one goes on."""
        first = self.evidence.first_seen("vote", vote.epoch, vote.round, vote.voter)
        if first is None or first[1] == vote.block_id:
            return True
        es = self.epoch_state
        if vote.epoch != es.epoch:
            return False
        if not vote_signature_valid(
            self.scheme, es, vote.voter, vote.round, vote.height, vote.block_id, vote.signature
        ):
            out.append(Rejected(vote.voter, Reason.BAD_VOTE_SIGNATURE))
            return False
        height, block_id, signature = first
        if not vote_signature_valid(
            self.scheme, es, vote.voter, vote.round, height, block_id, signature
        ):
            self.evidence.forget_seen("vote", vote.epoch, vote.round, vote.voter)
            collector = self.votes.get((vote.round, height, block_id))
            if collector is not None and collector.discard(es, vote.voter, signature):
                voters = self.voters.get(vote.round, {})
                voters[vote.voter] = max(0, voters.get(vote.voter, 0) - 1)
            out.append(Rejected(vote.voter, Reason.BAD_VOTE_SIGNATURE))
        return True

    # ------------------------------------------------------------------ QCs and commits

    def _process_qc(self, qc: QuorumCert, now_ms: int, out: list[Action], sender: int) -> None:
        if qc.epoch != self.epoch:
            return
        self.tree.certify(qc)
        if self.qc_round(qc) > self.qc_round(self.high_qc):
            self.high_qc = qc
        if self.qc_round(qc) > self.safety.locked_round:
            self.safety = replace(self.safety, locked_round=self.qc_round(qc))
        block = self.tree.get(qc.block_id)
        if block is None:
            self._request_sync(sender, now_ms, out)
        else:
            self._try_commit(block, qc, now_ms, out)
        self._advance_by_qc(qc, now_ms, out)

    def _try_commit(self, b1: Block, qc1: QuorumCert, now_ms: int, out: list[Action]) -> None:
        b0 = self.tree.get(b1.parent_id)
        if b0 is None or b0.epoch != b1.epoch or b1.round != b0.round + 1:
            return
        if b0.height <= self.committed_height:
            return
        if self.blocked_commit is not None and self.blocked_commit[1].round > qc1.round:
            return
        es = self.epoch_state
        chain = self.tree.chain_to_commit(b0)
        if chain is None:
            return  # b0 does not extend our committed block: cannot happen with < 1/3 faulty
        missing = [d for block in chain for d in self.app.missing_batches(block.batches)]
        if missing:
            # Never execute a block without its transactions: fetch them, commit when they come.
            self.blocked_commit = (b1, qc1)
            peer = self._batch_source(
                (chain[-1].proposer, b1.proposer, *sorted(qc1.signer_set)), qc1.round
            )
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

    def _batch_source(self, preferred: Sequence[int], round_: int) -> int:
        """The peer to ask for missing batches: the first of ``preferred`` that is not this
        node, else another validator, a different one each round. Never this node: a sole
        leader restarted without its batches asked itself, every round, for ever."""
        for peer in preferred:
            if peer != self.me:
                return peer
        count = len(self.epoch_state.validators)
        return (self.me + 1 + round_ % max(1, count - 1)) % count

    def _commit_one(
        self, block: Block, certifying: QuorumCert, now_ms: int, out: list[Action]
    ) -> None:
        self.app.commit(block, certifying)
        self.tree.mark_committed(block)
        for ev in block.evidence:
            self.evidence.mark_committed(ev)
        out.append(Committed(block, certifying, now_ms))

    def _end_epoch(
        self,
        end_block: Block,
        commit_qc: QuorumCert,
        certified: Block,
        now_ms: int,
        out: list[Action],
    ) -> None:
        proof = self.tree.path_down(certified, stop=end_block.id)
        ended = self.epoch_state
        new = self.app.next_epoch(ended, end_block, commit_qc)
        self.previous_epoch = ended
        self.epoch_state = new
        self.verifier = Verifier(self.scheme, new, ended)
        self.safety = SafetyState(epoch=new.epoch)
        out.append(PersistSafety(self.safety))
        self.tree.restart_at(end_block, commit_qc)
        self.high_qc = new.anchor_qc
        self.round = 0
        self.round_deadline_ms = 0
        self.consecutive_timeouts = 0
        self.last_tc = None
        self.votes.clear()
        self.voters.clear()
        self.timeouts.clear()
        self.proposed.clear()
        self.pending.clear()
        self.absent_after.clear()
        out.append(EpochStarted(new, tuple(proof)))
        self._enter_round(1, now_ms, out)

    # ------------------------------------------------------------------ timeouts

    def _local_timeout(self, now_ms: int, out: list[Action]) -> None:
        round_ = self.round
        if self.timed_out_round != round_:
            self.timed_out_round = round_
            out.append(RoundTimedOut(self.epoch, round_))
        self.consecutive_timeouts += 1
        self.round_deadline_ms = now_ms + self.round_duration_ms()
        self._send_timeout(round_, now_ms, out)

    def _send_timeout(self, round_: int, now_ms: int, out: list[Action]) -> None:
        if self.safety.last_voted_round < round_:
            self.safety = replace(self.safety, last_voted_round=round_)
            out.append(PersistSafety(self.safety))
        timeout = self.signer.timeout(self.epoch, round_, self.high_qc)
        out.append(Broadcast(timeout))
        self._on_timeout(now_ms, timeout, out, own=True)

    def _on_timeout(
        self, now_ms: int, timeout: Timeout, out: list[Action], own: bool = False
    ) -> None:
        self._process_qc(timeout.high_qc, now_ms, out, timeout.voter)
        if timeout.epoch != self.epoch:
            # Its QC ended the epoch: the timeout belongs to the ended one. Kept, it would sit in
            # the new epoch's collector for its round (rounds restart at 1), and this node's own
            # timeout of that round there would be refused as a second signature.
            return
        if timeout.round < self.round and not own:
            self._help_straggler(timeout, now_ms, out)
            return
        if timeout.round > self.round + rules.FUTURE_ROUND_WINDOW:
            return  # a far-ahead timeout was worth its certificate only
        es = self.epoch_state
        collector = self.timeouts.setdefault(timeout.round, TimeoutCollector())
        if collector.done:
            return
        added, bad = collector.add(self.scheme, es, timeout, checked=own)
        _reject_all(bad, Reason.BAD_TIMEOUT_SIGNATURE, out)
        if not added:
            return
        if self.me not in collector.signers and collector.is_weak_quorum(es):
            # More than a third gave up on this round: join them (Bracha), once their
            # signatures are known good.
            _reject_all(collector.settle(self.scheme, es), Reason.BAD_TIMEOUT_SIGNATURE, out)
            if collector.is_weak_quorum(es):
                self._send_timeout(timeout.round, now_ms, out)
            return
        if not collector.is_quorum(es):
            return
        _reject_all(collector.settle(self.scheme, es), Reason.BAD_TIMEOUT_SIGNATURE, out)
        if not collector.is_quorum(es):
            return
        tc = collector.certificate(self.scheme, es)
        if tc is None:
            return
        collector.done = True
        self._on_tc(now_ms, tc, out, self.me)
        next_leader = self.leader(tc.round + 1, after_timeout=True)
        if self.epoch == tc.epoch and next_leader != self.me:
            # The next leader may have missed some of these timeouts (loss, partition): without
            # the TC it cannot propose, and the round would time out again.
            out.append(Send(next_leader, TimeoutCertMsg(tc)))

    def _help_straggler(self, timeout: Timeout, now_ms: int, out: list[Action]) -> None:
        """``timeout``'s voter timed out in a round this node has left: send it the certificate
        that brought this node into its round (the TC, or the highest QC), at most once per
        ``HELP_BACKOFF_MS``. Only stragglers get it: re-broadcasting the TC with every
        retransmitted timeout would cost N^2 messages (and as many certificate checks) per
        timeout period. A timeout of the round just left that arrives within half a round of
        leaving it is the usual race (its voter forms the same TC from the same timeouts), not
        a straggler: it is not answered, or every TC would cost N times the late third."""
        peer = timeout.voter
        if peer == self.me:
            return
        if (
            timeout.round + 1 == self.round
            and now_ms - self.round_entered_ms < self.round_duration_ms() // 2
        ):
            return
        last = self.last_help_ms.get(peer)
        if last is not None and now_ms - last < HELP_BACKOFF_MS:
            return
        self.last_help_ms[peer] = now_ms
        if self._entered_by_tc():
            assert self.last_tc is not None
            out.append(Send(peer, TimeoutCertMsg(self.last_tc)))
        elif self.high_qc.epoch == self.epoch:
            out.append(Send(peer, QcMsg(self.high_qc)))

    # ------------------------------------------------------------------ sync

    def _request_sync(self, peer: int, now_ms: int, out: list[Action]) -> None:
        if peer == self.me:
            return
        last = self.last_sync_request_ms.get(peer)
        if last is not None and now_ms - last < SYNC_BACKOFF_MS:
            return
        self.last_sync_request_ms[peer] = now_ms
        out.append(RequestSync(peer, self.committed_height + 1))


def _reject_all(senders: Sequence[int], reason: Reason, out: list[Action]) -> None:
    out.extend(Rejected(sender, reason) for sender in senders)


def _found(ev: Evidence, out: list[Action]) -> None:
    """New evidence: report it, and send it to everyone (whoever leads next proposes it)."""
    out.append(EvidenceFound(ev))
    out.append(Broadcast(EvidenceMsg(ev)))
