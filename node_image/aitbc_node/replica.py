"""A validator's deterministic state around the consensus core: the batch store, the ledger and
epoch transitions. Pure in-memory work (no I/O, no clock): the runtime and the simulator both
drive a ``Replica`` through its ``ConsensusCore``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from aitbc_node.batch import Batch, VerifiedBatch
from aitbc_node.chain import EpochStats, ParticipationTally, choose_mode, next_epoch_state
from aitbc_node.consensus.leader import next_seed
from aitbc_node.consensus.types import BatchRef, Block, EpochState, QuorumCert
from aitbc_node.consensus.wire import Reader, Writer, read_whole
from aitbc_node.crypto import SignatureScheme
from aitbc_node.errors import DecodeError
from aitbc_node.genesis import Genesis
from aitbc_node.ledger.records import BlockReceipt
from aitbc_node.ledger.state import REGISTRATION_LIMIT_REASONS, LedgerState
from aitbc_node.ledger.tx import Transaction, decode_transaction, tx_id

#: How many committed batch digests are remembered to refuse re-proposal.
COMMITTED_MEMORY = 65_536
#: Uncommitted batches held per author, at most: an author producing faster than blocks
#: include its batches is flooding (an honest one under load has a few dozen in flight).
MAX_PENDING_BATCHES_PER_AUTHOR = 512


class BatchAdmission(Enum):
    """What ``Replica.add_batch`` did with a batch."""

    ADDED = "added"
    KNOWN = "known"
    AUTHOR_FULL = "author_full"


@dataclass(frozen=True)
class CommitRecord:
    """One committed block with what the driver needs to store, count and stream."""

    block: Block
    certifying_qc: QuorumCert
    transactions: tuple[bytes, ...]
    tx_ids: tuple[bytes, ...]
    receipt: BlockReceipt
    state_root: bytes
    #: The author of each transaction's batch (parallel to ``transactions``).
    authors: tuple[int, ...] = ()

    def refused_registrations(self) -> dict[int, int]:
        """Registrations the ledger refused for their size or the registry's (what a
        registration flood runs into), per batch author."""
        author_of = dict(zip(self.tx_ids, self.authors, strict=True))
        refused: dict[int, int] = {}
        for tid, reason in self.receipt.skipped:
            if reason in REGISTRATION_LIMIT_REASONS:
                author = author_of.get(tid, self.block.proposer)
                refused[author] = refused.get(author, 0) + 1
        return refused


@dataclass
class _EpochAccumulator:
    blocks: int = 0
    transactions: int = 0
    first_ms: int | None = None
    last_ms: int = 0
    seed: bytes = b""


class Replica:
    """Implements the core's ``Application`` protocol over a ledger and a batch store."""

    def __init__(
        self,
        ledger: LedgerState,
        epoch: EpochState,
        pinned_mode: str,
        *,
        state_roots: bool = True,
    ) -> None:
        self.ledger = ledger
        self.state_roots = state_roots
        self.pinned_mode = pinned_mode
        self.batches: dict[bytes, Batch] = {}
        self._available: OrderedDict[bytes, BatchRef] = OrderedDict()
        self._per_author: dict[int, int] = {}
        self._committed: OrderedDict[bytes, None] = OrderedDict()
        self._commits: list[CommitRecord] = []
        self._acc = _EpochAccumulator(seed=epoch.seed)
        self._participation = ParticipationTally(epoch)
        self._epoch = epoch
        self.committed_txs = 0

    # ------------------------------------------------------------------ batches

    def add_batch(self, verified: VerifiedBatch) -> BatchAdmission:
        """Store a verified batch, unless it is known, committed, or its author already has
        ``MAX_PENDING_BATCHES_PER_AUTHOR`` uncommitted batches here."""
        batch = verified.batch
        digest = batch.digest
        if digest in self.batches or digest in self._committed:
            return BatchAdmission.KNOWN
        held = self._per_author.get(batch.author, 0)
        if held >= MAX_PENDING_BATCHES_PER_AUTHOR:
            return BatchAdmission.AUTHOR_FULL
        self._per_author[batch.author] = held + 1
        self.batches[digest] = batch
        self._available[digest] = batch.ref
        return BatchAdmission.ADDED

    def has_batch(self, digest: bytes) -> bool:
        return digest in self.batches

    @property
    def pending_txs(self) -> int:
        return sum(ref.tx_count for ref in self._available.values())

    # ------------------------------------------------------------------ Application protocol

    def missing_batches(self, batches: Sequence[BatchRef]) -> list[bytes]:
        return [
            ref.digest
            for ref in batches
            if ref.digest not in self.batches and ref.digest not in self._committed
        ]

    def payload(self, limit: int, exclude: frozenset[bytes]) -> tuple[BatchRef, ...]:
        chosen: list[BatchRef] = []
        for digest, ref in self._available.items():
            if len(chosen) >= limit:
                break
            if digest not in exclude:
                chosen.append(ref)
        return tuple(chosen)

    def commit(self, block: Block, certifying_qc: QuorumCert) -> None:
        raws: list[tuple[bytes, int]] = []
        for ref in block.batches:
            batch = self.batches.pop(ref.digest, None)
            self._available.pop(ref.digest, None)
            self._committed[ref.digest] = None
            if batch is not None:
                self._per_author[batch.author] -= 1
                raws.extend((raw, batch.author) for raw in batch.transactions)
                self.committed_txs += batch.synthetic_count
        while len(self._committed) > COMMITTED_MEMORY:
            self._committed.popitem(last=False)
        txs: list[Transaction] = []
        kept: list[tuple[bytes, int]] = []
        for raw, author in raws:
            try:
                txs.append(decode_transaction(raw))
                kept.append((raw, author))
            except DecodeError:
                continue  # batches are verified on arrival: only verified ones get here
        offenders = [(ev.offender, ev.epoch, ev.round) for ev in block.evidence]
        receipt = self.ledger.apply_block(txs, block.proposer, offenders)
        self.committed_txs += len(kept)
        acc = self._acc
        acc.blocks += 1
        acc.transactions += block.tx_count
        self._participation.record(block)
        if acc.first_ms is None:
            acc.first_ms = block.timestamp_ms
        acc.last_ms = block.timestamp_ms
        if block.randao_reveal:
            acc.seed = next_seed(acc.seed, block.randao_reveal)
        self._commits.append(
            CommitRecord(
                block=block,
                certifying_qc=certifying_qc,
                transactions=tuple(raw for raw, _ in kept),
                tx_ids=tuple(tx_id(raw) for raw, _ in kept),
                authors=tuple(author for _, author in kept),
                receipt=receipt,
                state_root=self.ledger.state_root() if self.state_roots else b"",
            )
        )

    def next_epoch(self, ended: EpochState, end_block: Block, commit_qc: QuorumCert) -> EpochState:
        acc = self._acc
        participation = self._participation.share(end_block.round)
        seconds = ((acc.last_ms - (acc.first_ms or acc.last_ms)) / 1000.0) if acc.blocks else 0.0
        stats = EpochStats(acc.blocks, acc.transactions, seconds, participation)
        mode = choose_mode(self.pinned_mode, ended.mode, stats)
        self.ledger.advance_epoch()
        new = next_epoch_state(
            ended,
            records=self.ledger.validator_records(),
            seed=acc.seed,
            mode=mode,
            end_block=end_block,
            commit_qc=commit_qc,
        )
        self._epoch = new
        self._acc = _EpochAccumulator(seed=new.seed)
        self._participation = ParticipationTally(new)
        return new

    # ------------------------------------------------------------------ persistence

    def snapshot(self) -> bytes:
        """Ledger snapshot plus the epoch's committed statistics and seed mix (what a restarted
        node needs to reach the same next-epoch decision)."""
        acc = self._acc
        w = Writer().raw_large(self.ledger.snapshot())
        w.u64(acc.blocks).u64(acc.transactions)
        self._participation.write(w)
        w.u8(acc.first_ms is not None).u64(acc.first_ms or 0).u64(acc.last_ms).raw(acc.seed)
        w.u64(self.committed_txs)
        return w.getvalue()

    def restore_snapshot(self, raw: bytes, genesis: Genesis, scheme: SignatureScheme) -> None:
        def parse(r: Reader) -> None:
            self.ledger = LedgerState.restore(r.raw_large("replica.ledger"), genesis, scheme)
            acc = _EpochAccumulator()
            acc.blocks = r.u64("replica.blocks")
            acc.transactions = r.u64("replica.transactions")
            self._participation = ParticipationTally.read(self._epoch, r)
            has_first = r.u8("replica.has_first")
            first = r.u64("replica.first_ms")
            acc.first_ms = first if has_first else None
            acc.last_ms = r.u64("replica.last_ms")
            acc.seed = r.raw("replica.seed", limit=64)
            self._acc = acc
            self.committed_txs = r.u64("replica.committed_txs")

        read_whole("ReplicaSnapshot", raw, parse, limit=1 << 40)

    def remember_committed(self, digests: Sequence[bytes]) -> None:
        for digest in digests:
            self._committed[digest] = None

    # ------------------------------------------------------------------ for drivers

    def restarted(self, epoch: EpochState) -> Replica:
        """The replica a crashed node comes back with: committed state (ledger, committed batch
        digests, the epoch's committed statistics and seed mix) kept; uncommitted batches lost."""
        fresh = Replica(self.ledger, epoch, self.pinned_mode, state_roots=self.state_roots)
        fresh._committed = self._committed
        fresh._acc = self._acc
        fresh._participation = self._participation
        fresh.committed_txs = self.committed_txs
        return fresh

    def drain_commits(self) -> list[CommitRecord]:
        commits, self._commits = self._commits, []
        return commits
