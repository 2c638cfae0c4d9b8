"""The simulated byzantine validators: one ``Attacker`` per node (the runtime's own), switched
on and off by the schedule, and the accounting the report carries: attack actions per
behaviour, and what honest nodes refused, per reason and per the sender's behaviour."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aitbc_node.byzantine import Attacker, BehaviourSpec, DriverAction, parse_behaviour
from aitbc_node.byzantine.behaviours import CoreView
from aitbc_node.consensus.actions import Action
from aitbc_node.crypto import Ed25519KeyPair
from aitbc_node.sim.config import ByzantineSpec, SimConfig

#: Label of rejections whose sender ran no behaviour at the time.
HONEST = "honest"


def byzantine_specs(config: SimConfig, equivocators: frozenset[int]) -> list[ByzantineSpec]:
    """The schedule's behaviours, with the legacy ``--equivocators`` as whole-run equivocation."""
    specs = list(config.byzantine)
    if equivocators:
        specs.insert(0, ByzantineSpec(tuple(sorted(equivocators)), "equivocate"))
    return specs


class SimAttacks:
    def __init__(
        self,
        specs: Sequence[ByzantineSpec],
        account_of: Callable[[int], Ed25519KeyPair],
        nonce_of: Callable[[int, bytes], int],
        seed: int,
    ) -> None:
        self.specs = list(specs)
        self.ids = frozenset(i for spec in self.specs for i in spec.ids)

        def nonces(node: int) -> Callable[[bytes], int]:
            return lambda address: nonce_of(node, address)

        self.attackers = {
            i: Attacker(account=account_of(i), nonce_of=nonces(i), seed=seed * 1_000_003 + i)
            for i in sorted(self.ids)
        }
        self._active: dict[int, list[tuple[int, BehaviourSpec]]] = {i: [] for i in self.ids}
        self.actions: dict[str, int] = {}
        self.rejected: dict[str, int] = {}
        self.rejected_by_behaviour: dict[str, dict[str, int]] = {}

    def windows(self) -> list[tuple[float, float | None, int, int]]:
        """(start ms, end ms or None, node, spec position) of every behaviour."""
        return [
            (spec.start_s * 1000, None if spec.end_s is None else spec.end_s * 1000, node, k)
            for k, spec in enumerate(self.specs)
            for node in spec.ids
        ]

    def switch(self, node: int, position: int, on: bool) -> None:
        spec = self.specs[position]
        active = [entry for entry in self._active[node] if entry[0] != position]
        if on:
            parsed = parse_behaviour(spec.behaviour, dict(spec.params))
            active.append((position, parsed))
            active.sort(key=lambda entry: entry[0])
        self._active[node] = active
        self.attackers[node].set_behaviours([entry[1] for entry in active])

    def behaviours_of(self, node: int) -> tuple[str, ...]:
        attacker = self.attackers.get(node)
        return attacker.behaviours if attacker is not None else ()

    def transform(
        self, node: int, view: CoreView, actions: list[Action], now_ms: int
    ) -> list[DriverAction]:
        attacker = self.attackers.get(node)
        if attacker is None or not attacker.behaviours:
            return list(actions)
        out, performed = attacker.transform(view, actions, now_ms)
        for behaviour, n in performed.items():
            self.actions[behaviour] = self.actions.get(behaviour, 0) + n
        return out

    def rejected_from(self, sender: int | None, reason: str, n: int = 1) -> None:
        """An honest node refused ``n`` things from ``sender`` for ``reason``: counted under
        the sender's active behaviours, else (what it sent during a window arrives late) all
        the behaviours it ever runs, else under ``HONEST``."""
        self.rejected[reason] = self.rejected.get(reason, 0) + n
        behaviours: tuple[str, ...] = (HONEST,)
        if sender is not None and sender in self.ids:
            behaviours = self.behaviours_of(sender) or tuple(
                sorted({spec.behaviour for spec in self.specs if sender in spec.ids})
            )
        for behaviour in behaviours:
            per = self.rejected_by_behaviour.setdefault(behaviour, {})
            per[reason] = per.get(reason, 0) + n

    def report(self) -> dict[str, object]:
        return {
            "validators": {
                str(node): sorted({s.behaviour for s in self.specs if node in s.ids})
                for node in sorted(self.ids)
            },
            "actions": dict(sorted(self.actions.items())),
            "rejected": dict(sorted(self.rejected.items())),
            "rejected_by_behaviour": {
                behaviour: dict(sorted(reasons.items()))
                for behaviour, reasons in sorted(self.rejected_by_behaviour.items())
            },
        }
