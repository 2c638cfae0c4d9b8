"""From a genesis document to the consensus core's first epoch, and from one epoch to the next.

Everything here is derived from committed data only, so every honest node computes the same
validator set, mode and leader seed for an epoch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from aitbc_node.consensus.leader import select_leader
from aitbc_node.consensus.types import (
    Block,
    ConsensusParams,
    EpochState,
    Mode,
    QuorumCert,
    Validator,
    ValidatorSet,
)
from aitbc_node.consensus.wire import Reader, Writer
from aitbc_node.genesis import Genesis
from aitbc_node.ledger.records import ValidatorRecord

ZERO_ID = bytes(32)

#: ``auto`` mode: an epoch in which authorities kept fewer than this share of the rounds they
#: led moves to SECURE.
AUTO_SECURE_BELOW_PARTICIPATION = 0.75
#: ``auto`` mode: committed load (tx/s) at or above which a healthy epoch moves to FAST.
AUTO_FAST_AT_TPS = 1000.0


def consensus_params(genesis: Genesis) -> ConsensusParams:
    c = genesis.consensus
    return ConsensusParams(
        epoch_length=c.epoch_length,
        checkpoint_interval=c.checkpoint_interval,
        block_interval_ms=c.block_interval_ms,
        base_timeout_ms=c.base_timeout_ms,
    )


def validator_set(records: Sequence[ValidatorRecord]) -> ValidatorSet:
    """Stable indices: a validator that left keeps its slot with no stake and no authority."""
    ordered = sorted(records, key=lambda r: r.index)
    return ValidatorSet(
        tuple(
            Validator(
                index=r.index,
                public_key=r.bls_public_key,
                stake=r.stake if r.active and not r.slashed else 0,
                authority=r.authority and r.active and not r.slashed,
            )
            for r in ordered
        )
    )


def genesis_block(genesis: Genesis) -> tuple[Block, QuorumCert]:
    """The height-0 block every chain starts from, and the certificate that anchors epoch 1."""
    null_qc = QuorumCert(epoch=0, round=0, height=0, block_id=ZERO_ID, signers=b"", signature=b"")
    block = Block(
        epoch=0,
        round=0,
        height=0,
        parent_id=genesis.hash(),
        proposer=0,
        timestamp_ms=int(genesis.genesis_time * 1000),
        batches=(),
        justify=null_qc,
        tc=None,
        evidence=(),
        randao_reveal=b"",
    )
    anchor_qc = QuorumCert(
        epoch=0, round=0, height=0, block_id=block.id, signers=b"", signature=b""
    )
    return block, anchor_qc


def initial_mode(genesis: Genesis) -> Mode:
    mode = genesis.consensus.mode
    return Mode.BALANCED if mode == "auto" else Mode.parse(mode)


def first_epoch(genesis: Genesis, records: Sequence[ValidatorRecord]) -> EpochState:
    block, anchor_qc = genesis_block(genesis)
    return EpochState(
        epoch=1,
        validators=validator_set(records),
        mode=initial_mode(genesis),
        seed=hashlib.sha256(b"AITBC/v1/seed\x00" + genesis.hash()).digest(),
        start_height=1,
        anchor_id=block.id,
        anchor_qc=anchor_qc,
        params=consensus_params(genesis),
        chain_id=genesis.chain_id,
    )


class ParticipationTally:
    """Authority participation of an epoch, from committed blocks only (so every honest node
    computes the same figure): of the rounds whose primary leader is an authority, the share in
    which that authority's own block was committed. Rounds entered after a timeout certificate
    are led by a fallback proposer, so a committed block carrying a TC for the round before
    takes its round out of the count.

    Why not QC signers: a leader aggregates as soon as it holds a quorum, so a QC names about
    two thirds of the authorities however many are alive, and that figure always read as weak
    participation. A missing authority shows instead as rounds it leads that fail."""

    def __init__(self, epoch: EpochState) -> None:
        self.epoch = epoch
        #: Rounds with an authority primary whose own block committed.
        self.kept = 0
        #: Rounds with an authority primary entered by a TC (its fallback led them).
        self.excused = 0

    def _primary(self, round_: int) -> int:
        es = self.epoch
        return select_leader(es.validators, es.mode, es.seed, es.epoch, round_)

    def record(self, block: Block) -> None:
        """A committed block of the epoch."""
        if block.epoch != self.epoch.epoch:
            return
        primary = self._primary(block.round)
        if primary not in self.epoch.validators.authority_set:
            return
        if block.tc is not None and block.tc.round == block.round - 1:
            self.excused += 1
        elif block.proposer == primary:
            self.kept += 1

    def share(self, last_round: int) -> float:
        """The share over rounds 1..``last_round`` (1.0 when no authority led any)."""
        authorities = self.epoch.validators.authority_set
        led = sum(1 for r in range(1, last_round + 1) if self._primary(r) in authorities)
        expected = led - self.excused
        return min(1.0, self.kept / expected) if expected > 0 else 1.0

    def write(self, w: Writer) -> None:
        w.u64(self.kept).u64(self.excused)

    @classmethod
    def read(cls, epoch: EpochState, r: Reader) -> ParticipationTally:
        tally = cls(epoch)
        tally.kept = r.u64("participation.kept")
        tally.excused = r.u64("participation.excused")
        return tally


@dataclass(frozen=True)
class EpochStats:
    """Committed facts about an ending epoch that ``auto`` mode decides from."""

    blocks: int
    transactions: int
    seconds: float
    authority_participation: float

    @property
    def tps(self) -> float:
        return self.transactions / self.seconds if self.seconds > 0 else 0.0


def choose_mode(pinned: str, current: Mode, stats: EpochStats) -> Mode:
    """The next epoch's mode: pinned by genesis, or (``auto``) from committed load and authority
    participation (``ParticipationTally``): weak participation -> SECURE (lean on stake); heavy
    load with healthy participation -> FAST; otherwise BALANCED."""
    if pinned != "auto":
        return Mode.parse(pinned)
    if stats.authority_participation < AUTO_SECURE_BELOW_PARTICIPATION:
        return Mode.SECURE
    if stats.tps >= AUTO_FAST_AT_TPS and stats.authority_participation >= 0.9:
        return Mode.FAST
    return Mode.BALANCED


def next_epoch_state(
    ended: EpochState,
    *,
    records: Sequence[ValidatorRecord],
    seed: bytes,
    mode: Mode,
    end_block: Block,
    commit_qc: QuorumCert,
) -> EpochState:
    return EpochState(
        epoch=ended.epoch + 1,
        validators=validator_set(records),
        mode=mode,
        seed=seed,
        start_height=end_block.height + 1,
        anchor_id=end_block.id,
        anchor_qc=commit_qc,
        params=ended.params,
        chain_id=ended.chain_id,
    )
