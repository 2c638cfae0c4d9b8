"""Votes and timeouts gathered towards a certificate, with running quorum tallies.

Messages reach a collector verified; a collector takes at most one entry per signer, and the
core gives each signer at most one collector per round, so memory is bounded by the rounds the
core accepts times the validators.
"""

from __future__ import annotations

from aitbc_node.consensus.codec import MAX_TC_GROUPS
from aitbc_node.consensus.signing import qc_round_in
from aitbc_node.consensus.types import (
    EpochState,
    QuorumCert,
    Timeout,
    TimeoutCert,
    TimeoutGroup,
    Vote,
    bitmap_from,
)
from aitbc_node.crypto import SignatureScheme


class _Tally:
    """Signers counted by authority and stake under one epoch's validator set."""

    __slots__ = ("authorities", "done", "signers", "stake")

    def __init__(self) -> None:
        self.signers: set[int] = set()
        self.authorities = 0
        self.stake = 0
        self.done = False

    def count(self, es: EpochState, signer: int) -> bool:
        if signer in self.signers or not 0 <= signer < len(es.validators):
            return False
        self.signers.add(signer)
        validator = es.validators.validators[signer]
        self.stake += validator.stake
        self.authorities += int(validator.authority)
        return True

    def is_quorum(self, es: EpochState) -> bool:
        return es.validators.quorum_from_tally(es.mode, self.authorities, self.stake)

    def is_weak_quorum(self, es: EpochState) -> bool:
        return es.validators.weak_quorum_from_tally(es.mode, self.authorities, self.stake)


class VoteCollector(_Tally):
    """Votes for one (round, height, block id): the signed tuple, so they aggregate."""

    __slots__ = ("signatures",)

    def __init__(self) -> None:
        super().__init__()
        self.signatures: dict[int, bytes] = {}

    def add(self, es: EpochState, vote: Vote) -> bool:
        if not self.count(es, vote.voter):
            return False
        self.signatures[vote.voter] = vote.signature
        return True

    def certificate(self, scheme: SignatureScheme, es: EpochState, vote: Vote) -> QuorumCert:
        """The QC of the votes gathered (call once ``is_quorum``)."""
        ordered = sorted(self.signatures)
        return QuorumCert(
            epoch=vote.epoch,
            round=vote.round,
            height=vote.height,
            block_id=vote.block_id,
            signers=bitmap_from(set(ordered), len(es.validators)),
            signature=scheme.aggregate([self.signatures[i] for i in ordered]),
        )


class TimeoutCollector(_Tally):
    """Timeouts for one round, each with the highest-QC round its sender signed."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[int, Timeout] = {}

    def add(self, es: EpochState, timeout: Timeout) -> bool:
        if not self.count(es, timeout.voter):
            return False
        self.entries[timeout.voter] = timeout
        return True

    def certificate(self, scheme: SignatureScheme, es: EpochState) -> TimeoutCert | None:
        """A TC from the gathered timeouts: groups by signed highest-QC round, highest first,
        taken until they form a quorum (at most ``MAX_TC_GROUPS``). None when they do not (only
        when more rounds than that are in play)."""
        by_round: dict[int, list[Timeout]] = {}
        for timeout in self.entries.values():
            by_round.setdefault(qc_round_in(timeout.epoch, timeout.high_qc), []).append(timeout)
        groups: list[TimeoutGroup] = []
        tally = _Tally()
        high_qc: QuorumCert | None = None
        epoch = round_ = 0
        for hqc_round in sorted(by_round, reverse=True)[:MAX_TC_GROUPS]:
            members = sorted(by_round[hqc_round], key=lambda t: t.voter)
            if high_qc is None:
                high_qc = members[0].high_qc
                epoch, round_ = members[0].epoch, members[0].round
            for timeout in members:
                tally.count(es, timeout.voter)
            groups.append(
                TimeoutGroup(
                    high_qc_round=hqc_round,
                    signers=bitmap_from({t.voter for t in members}, len(es.validators)),
                    signature=scheme.aggregate([t.signature for t in members]),
                )
            )
            if tally.is_quorum(es):
                assert high_qc is not None
                return TimeoutCert(epoch, round_, tuple(groups), high_qc)
        return None
