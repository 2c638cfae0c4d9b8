"""Leader reputation: who is left out of the leader draw, from the certified chain alone.

DiemBFT-style: a validator that neither signed the QC nor proposed in any of the last
``WINDOW`` blocks of a block's certified ancestry is *absent*, and no block extending that
ancestry is proposed by it (``leader.select_leader`` redraws). A crashed validator, or one cut
off by a partition, then costs the others its rounds' timeouts only until ``WINDOW`` blocks
are certified without it; it leads again once a QC in the window names it.

What it reads: the parent of the block whose proposer is chosen (the block the proposal
extends) and its ancestors, each one's proposer and its ``justify`` signers. That is certified
data, the same for every node that holds the parent, however far it has committed: every honest
node judging a block computes the same leader. Nodes that extend different certified blocks
may compute different leaders, as they may be in different rounds: liveness only, never safety
(the voting rules do not depend on who proposes).

What a byzantine validator can do with it (docs/architecture.md gives the argument):
- leave honest validators out of the QCs it aggregates: only the leader of the round after a
  block forms its QC, so keeping an honest validator absent takes the QCs of all ``WINDOW``
  consecutive blocks (or honest aggregators that also never hear it: then it is absent);
- look present: it can, by voting, as before; reputation never gives it a round it would not
  have led;
- exclude many: at most a set that is not a weak quorum (``is_weak_quorum``) is excluded;
  a larger absent set (a partition of a third or more, the epoch's first blocks) turns
  reputation off, the leader schedule is the plain draw.
"""

from __future__ import annotations

from collections.abc import Callable

from aitbc_node.consensus.types import Block, EpochState

#: Certified blocks looked at (the parent and its ancestors in the epoch).
WINDOW = 8


def absent(
    parent: Block, get: Callable[[bytes], Block | None], es: EpochState
) -> frozenset[int] | None:
    """Validators excluded from leading a block that extends ``parent`` in ``es``: those that
    neither proposed nor signed the ``justify`` of ``parent`` or its ``WINDOW - 1`` ancestors.
    Empty at the epoch's start (fewer than ``WINDOW`` blocks of it) or when the absent set is a
    weak quorum or holds every authority; None when ``get`` lacks an ancestor (a node restarted
    from its committed block cannot tell)."""
    present: set[int] = set()
    cursor: Block | None = parent
    for _ in range(WINDOW):
        if cursor is None:
            return None
        if cursor.epoch != es.epoch or cursor.justify.epoch != es.epoch:
            return frozenset()
        present.add(cursor.proposer)
        present |= cursor.justify.signer_set
        cursor = get(cursor.parent_id)
    missing = frozenset(range(len(es.validators))) - present
    if not missing or es.validators.is_weak_quorum(es.mode, missing):
        return frozenset()
    if es.validators.authority_set <= missing:
        return frozenset()
    return missing
