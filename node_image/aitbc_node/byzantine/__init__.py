"""Byzantine behaviours: the attacks a validator can be switched into (fault API ``byzantine``,
node config key ``byzantine:``, simulator ``--byzantine``), as pure transforms of what its
honest core emits. The consensus core itself stays honest.
"""

from aitbc_node.byzantine.actions import AttackAction, DriverAction, ForgedBatch, RawMessage
from aitbc_node.byzantine.attacker import Attacker
from aitbc_node.byzantine.catalogue import (
    BEHAVIOURS,
    CATALOGUE,
    BehaviourError,
    BehaviourSpec,
    parse_behaviour,
)

__all__ = [
    "BEHAVIOURS",
    "CATALOGUE",
    "AttackAction",
    "Attacker",
    "BehaviourError",
    "BehaviourSpec",
    "DriverAction",
    "ForgedBatch",
    "RawMessage",
    "parse_behaviour",
]
