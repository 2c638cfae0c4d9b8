"""The block tree of one epoch: blocks above the committed one, the QC seen for each, the
committed pointer, and the walks the core needs (ancestry, the chain a commit executes)."""

from __future__ import annotations

from aitbc_node.consensus.reputation import WINDOW
from aitbc_node.consensus.types import Block, QuorumCert

#: Blocks kept before the tree is pruned (down to a few below the committed height).
PRUNE_AT = 256
#: Committed blocks kept below the committed height when pruning (the leader reputation reads
#: ``WINDOW`` blocks down from a proposal's parent).
KEEP_BELOW_COMMITTED = WINDOW + 8


class BlockTree:
    def __init__(self, root: Block, root_qc: QuorumCert) -> None:
        self.blocks: dict[bytes, Block] = {root.id: root}
        self.certified: dict[bytes, QuorumCert] = {root.id: root_qc}
        self.committed = root

    @property
    def committed_height(self) -> int:
        return self.committed.height

    def get(self, block_id: bytes) -> Block | None:
        return self.blocks.get(block_id)

    def __contains__(self, block_id: bytes) -> bool:
        return block_id in self.blocks

    def add(self, block: Block) -> None:
        self.blocks[block.id] = block

    def certify(self, qc: QuorumCert) -> None:
        """Remember a (verified) QC for its block; every QC of a block is as good as another."""
        self.certified.setdefault(qc.block_id, qc)

    def path_down(self, top: Block | None, stop: bytes | None = None) -> list[Block]:
        """``top`` and its ancestors above the committed height (or up to ``stop``, exclusive),
        lowest first; stops early at a block that is not in the tree."""
        chain: list[Block] = []
        cursor = top
        while cursor is not None and cursor.height > self.committed.height and cursor.id != stop:
            chain.append(cursor)
            cursor = self.blocks.get(cursor.parent_id)
        chain.reverse()
        return chain

    def uncommitted_chain(self, high_qc: QuorumCert) -> list[Block]:
        """The blocks from just above the committed one to ``high_qc``'s block, each certified
        (by its child's justify, the last by ``high_qc``)."""
        return self.path_down(self.blocks.get(high_qc.block_id))

    def chain_to_commit(self, b0: Block) -> list[Block] | None:
        """The blocks a commit of ``b0`` executes (lowest first), or None when ``b0`` does not
        extend the committed block (impossible with fewer than a third faulty)."""
        chain = self.path_down(b0)
        if not chain:
            return None
        parent = self.blocks.get(chain[0].parent_id)
        if parent is None or parent.id != self.committed.id:
            return None
        return chain

    def ancestor_digests(self, block: Block) -> frozenset[bytes]:
        """Batch digests on ``block`` and its uncommitted ancestors (never proposed twice)."""
        return frozenset(ref.digest for b in self.path_down(block) for ref in b.batches)

    def mark_committed(self, block: Block) -> None:
        self.committed = block
        if len(self.blocks) < PRUNE_AT:
            return
        keep = block.height - KEEP_BELOW_COMMITTED
        self.blocks = {k: b for k, b in self.blocks.items() if b.height >= keep or k == block.id}
        self.certified = {k: q for k, q in self.certified.items() if k in self.blocks}

    def restart_at(self, anchor: Block, anchor_qc: QuorumCert) -> None:
        """A new epoch: only its anchor (the ended epoch's last block) remains."""
        self.blocks = {anchor.id: anchor}
        self.certified = {anchor.id: anchor_qc}
