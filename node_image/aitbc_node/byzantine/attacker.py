"""A node's byzantine side: the behaviours switched on, applied in order to every action list
its honest core emits, with their memory and counts.

Pure (no I/O, no clock): the driver passes the core, the time and the list, and executes what
comes back. The runtime and the simulator both drive an ``Attacker`` this way, so the simulator
runs exactly the behaviours a real node runs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from aitbc_node.byzantine.actions import DriverAction
from aitbc_node.byzantine.behaviours import IMPLEMENTATIONS, Context, CoreView, Memory
from aitbc_node.byzantine.catalogue import BEHAVIOURS, BehaviourSpec
from aitbc_node.consensus.actions import Action
from aitbc_node.crypto import Ed25519KeyPair


class Attacker:
    def __init__(
        self, *, account: Ed25519KeyPair, nonce_of: Callable[[bytes], int], seed: int
    ) -> None:
        self.account = account
        self.nonce_of = nonce_of
        self.rng = random.Random(seed)
        self.memory = Memory()
        self._specs: tuple[BehaviourSpec, ...] = ()
        #: Attack actions performed per behaviour since the start.
        self.counts: dict[str, int] = dict.fromkeys(BEHAVIOURS, 0)

    def set_behaviours(self, specs: Sequence[BehaviourSpec]) -> None:
        """Switch to ``specs`` (applied in this order; none: honest)."""
        self._specs = tuple(specs)

    @property
    def behaviours(self) -> tuple[str, ...]:
        """The names of the active behaviours."""
        return tuple(spec.name for spec in self._specs)

    def transform(
        self, view: CoreView, actions: Sequence[Action], now_ms: int
    ) -> tuple[list[DriverAction], dict[str, int]]:
        """The actions to execute instead of ``actions``, and the attack actions performed
        per behaviour by this call."""
        out: list[DriverAction] = list(actions)
        if not self._specs:
            return out, {}
        ctx = Context(view, now_ms, self.rng, self.memory, self.account, self.nonce_of)
        performed: dict[str, int] = {}
        for spec in self._specs:
            out, done = IMPLEMENTATIONS[spec.name](ctx, out, spec.params)
            if done:
                performed[spec.name] = performed.get(spec.name, 0) + done
                self.counts[spec.name] += done
        return out, performed
