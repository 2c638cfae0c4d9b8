"""What a byzantine node asks its driver to do beyond the core's own actions."""

from __future__ import annotations

from dataclasses import dataclass

from aitbc_node.batch import Batch
from aitbc_node.consensus.actions import Action


@dataclass(frozen=True)
class ForgedBatch:
    """Gossip ``batch`` to every peer and serve it on FetchBatches and Sync. The driver does not
    put it into its own replica (the attacker never executes what it forged)."""

    batch: Batch


@dataclass(frozen=True)
class RawMessage:
    """Send ``payload`` as a peer message of ``kind`` to ``to`` (every peer when None), bytes
    as they are: what no encoder would produce (an oversized message)."""

    to: int | None
    kind: int
    payload: bytes


AttackAction = ForgedBatch | RawMessage
#: Everything a driver executes for a node: the core's actions, and a byzantine node's extras.
DriverAction = Action | AttackAction
