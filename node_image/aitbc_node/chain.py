"""From a genesis document to the consensus core's first epoch, and from one epoch to the next.

Everything here is derived from committed data only, so every honest node computes the same
validator set, mode and leader seed for an epoch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from aitbc_node.consensus.types import (
    Block,
    ConsensusParams,
    EpochState,
    Mode,
    QuorumCert,
    Validator,
    ValidatorSet,
)
from aitbc_node.genesis import Genesis
from aitbc_node.ledger.state import ValidatorRecord

ZERO_ID = bytes(32)

#: ``auto`` mode: an epoch whose QCs carried fewer authorities than this share moves to SECURE.
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
    )


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
    participation: weak participation -> SECURE (lean on stake); heavy load with healthy
    participation -> FAST; otherwise BALANCED."""
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
    )
