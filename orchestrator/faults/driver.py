"""Apply and clear one planned fault on a platform, by its kind's mechanism
(``faults.kinds``): node faults through the platform's ``NodeFaults``, kills and restarts
through its ``KillRestart``. The timeline and the ``fault`` stage both go through here, so a
kind is dispatched in one place; ``needed_capabilities`` says what a plan's faults need before
anything is deployed."""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.errors import PlatformError
from orchestrator.faults.kinds import Mechanism, fault_kind
from orchestrator.platforms.capabilities import KillRestart, NodeFaults, require
from orchestrator.scenario.plan import PlannedFault

__all__ = ["apply_fault", "clear_fault", "needed_capabilities"]

_NEEDS: dict[Mechanism, tuple[type, ...]] = {
    Mechanism.NODE: (NodeFaults,),
    Mechanism.HEAL: (NodeFaults,),
    Mechanism.KILL: (KillRestart,),
    Mechanism.RESTART: (KillRestart,),
    Mechanism.CHURN: (KillRestart,),
}


def needed_capabilities(kinds: Iterable[str]) -> list[type]:
    """The capabilities a platform needs for faults of ``kinds`` (in a stable order)."""
    needed: list[type] = []
    for name in kinds:
        for capability in _NEEDS[fault_kind(name).mechanism]:
            if capability not in needed:
                needed.append(capability)
    return needed


def apply_fault(
    platform: object, fault: PlannedFault, *, expire_after_s: float | None = None
) -> None:
    """Inject ``fault`` now, verified. ``expire_after_s`` (node faults): the validators clear
    it by themselves after that long. Raises CapabilityError when the platform cannot apply
    this kind, PlatformError when applying fails."""
    mechanism = fault_kind(fault.kind).mechanism
    what = f"apply fault {fault.index} ({fault.kind})"
    if mechanism is Mechanism.NODE:
        require(platform, NodeFaults, what).inject(fault, expire_after_s)
    elif mechanism is Mechanism.HEAL:
        require(platform, NodeFaults, what).heal(fault.ids or None)
    elif mechanism is Mechanism.KILL:
        processes = require(platform, KillRestart, what)
        for index in fault.ids:
            processes.kill(index)
    elif mechanism is Mechanism.RESTART:
        processes = require(platform, KillRestart, what)
        for index in fault.ids:
            processes.restart(index)
    else:
        raise PlatformError(
            f"fault {fault.index} is {fault.kind}: the fault timeline (orchestrator.faults."
            "timeline) expands it into kills and restarts; apply those instead"
        )


def clear_fault(platform: object, fault: PlannedFault) -> None:
    """Clear ``fault``, verified: node faults removed, killed validators running again.
    Instantaneous kinds (heal, restart) have nothing to clear; churn outages are cleared by
    the timeline one by one."""
    mechanism = fault_kind(fault.kind).mechanism
    what = f"clear fault {fault.index} ({fault.kind})"
    if mechanism is Mechanism.NODE:
        require(platform, NodeFaults, what).remove(fault)
    elif mechanism is Mechanism.KILL:
        processes = require(platform, KillRestart, what)
        for index in fault.ids:
            if not processes.is_running(index):
                processes.restart(index)
