"""Records of the consensus core: validators, blocks, votes, certificates, evidence, epochs.

All are frozen dataclasses. Each wire record writes its own canonical encoding (``write``, with
the primitives of ``wire``); ``codec`` reads them back. A block's id is the hash of that
encoding, so what is hashed and signed is exactly what travels on the wire.
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cached_property

from aitbc_node.consensus.wire import Writer


class Mode(IntEnum):
    """Quorum mode of an epoch. The value is the ``aitbc_consensus_mode`` gauge value."""

    FAST = 0
    BALANCED = 1
    SECURE = 2

    @classmethod
    def parse(cls, name: str) -> Mode:
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(
                f"unknown consensus mode {name!r}: use fast, balanced or secure"
            ) from None

    @property
    def label(self) -> str:
        return self.name.lower()


#: Block interval targets per mode (ms): FAST 100, BALANCED 500, SECURE 2000.
BLOCK_INTERVAL_MS = {Mode.FAST: 100, Mode.BALANCED: 500, Mode.SECURE: 2000}
#: Finality targets per mode (ms), from the research plan.
FINALITY_TARGET_MS = {Mode.FAST: 200, Mode.BALANCED: 1000, Mode.SECURE: 5000}
#: Base round timeout per mode (ms); doubled per consecutive timeout, at most
#: ``MAX_TIMEOUT_DOUBLINGS`` times.
BASE_TIMEOUT_MS = {Mode.FAST: 400, Mode.BALANCED: 1000, Mode.SECURE: 4000}
MAX_TIMEOUT_DOUBLINGS = 2
#: Consecutive timeouts tolerated at the base duration before backing off (one dead leader
#: costs two: its own round and the round whose votes went to it).
TIMEOUTS_BEFORE_BACKOFF = 2
#: How far (ms) a proposal's timestamp may run ahead of the receiver's clock, and behind it
#: (plus the round's duration) when the receiver votes: above any honest clock skew (a few
#: seconds), far below what would distort the epoch's committed load figure for long.
MAX_CLOCK_DRIFT_MS = 10_000


@dataclass(frozen=True)
class Validator:
    index: int
    public_key: bytes
    stake: int
    authority: bool


@dataclass(frozen=True)
class ValidatorSet:
    """The validators of one epoch, with the hybrid quorum predicates of each mode.

    With A = authorities and S = total stake:
    FAST: >= floor(2|A|/3)+1 authorities. BALANCED: that AND >= floor(2S/3)+1 stake.
    SECURE: >= floor(2S/3)+1 stake AND >= floor(|A|/3)+1 authorities (oversight).
    """

    validators: tuple[Validator, ...]

    def __post_init__(self) -> None:
        for position, validator in enumerate(self.validators):
            if validator.index != position:
                raise ValueError(
                    f"validator set: entry {position} has index {validator.index}; "
                    "indices must be 0..N-1 in order"
                )
        if not any(v.authority for v in self.validators):
            raise ValueError("validator set has no authority: at least one is required")

    def __len__(self) -> int:
        return len(self.validators)

    @cached_property
    def authority_count(self) -> int:
        return sum(1 for v in self.validators if v.authority)

    @cached_property
    def total_stake(self) -> int:
        return sum(v.stake for v in self.validators)

    @cached_property
    def authority_quorum(self) -> int:
        return (2 * self.authority_count) // 3 + 1

    @cached_property
    def stake_quorum(self) -> int:
        return (2 * self.total_stake) // 3 + 1

    @cached_property
    def authority_oversight(self) -> int:
        return self.authority_count // 3 + 1

    @cached_property
    def stake_weak(self) -> int:
        return self.total_stake // 3 + 1

    @cached_property
    def public_keys(self) -> tuple[bytes, ...]:
        return tuple(v.public_key for v in self.validators)

    @cached_property
    def authorities(self) -> tuple[int, ...]:
        return tuple(v.index for v in self.validators if v.authority)

    @cached_property
    def authority_set(self) -> frozenset[int]:
        return frozenset(self.authorities)

    @cached_property
    def stakers(self) -> tuple[int, ...]:
        """Non-authority validators with stake: the 30 % class of BALANCED leader draws."""
        return tuple(v.index for v in self.validators if not v.authority and v.stake > 0)

    @cached_property
    def _stake_prefix(self) -> tuple[list[int], list[int], list[int], list[int]]:
        all_idx, all_cum = [], []
        staker_idx, staker_cum = [], []
        total = 0
        staker_total = 0
        for v in self.validators:
            if v.stake > 0:
                total += v.stake
                all_idx.append(v.index)
                all_cum.append(total)
                if not v.authority:
                    staker_total += v.stake
                    staker_idx.append(v.index)
                    staker_cum.append(staker_total)
        return all_idx, all_cum, staker_idx, staker_cum

    def stake_weighted_pick(self, draw: int, stakers_only: bool) -> int | None:
        """The validator whose stake interval contains ``draw mod total`` (None if no stake)."""
        all_idx, all_cum, staker_idx, staker_cum = self._stake_prefix
        idx, cum = (staker_idx, staker_cum) if stakers_only else (all_idx, all_cum)
        if not cum:
            return None
        point = draw % cum[-1]
        return idx[bisect.bisect_right(cum, point)]

    def tally(self, signers: frozenset[int] | set[int]) -> tuple[int, int]:
        """(authorities, stake) among ``signers``."""
        authorities = 0
        stake = 0
        validators = self.validators
        for i in signers:
            v = validators[i]
            stake += v.stake
            if v.authority:
                authorities += 1
        return authorities, stake

    def is_quorum(self, mode: Mode, signers: frozenset[int] | set[int]) -> bool:
        return self.quorum_from_tally(mode, *self.tally(signers))

    def quorum_from_tally(self, mode: Mode, authorities: int, stake: int) -> bool:
        if mode is Mode.FAST:
            return authorities >= self.authority_quorum
        if mode is Mode.BALANCED:
            return authorities >= self.authority_quorum and stake >= self.stake_quorum
        return stake >= self.stake_quorum and authorities >= self.authority_oversight

    def is_weak_quorum(self, mode: Mode, signers: frozenset[int] | set[int]) -> bool:
        """True when ``signers`` must include an honest validator (more than a third by the
        measure the mode's safety rests on). Used to join timeouts (Bracha-style)."""
        return self.weak_quorum_from_tally(mode, *self.tally(signers))

    def weak_quorum_from_tally(self, mode: Mode, authorities: int, stake: int) -> bool:
        if mode is Mode.SECURE:
            return stake >= self.stake_weak
        return authorities >= self.authority_count // 3 + 1


def bitmap_from(indices: frozenset[int] | set[int], size: int) -> bytes:
    out = bytearray((size + 7) // 8)
    for i in indices:
        out[i >> 3] |= 1 << (i & 7)
    return bytes(out)


def bitmap_indices(bitmap: bytes) -> frozenset[int]:
    found = []
    for byte_pos, byte in enumerate(bitmap):
        if byte:
            for bit in range(8):
                if byte & (1 << bit):
                    found.append(byte_pos * 8 + bit)
    return frozenset(found)


@dataclass(frozen=True)
class BatchRef:
    """A transaction batch referenced by a proposal: digest of the batch encoding and its size."""

    digest: bytes
    tx_count: int
    author: int


@dataclass(frozen=True)
class QuorumCert:
    """Aggregate of votes for ``block_id`` in (epoch, round). ``signers`` is a bitmap."""

    epoch: int
    round: int
    height: int
    block_id: bytes
    signers: bytes
    signature: bytes

    @cached_property
    def signer_set(self) -> frozenset[int]:
        return bitmap_indices(self.signers)

    def write(self, w: Writer) -> None:
        w.u64(self.epoch).u64(self.round).u64(self.height).raw(self.block_id).raw(self.signers)
        w.raw(self.signature)

    def encode(self) -> bytes:
        w = Writer()
        self.write(w)
        return w.getvalue()


@dataclass(frozen=True)
class TimeoutGroup:
    """The timeouts of one TC whose senders claimed the same highest-QC round: each signed
    (chain, epoch, round, ``high_qc_round``), so ``signature`` aggregates one message."""

    high_qc_round: int
    signers: bytes
    signature: bytes

    @cached_property
    def signer_set(self) -> frozenset[int]:
        return bitmap_indices(self.signers)


@dataclass(frozen=True)
class TimeoutCert:
    """Aggregate of timeouts for (epoch, round), grouped by the highest-QC round each sender
    signed (groups in strictly decreasing round order), with the highest QC among them: its
    round must equal the first group's signed round (checked by every receiver)."""

    epoch: int
    round: int
    groups: tuple[TimeoutGroup, ...]
    high_qc: QuorumCert

    @cached_property
    def signer_set(self) -> frozenset[int]:
        out: set[int] = set()
        for group in self.groups:
            out |= group.signer_set
        return frozenset(out)

    @property
    def high_qc_round(self) -> int:
        """The highest QC round any signer signed (0 for an empty, invalid, certificate)."""
        return self.groups[0].high_qc_round if self.groups else 0

    def write(self, w: Writer) -> None:
        w.u64(self.epoch).u64(self.round).u32(len(self.groups))
        for group in self.groups:
            w.u64(group.high_qc_round).raw(group.signers).raw(group.signature)
        self.high_qc.write(w)


@dataclass(frozen=True)
class Evidence:
    """Two signatures by ``offender`` over different block ids for the same (epoch, round):
    verifiable proof of equivocation. ``kind`` is "vote" or "proposal"; each signature covers
    (chain, epoch, round, height, block id), so the heights travel with the ids."""

    kind: str
    epoch: int
    round: int
    offender: int
    height_a: int
    block_a: bytes
    signature_a: bytes
    height_b: int
    block_b: bytes
    signature_b: bytes

    @property
    def key(self) -> tuple[int, int]:
        """(offender, epoch): one offence is punished once per epoch, however many rounds."""
        return (self.offender, self.epoch)

    def write(self, w: Writer) -> None:
        w.text(self.kind).u64(self.epoch).u64(self.round).u32(self.offender)
        w.u64(self.height_a).raw(self.block_a).raw(self.signature_a)
        w.u64(self.height_b).raw(self.block_b).raw(self.signature_b)


@dataclass(frozen=True)
class Block:
    epoch: int
    round: int
    height: int
    parent_id: bytes
    proposer: int
    timestamp_ms: int
    batches: tuple[BatchRef, ...]
    justify: QuorumCert
    tc: TimeoutCert | None
    evidence: tuple[Evidence, ...]
    randao_reveal: bytes

    @cached_property
    def id(self) -> bytes:
        return hashlib.sha256(BLOCK_ID_TAG + self.encode()).digest()

    @property
    def tx_count(self) -> int:
        return sum(b.tx_count for b in self.batches)

    def write(self, w: Writer) -> None:
        w.u64(self.epoch).u64(self.round).u64(self.height).raw(self.parent_id).u32(self.proposer)
        w.u64(self.timestamp_ms)
        w.u32(len(self.batches))
        for ref in self.batches:
            w.raw(ref.digest).u32(ref.tx_count).u32(ref.author)
        self.justify.write(w)
        if self.tc is None:
            w.u8(0)
        else:
            w.u8(1)
            self.tc.write(w)
        w.u32(len(self.evidence))
        for ev in self.evidence:
            ev.write(w)
        w.raw(self.randao_reveal)

    def encode(self) -> bytes:
        w = Writer()
        self.write(w)
        return w.getvalue()


#: Hash prefix of block ids.
BLOCK_ID_TAG = b"AITBC/v1/block\x00"


@dataclass(frozen=True)
class Proposal:
    block: Block
    signature: bytes


@dataclass(frozen=True)
class Vote:
    epoch: int
    round: int
    height: int
    block_id: bytes
    voter: int
    signature: bytes


@dataclass(frozen=True)
class Timeout:
    epoch: int
    round: int
    high_qc: QuorumCert
    voter: int
    signature: bytes


@dataclass(frozen=True)
class TimeoutCertMsg:
    """A timeout certificate forwarded on its own (helps laggards enter the next round)."""

    tc: TimeoutCert


@dataclass(frozen=True)
class QcMsg:
    """A QC announced by the leader that formed it, ahead of its next proposal (which waits for
    the block interval): replicas commit one interval earlier."""

    qc: QuorumCert


@dataclass(frozen=True)
class EvidenceMsg:
    """Evidence of equivocation, broadcast by the node that found it: only the next leader
    sees a double vote, and the evidence must reach whoever leads next, or a lucky offender
    would escape (it is also carried by every proposal until it commits)."""

    evidence: Evidence


Message = Proposal | Vote | Timeout | TimeoutCertMsg | QcMsg | EvidenceMsg


@dataclass(frozen=True)
class SafetyState:
    """What must be durable before a vote, timeout or proposal leaves the node.

    ``last_voted_round``: highest round voted or timed out in (never vote at or below it);
    ``locked_round``: round of the highest QC seen (1-chain lock): never vote for a block whose
    justify is older; ``last_proposed_round``: never propose twice in one round.
    """

    epoch: int
    last_voted_round: int = 0
    locked_round: int = 0
    last_proposed_round: int = 0


@dataclass(frozen=True)
class ConsensusParams:
    epoch_length: int = 100
    checkpoint_interval: int = 50
    block_interval_ms: int | None = None
    base_timeout_ms: int | None = None
    max_batches_per_block: int = 256
    max_evidence_per_block: int = 16

    def block_interval(self, mode: Mode) -> int:
        return (
            self.block_interval_ms
            if self.block_interval_ms is not None
            else (BLOCK_INTERVAL_MS[mode])
        )

    def base_timeout(self, mode: Mode) -> int:
        if self.base_timeout_ms is not None:
            return self.base_timeout_ms
        return max(BASE_TIMEOUT_MS[mode], 2 * self.block_interval(mode))


@dataclass(frozen=True)
class EpochState:
    """Everything the honest nodes agree on for one epoch, derived from committed data only.

    ``anchor`` is the last block of the previous epoch (the genesis block for epoch 1) and
    ``anchor_qc`` the certificate that committed it here; the epoch's first block extends the
    anchor. Nodes may commit the anchor through different QCs (different 2-chains over the
    suffix), so ``anchor_qc`` is the one exception to agreement: the first blocks may carry any
    valid QC of the ended epoch.
    """

    epoch: int
    validators: ValidatorSet
    mode: Mode
    seed: bytes
    start_height: int
    anchor_id: bytes
    anchor_qc: QuorumCert
    params: ConsensusParams = field(default_factory=ConsensusParams)
    #: The chain every signature of the epoch is bound to (``signing.chain_tag``).
    chain_id: str = field(kw_only=True)

    @property
    def end_height(self) -> int:
        """Height of the last block that carries payload in this epoch."""
        return self.start_height + self.params.epoch_length - 1
