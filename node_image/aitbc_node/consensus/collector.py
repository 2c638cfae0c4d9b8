"""Votes and timeouts gathered towards a certificate, with running quorum tallies, checked
aggregate first.

A vote's or a timeout's signature is not checked when it arrives: the votes for one block all
sign one message, and so do the timeouts of one round that carry the same highest-QC round, so a
whole group is checked with one ``fast_aggregate_verify`` when the collector must decide (a
quorum for a certificate, a weak quorum for a Bracha join: ``settle``). Only when a group's
aggregate fails is each of its signatures checked alone, and the bad ones are dropped, uncounted
and reported; from then on the collector checks every newcomer on arrival (it is under attack).
A leader gathering N votes thus pays one pairing check instead of N, and a node receiving N
timeouts (and their retransmissions, which are duplicates here) one per group.

Nothing a collector holds unchecked leaves it: a certificate is only ever made from settled
entries, whose aggregate is therefore valid. A forged entry cannot displace a genuine one either:
two different signatures of one signer over one message cannot both be valid (BLS signatures are
unique), so the second one to arrive triggers a check of both, and the one that verifies stays.

Memory is bounded: a collector takes at most one entry per signer, and the core gives each
signer at most a few collectors per round (``core.VOTES_PER_VOTER``) for the rounds it accepts.
"""

from __future__ import annotations

from collections.abc import Sequence

from aitbc_node.consensus.codec import MAX_TC_GROUPS
from aitbc_node.consensus.signing import qc_round_in, timeout_message, vote_message
from aitbc_node.consensus.types import (
    EpochState,
    QuorumCert,
    Timeout,
    TimeoutCert,
    TimeoutGroup,
    bitmap_from,
)
from aitbc_node.crypto import Domain, SignatureScheme
from aitbc_node.errors import CryptoError


def vote_signature_valid(
    scheme: SignatureScheme,
    es: EpochState,
    voter: int,
    round_: int,
    height: int,
    block_id: bytes,
    signature: bytes,
) -> bool:
    """``signature`` is ``voter``'s vote for ``block_id`` in (``es``'s epoch, ``round_``)."""
    if not 0 <= voter < len(es.validators):
        return False
    message = vote_message(es.chain_id, es.epoch, round_, height, block_id)
    key = es.validators.validators[voter].public_key
    return scheme.verify(key, Domain.VOTE, message, signature)


def _group_valid(
    scheme: SignatureScheme,
    es: EpochState,
    domain: bytes,
    message: bytes,
    members: Sequence[tuple[int, bytes]],
) -> bool:
    """One aggregate check of ``members`` (signer, signature), all over ``message``."""
    keys = [es.validators.validators[signer].public_key for signer, _ in members]
    try:
        aggregate = scheme.aggregate([signature for _, signature in members])
    except CryptoError:  # a malformed signature: the caller checks each alone
        return False
    return scheme.fast_aggregate_verify(keys, domain, message, aggregate)


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

    def uncount(self, es: EpochState, signer: int) -> None:
        if signer in self.signers:
            self.signers.discard(signer)
            validator = es.validators.validators[signer]
            self.stake -= validator.stake
            self.authorities -= int(validator.authority)

    def is_quorum(self, es: EpochState) -> bool:
        return es.validators.quorum_from_tally(es.mode, self.authorities, self.stake)

    def is_weak_quorum(self, es: EpochState) -> bool:
        return es.validators.weak_quorum_from_tally(es.mode, self.authorities, self.stake)


class _Checked(_Tally):
    """A tally whose entries (signer -> signature over a per-entry message) are checked
    aggregate first. Subclasses say what each entry signed (``_message``)."""

    __slots__ = ("checked", "suspect")

    def __init__(self) -> None:
        super().__init__()
        #: Signers whose entry has been verified (alone or in a valid aggregate).
        self.checked: set[int] = set()
        #: An aggregate failed here: every newcomer is checked on arrival.
        self.suspect = False

    def _domain(self) -> bytes:
        raise NotImplementedError

    def _message(self, es: EpochState, signer: int) -> bytes:
        raise NotImplementedError

    def _signature(self, signer: int) -> bytes:
        raise NotImplementedError

    def _drop(self, signer: int) -> None:
        raise NotImplementedError

    def _valid(self, scheme: SignatureScheme, es: EpochState, signer: int) -> bool:
        key = es.validators.validators[signer].public_key
        return scheme.verify(
            key, self._domain(), self._message(es, signer), self._signature(signer)
        )

    def _remove(self, es: EpochState, signer: int) -> None:
        self._drop(signer)
        self.checked.discard(signer)
        self.uncount(es, signer)

    def _admit_check(self, scheme: SignatureScheme, es: EpochState, signer: int) -> bool:
        """For a newcomer already stored: on a suspect collector check it now (False: it was
        bad and is gone again)."""
        if not self.suspect:
            return True
        if self._valid(scheme, es, signer):
            self.checked.add(signer)
            return True
        self._remove(es, signer)
        return False

    def _stored_valid(self, scheme: SignatureScheme, es: EpochState, signer: int) -> bool:
        """Whether ``signer``'s stored entry verifies (checked now unless it already was);
        asked when a different entry of the same signer arrives."""
        if signer in self.checked or self._valid(scheme, es, signer):
            self.checked.add(signer)
            return True
        return False

    def settle(self, scheme: SignatureScheme, es: EpochState) -> list[int]:
        """Check every unchecked entry: one aggregate per signed message, each alone only when
        its group's aggregate fails. Returns the signers whose entry was bad (now dropped and
        uncounted)."""
        groups: dict[bytes, list[int]] = {}
        for signer in sorted(self.signers - self.checked):
            groups.setdefault(self._message(es, signer), []).append(signer)
        bad: list[int] = []
        for message, members in groups.items():
            if len(members) > 1 and _group_valid(
                scheme,
                es,
                self._domain(),
                message,
                [(signer, self._signature(signer)) for signer in members],
            ):
                self.checked.update(members)
                continue
            for signer in members:
                if self._valid(scheme, es, signer):
                    self.checked.add(signer)
                else:
                    bad.append(signer)
        for signer in bad:
            self._remove(es, signer)
        if bad:
            self.suspect = True
        return bad


class VoteCollector(_Checked):
    """Votes for one (round, height, block id): the signed tuple, so they aggregate."""

    __slots__ = ("block_id", "epoch", "height", "round", "signatures")

    def __init__(self, epoch: int, round_: int, height: int, block_id: bytes) -> None:
        super().__init__()
        self.epoch = epoch
        self.round = round_
        self.height = height
        self.block_id = block_id
        self.signatures: dict[int, bytes] = {}

    def _domain(self) -> bytes:
        return Domain.VOTE

    def _message(self, es: EpochState, signer: int) -> bytes:
        return vote_message(es.chain_id, self.epoch, self.round, self.height, self.block_id)

    def _signature(self, signer: int) -> bytes:
        return self.signatures[signer]

    def _drop(self, signer: int) -> None:
        self.signatures.pop(signer, None)

    def add(
        self,
        scheme: SignatureScheme,
        es: EpochState,
        voter: int,
        signature: bytes,
        *,
        checked: bool = False,
    ) -> tuple[bool, list[int]]:
        """Take ``voter``'s vote (``checked``: known valid, e.g. the node's own). Returns
        (whether the voter counts now and did not before, voters found to have sent a bad
        signature: one entry per bad signature)."""
        stored = self.signatures.get(voter)
        if stored is not None:
            if stored == signature:
                return False, []
            if self._stored_valid(scheme, es, voter):
                return False, [voter]  # the stored one verifies: the newcomer cannot
            self.signatures[voter] = signature
            if checked or self._valid(scheme, es, voter):
                self.checked.add(voter)
                return False, [voter]  # the stored one was the forgery
            self._remove(es, voter)
            return False, [voter, voter]
        if not self.count(es, voter):
            return False, []
        self.signatures[voter] = signature
        if checked:
            self.checked.add(voter)
        elif not self._admit_check(scheme, es, voter):
            return False, [voter]
        return True, []

    def discard(self, es: EpochState, voter: int, signature: bytes) -> bool:
        """Drop ``voter``'s entry if it is ``signature`` (found bad elsewhere)."""
        if self.signatures.get(voter) != signature:
            return False
        self._remove(es, voter)
        return True

    def certificate(self, scheme: SignatureScheme, es: EpochState) -> QuorumCert:
        """The QC of the votes gathered (call once ``settle`` left a quorum)."""
        ordered = sorted(self.signatures)
        return QuorumCert(
            epoch=self.epoch,
            round=self.round,
            height=self.height,
            block_id=self.block_id,
            signers=bitmap_from(set(ordered), len(es.validators)),
            signature=scheme.aggregate([self.signatures[i] for i in ordered]),
        )


class TimeoutCollector(_Checked):
    """Timeouts for one round, each with the highest-QC round its sender signed."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[int, Timeout] = {}

    def _domain(self) -> bytes:
        return Domain.TIMEOUT

    def _message(self, es: EpochState, signer: int) -> bytes:
        timeout = self.entries[signer]
        claimed = qc_round_in(timeout.epoch, timeout.high_qc)
        return timeout_message(es.chain_id, timeout.epoch, timeout.round, claimed)

    def _signature(self, signer: int) -> bytes:
        return self.entries[signer].signature

    def _drop(self, signer: int) -> None:
        self.entries.pop(signer, None)

    def add(
        self, scheme: SignatureScheme, es: EpochState, timeout: Timeout, *, checked: bool = False
    ) -> tuple[bool, list[int]]:
        """Like ``VoteCollector.add``. A timeout that repeats the stored one (a retransmission)
        costs nothing. A timeout signed over a higher highest-QC round replaces the stored one
        unchecked (settled like any newcomer): an honest node re-signs its timeout whenever its
        round timer fires again, with the highest QC it knows by then, and only the voter can
        send its own timeout (``rules.screen``), so that is no forgery; one over a lower round
        is an overtaken copy and ignored. A different signature over the same round is checked
        against the stored one (BLS signatures are unique: one of them is a forgery)."""
        voter = timeout.voter
        stored = self.entries.get(voter)
        if stored is not None:
            stored_round = qc_round_in(stored.epoch, stored.high_qc)
            new_round = qc_round_in(timeout.epoch, timeout.high_qc)
            if new_round < stored_round or (
                new_round == stored_round and stored.signature == timeout.signature
            ):
                return False, []
            if new_round > stored_round:
                self.entries[voter] = timeout
                self.checked.discard(voter)
                if checked:
                    self.checked.add(voter)
                elif not self._admit_check(scheme, es, voter):
                    return False, [voter]
                return False, []
            if self._stored_valid(scheme, es, voter):
                return False, [voter]
            self.entries[voter] = timeout
            if checked or self._valid(scheme, es, voter):
                self.checked.add(voter)
                return False, [voter]
            self._remove(es, voter)
            return False, [voter, voter]
        if not self.count(es, voter):
            return False, []
        self.entries[voter] = timeout
        if checked:
            self.checked.add(voter)
        elif not self._admit_check(scheme, es, voter):
            return False, [voter]
        return True, []

    def certificate(self, scheme: SignatureScheme, es: EpochState) -> TimeoutCert | None:
        """A TC from the gathered (settled) timeouts: groups by signed highest-QC round,
        highest first, taken until they form a quorum (at most ``MAX_TC_GROUPS``). None when
        they do not (only when more rounds than that are in play)."""
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
