"""What the core asks its driver to do. Drivers execute actions in the order given: a
``PersistSafety`` is made durable (fsync) before any later ``Send``/``Broadcast`` leaves the
node."""

from __future__ import annotations

from dataclasses import dataclass

from aitbc_node.consensus.types import Block, EpochState, Evidence, Message, QuorumCert, SafetyState


@dataclass(frozen=True)
class Broadcast:
    message: Message


@dataclass(frozen=True)
class Send:
    to: int
    message: Message


@dataclass(frozen=True)
class PersistSafety:
    state: SafetyState


@dataclass(frozen=True)
class Committed:
    """``block`` is final; ``certifying_qc`` certifies it (store both: sync serves them)."""

    block: Block
    certifying_qc: QuorumCert
    now_ms: int


@dataclass(frozen=True)
class FetchBatches:
    peer: int
    digests: tuple[bytes, ...]


@dataclass(frozen=True)
class RequestSync:
    peer: int
    from_height: int


@dataclass(frozen=True)
class ScheduleTick:
    at_ms: int


@dataclass(frozen=True)
class EpochStarted:
    """A new epoch began. ``end_proof`` are the blocks from the ended epoch's last block (exclusive)
    to the block the commit QC certifies: a syncing node needs them to commit that last block."""

    state: EpochState
    end_proof: tuple[Block, ...]


@dataclass(frozen=True)
class RoundTimedOut:
    epoch: int
    round: int


@dataclass(frozen=True)
class EvidenceFound:
    evidence: Evidence


@dataclass(frozen=True)
class Rejected:
    """A message was dropped; ``reason`` is a short snake_case label for metrics and logs."""

    sender: int
    reason: str


Action = (
    Broadcast
    | Send
    | PersistSafety
    | Committed
    | FetchBatches
    | RequestSync
    | ScheduleTick
    | EpochStarted
    | RoundTimedOut
    | EvidenceFound
    | Rejected
)
