"""Signature and certificate checks of peer messages (pure; safe from worker threads).

A :class:`Verifier` is an immutable snapshot of the scheme and the epoch states messages are
checked against (the current epoch and the one before it). Every method returns ``None`` when
the object is valid, else the :class:`Reason` it is not. Cheap structural checks come before
any pairing, so a malformed certificate costs no cryptography.

What each check binds (see ``signing``): a QC's every field but the bitmap and the aggregate is
signed, and the bitmap must be canonical (exactly one byte per 8 validators) and name a quorum;
a TC's groups must be disjoint, in strictly decreasing signed highest-QC round, each below the
TC's round, together a quorum, and the TC's (unsigned) high QC must be a valid QC whose round is
the first group's signed round, so no relay can swap it for an older one.
"""

from __future__ import annotations

from aitbc_node.consensus.reasons import Reason
from aitbc_node.consensus.signing import (
    qc_round_in,
    randao_message,
    timeout_message,
    vote_message,
)
from aitbc_node.consensus.types import (
    EpochState,
    Evidence,
    EvidenceMsg,
    Message,
    Proposal,
    QcMsg,
    QuorumCert,
    Timeout,
    TimeoutCert,
    Vote,
)
from aitbc_node.crypto import Domain, SignatureScheme

_EVIDENCE_DOMAINS = {"vote": Domain.VOTE, "proposal": Domain.PROPOSAL}
#: Valid QCs remembered (a QC travels in many messages: every timeout carries one).
_GOOD_QCS = 256


def bitmap_bytes(validators: int) -> int:
    """The canonical length of a signer bitmap over ``validators`` validators."""
    return (validators + 7) // 8


class Verifier:
    """Checks against ``current`` (and ``previous``, for the QCs and evidence an epoch's first
    blocks carry). Never mutates the epoch states; its only state is a cache of valid QCs."""

    def __init__(
        self, scheme: SignatureScheme, current: EpochState, previous: EpochState | None
    ) -> None:
        self.scheme = scheme
        self.current = current
        self.previous = previous
        self._good_qcs: dict[QuorumCert, None] = {}
        #: Each proposer's verified RANDAO reveal of the current epoch. A BLS signature is
        #: unique, so a proposer's reveal is the same bytes in every block of the epoch: one
        #: check per proposer and epoch instead of one per proposal.
        self._good_reveals: dict[int, bytes] = {}

    def _key(self, index: int) -> bytes | None:
        validators = self.current.validators.validators
        return validators[index].public_key if 0 <= index < len(validators) else None

    # ------------------------------------------------------------------ certificates

    def qc(self, qc: QuorumCert) -> Reason | None:
        """A QC of this epoch or the previous one (an epoch's first blocks carry a QC of the
        ended epoch: nodes may have seen different QCs end it, so any valid one is accepted),
        or the epoch's own anchor certificate."""
        if qc in self._good_qcs:
            return None
        es = self.current
        if qc.epoch != es.epoch:
            if qc == es.anchor_qc:
                return None
            previous = self.previous
            if previous is None or qc.epoch != previous.epoch or qc.epoch + 1 != es.epoch:
                return Reason.QC_WRONG_EPOCH
            es = previous
        validators = es.validators
        if len(qc.signers) != bitmap_bytes(len(validators)):
            return Reason.QC_BAD_SIGNERS
        signers = qc.signer_set
        if not signers or max(signers) >= len(validators):
            return Reason.QC_BAD_SIGNERS
        if not validators.is_quorum(es.mode, signers):
            return Reason.QC_NO_QUORUM
        keys = [validators.validators[i].public_key for i in sorted(signers)]
        message = vote_message(es.chain_id, qc.epoch, qc.round, qc.height, qc.block_id)
        if not self.scheme.fast_aggregate_verify(keys, Domain.VOTE, message, qc.signature):
            return Reason.QC_BAD_SIGNATURE
        if len(self._good_qcs) >= _GOOD_QCS:
            self._good_qcs.clear()
        self._good_qcs[qc] = None
        return None

    def tc(self, tc: TimeoutCert) -> Reason | None:
        es = self.current
        if tc.epoch != es.epoch:
            return Reason.TC_WRONG_EPOCH
        validators = es.validators
        size = len(validators)
        union: set[int] = set()
        ceiling = tc.round
        for group in tc.groups:
            if group.high_qc_round >= ceiling or len(group.signers) != bitmap_bytes(size):
                return Reason.TC_BAD_GROUPS
            members = group.signer_set
            if not members or max(members) >= size or not union.isdisjoint(members):
                return Reason.TC_BAD_GROUPS
            union |= members
            ceiling = group.high_qc_round
        if not tc.groups:
            return Reason.TC_BAD_GROUPS
        if qc_round_in(tc.epoch, tc.high_qc) != tc.high_qc_round:
            return Reason.TC_HIGH_QC_MISMATCH
        if not validators.is_quorum(es.mode, union):
            return Reason.TC_NO_QUORUM
        for group in tc.groups:
            keys = [validators.validators[i].public_key for i in sorted(group.signer_set)]
            message = timeout_message(es.chain_id, tc.epoch, tc.round, group.high_qc_round)
            if not self.scheme.fast_aggregate_verify(
                keys, Domain.TIMEOUT, message, group.signature
            ):
                return Reason.TC_BAD_SIGNATURE
        return self.qc(tc.high_qc)

    def evidence(self, ev: Evidence) -> Reason | None:
        """Evidence of the current epoch or the one before (keys from the evidence's epoch)."""
        domain = _EVIDENCE_DOMAINS.get(ev.kind)
        if domain is None:
            return Reason.EVIDENCE_UNKNOWN_KIND
        if ev.epoch == self.current.epoch:
            state = self.current
        elif self.previous is not None and ev.epoch == self.previous.epoch:
            state = self.previous
        else:
            return Reason.EVIDENCE_WRONG_EPOCH
        if not 0 <= ev.offender < len(state.validators):
            return Reason.EVIDENCE_UNKNOWN_OFFENDER
        if ev.block_a == ev.block_b:
            return Reason.EVIDENCE_SAME_BLOCK
        key = state.validators.validators[ev.offender].public_key
        for height, block_id, signature in (
            (ev.height_a, ev.block_a, ev.signature_a),
            (ev.height_b, ev.block_b, ev.signature_b),
        ):
            message = vote_message(state.chain_id, ev.epoch, ev.round, height, block_id)
            if not self.scheme.verify(key, domain, message, signature):
                return Reason.EVIDENCE_BAD_SIGNATURE
        return None

    # ------------------------------------------------------------------ messages

    def _signed(
        self, signer: int, domain: bytes, message: bytes, signature: bytes, bad: Reason
    ) -> Reason | None:
        """``signature`` is validator ``signer``'s over ``message`` (else ``bad``, or
        ``unknown_voter`` for an index outside the set)."""
        key = self._key(signer)
        if key is None:
            return Reason.UNKNOWN_VOTER
        return None if self.scheme.verify(key, domain, message, signature) else bad

    def _reveal(self, proposer: int, reveal: bytes) -> Reason | None:
        """``reveal`` is ``proposer``'s RANDAO reveal of the current epoch."""
        if self._good_reveals.get(proposer) == reveal:
            return None
        es = self.current
        reason = self._signed(
            proposer,
            Domain.RANDAO,
            randao_message(es.chain_id, es.epoch),
            reveal,
            Reason.BAD_RANDAO_REVEAL,
        )
        if reason is None:
            self._good_reveals[proposer] = reveal
        return reason

    def needs_pairing(self, msg: Message) -> bool:
        """Whether ``message(msg)`` may compute a pairing (a driver checks the others inline,
        without a trip to a worker thread): votes never, timeouts and QC announcements only
        for a QC not yet known to be valid."""
        if isinstance(msg, Vote):
            return False
        if isinstance(msg, Timeout):
            return msg.high_qc not in self._good_qcs and msg.high_qc != self.current.anchor_qc
        if isinstance(msg, QcMsg):
            return msg.qc not in self._good_qcs
        return True

    def message(self, msg: Message) -> Reason | None:
        """Every signature in ``msg``, for a message of the current epoch (others pass: the core
        decides what to do with them, and verifies what it uses). Votes' and timeouts' own
        signatures are the exception: the collectors check them, aggregate first."""
        es = self.current
        chain = es.chain_id
        if isinstance(msg, Proposal):
            block = msg.block
            if block.epoch != es.epoch:
                return None
            if self._key(block.proposer) is None:
                return Reason.UNKNOWN_PROPOSER
            signed = vote_message(chain, block.epoch, block.round, block.height, block.id)
            reason = self._signed(
                block.proposer,
                Domain.PROPOSAL,
                signed,
                msg.signature,
                Reason.BAD_PROPOSAL_SIGNATURE,
            ) or self._reveal(block.proposer, block.randao_reveal)
            if reason is None:
                reason = self.qc(block.justify)
            if reason is None and block.tc is not None:
                reason = self.tc(block.tc)
            for ev in block.evidence:
                if reason is not None:
                    break
                reason = self.evidence(ev)
            return reason
        if isinstance(msg, Vote):
            # The vote's signature is checked where votes are collected, aggregate first
            # (``collector``): here only that the voter exists.
            if msg.epoch != es.epoch or self._key(msg.voter) is not None:
                return None
            return Reason.UNKNOWN_VOTER
        if isinstance(msg, Timeout):
            if msg.epoch != es.epoch:
                return None
            if self._key(msg.voter) is None:
                return Reason.UNKNOWN_VOTER
            if qc_round_in(msg.epoch, msg.high_qc) >= msg.round:
                return Reason.TIMEOUT_BAD_HIGH_QC
            # Its own signature: checked by the timeout collector, aggregate first.
            return self.qc(msg.high_qc)
        if isinstance(msg, QcMsg):
            return None if msg.qc.epoch != es.epoch else self.qc(msg.qc)
        if isinstance(msg, EvidenceMsg):
            return self.evidence(msg.evidence)
        if msg.tc.epoch != es.epoch:
            return None
        return self.tc(msg.tc)
