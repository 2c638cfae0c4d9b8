"""A validator's deterministic state around the consensus core: the batch store, the ledger and
epoch transitions. Pure in-memory work (no I/O, no clock): the runtime and the simulator both
drive a ``Replica`` through its ``ConsensusCore``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

from aitbc_node.chain import EpochStats, choose_mode, next_epoch_state
from aitbc_node.consensus.codec import Reader, Writer, _guard
from aitbc_node.consensus.leader import next_seed
from aitbc_node.consensus.types import BatchRef, Block, EpochState, QuorumCert
from aitbc_node.crypto import Domain, SignatureScheme
from aitbc_node.errors import DecodeError
from aitbc_node.genesis import Genesis
from aitbc_node.ledger.state import BlockReceipt, LedgerState
from aitbc_node.ledger.tx import Transaction, decode_transaction, tx_id

#: Largest batch accepted from a peer (transactions).
MAX_BATCH_TXS = 4096
#: How many committed batch digests are remembered to refuse re-proposal.
COMMITTED_MEMORY = 65_536


@dataclass(frozen=True)
class Batch:
    """Transactions disseminated by ``author`` ahead of the proposals that reference them.

    The simulator's batches carry no transactions, only ``synthetic_count`` (modelled load)."""

    author: int
    sequence: int
    transactions: tuple[bytes, ...]
    synthetic_count: int = 0
    created_ms: int = 0

    def encode(self) -> bytes:
        w = Writer().u32(self.author).u64(self.sequence).u32(self.synthetic_count)
        w.u64(self.created_ms)
        w.u32(len(self.transactions))
        for raw in self.transactions:
            w.raw(raw)
        return w.getvalue()

    @cached_property
    def digest(self) -> bytes:
        return hashlib.sha256(Domain.BATCH + b"\x00" + self.encode()).digest()

    @property
    def tx_count(self) -> int:
        return len(self.transactions) + self.synthetic_count

    @property
    def ref(self) -> BatchRef:
        return BatchRef(self.digest, self.tx_count, self.author)


def decode_batch(data: bytes) -> Batch:
    def parse(r: Reader) -> Batch:
        author = r.u32("batch.author")
        sequence = r.u64("batch.sequence")
        synthetic = r.u32("batch.synthetic_count")
        created = r.u64("batch.created_ms")
        n = r.u32("batch.transactions")
        if n > MAX_BATCH_TXS:
            raise DecodeError(f"Batch: {n} transactions, at most {MAX_BATCH_TXS}")
        txs = tuple(r.raw("batch.tx", limit=1024) for _ in range(n))
        return Batch(author, sequence, txs, synthetic, created)

    return _guard("Batch", data, parse)


@dataclass(frozen=True)
class CommitRecord:
    """One committed block with what the driver needs to store, count and stream."""

    block: Block
    certifying_qc: QuorumCert
    transactions: tuple[bytes, ...]
    tx_ids: tuple[bytes, ...]
    receipt: BlockReceipt
    state_root: bytes


@dataclass
class _EpochAccumulator:
    blocks: int = 0
    transactions: int = 0
    authority_signatures: int = 0
    first_ms: int | None = None
    last_ms: int = 0
    seed: bytes = b""
    slashed: set[int] = field(default_factory=set)


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
        self._committed: OrderedDict[bytes, None] = OrderedDict()
        self._commits: list[CommitRecord] = []
        self._acc = _EpochAccumulator(seed=epoch.seed)
        self._epoch = epoch
        self.committed_txs = 0

    # ------------------------------------------------------------------ batches

    def add_batch(self, batch: Batch) -> bool:
        """Store a (verified) batch; False when it is known or already committed."""
        digest = batch.digest
        if digest in self.batches or digest in self._committed:
            return False
        self.batches[digest] = batch
        self._available[digest] = batch.ref
        return True

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
        raws: list[bytes] = []
        for ref in block.batches:
            batch = self.batches.pop(ref.digest, None)
            self._available.pop(ref.digest, None)
            self._committed[ref.digest] = None
            if batch is not None:
                raws.extend(batch.transactions)
                self.committed_txs += batch.synthetic_count
        while len(self._committed) > COMMITTED_MEMORY:
            self._committed.popitem(last=False)
        txs: list[Transaction] = []
        kept: list[bytes] = []
        for raw in raws:
            try:
                txs.append(decode_transaction(raw))
                kept.append(raw)
            except DecodeError:
                continue  # batches are checked on arrival; this cannot happen for honest ones
        offenders = [(ev.offender, ev.epoch, ev.round) for ev in block.evidence]
        receipt = self.ledger.apply_block(txs, block.proposer, offenders)
        self.committed_txs += len(kept)
        acc = self._acc
        acc.blocks += 1
        acc.transactions += block.tx_count
        acc.authority_signatures += len(
            certifying_qc.signer_set & self._epoch.validators.authority_set
        )
        if acc.first_ms is None:
            acc.first_ms = block.timestamp_ms
        acc.last_ms = block.timestamp_ms
        if block.randao_reveal:
            acc.seed = next_seed(acc.seed, block.randao_reveal)
        self._commits.append(
            CommitRecord(
                block=block,
                certifying_qc=certifying_qc,
                transactions=tuple(kept),
                tx_ids=tuple(tx_id(raw) for raw in kept),
                receipt=receipt,
                state_root=self.ledger.state_root() if self.state_roots else b"",
            )
        )

    def next_epoch(self, ended: EpochState, end_block: Block, commit_qc: QuorumCert) -> EpochState:
        acc = self._acc
        authorities = max(1, ended.validators.authority_count)
        participation = acc.authority_signatures / (authorities * max(1, acc.blocks))
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
        return new

    # ------------------------------------------------------------------ persistence

    def snapshot(self) -> bytes:
        """Ledger snapshot plus the epoch's committed statistics and seed mix (what a restarted
        node needs to reach the same next-epoch decision)."""
        acc = self._acc
        w = Writer().raw_large(self.ledger.snapshot())
        w.u64(acc.blocks).u64(acc.transactions).u64(acc.authority_signatures)
        w.u8(acc.first_ms is not None).u64(acc.first_ms or 0).u64(acc.last_ms).raw(acc.seed)
        w.u64(self.committed_txs)
        return w.getvalue()

    def restore_snapshot(self, raw: bytes, genesis: Genesis, scheme: SignatureScheme) -> None:
        def parse(r: Reader) -> None:
            self.ledger = LedgerState.restore(r.raw_large("replica.ledger"), genesis, scheme)
            acc = _EpochAccumulator()
            acc.blocks = r.u64("replica.blocks")
            acc.transactions = r.u64("replica.transactions")
            acc.authority_signatures = r.u64("replica.authority_signatures")
            has_first = r.u8("replica.has_first")
            first = r.u64("replica.first_ms")
            acc.first_ms = first if has_first else None
            acc.last_ms = r.u64("replica.last_ms")
            acc.seed = r.raw("replica.seed", limit=64)
            self._acc = acc
            self.committed_txs = r.u64("replica.committed_txs")

        _guard("ReplicaSnapshot", raw, parse, limit=1 << 40)

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
        fresh.committed_txs = self.committed_txs
        return fresh

    def drain_commits(self) -> list[CommitRecord]:
        commits, self._commits = self._commits, []
        return commits
