"""Node faults through the validators' fault API (``PUT/GET/DELETE /admin/faults``): the one
implementation every platform uses, parameterised by how a validator's ops port is reached
(``FaultTransport``: direct HTTP on the local platform, the API server's pod proxy or a
port-forward on Kubernetes).

* ``node_specs``: the node fault specs of a planned fault. A two-sided kind (partition) cuts
  both ways: each validator in the target set S names the rest as ``peers``, each other
  validator names S. A fault with a planned end also expires by itself ``FAULT_BACKSTOP_S``
  after it, so a lost clear never leaves a partition behind.
* ``NodeFaultInjector``: applies a fault to every validator of its specs (in parallel) and
  verifies each is listed by ``GET /admin/faults``; clears it by id and verifies it is gone;
  heals; lists the active faults; re-injects the faults a restarted validator lost (faults
  live in the node's memory).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from orchestrator.errors import FaultNotVerified, PlatformError
from orchestrator.external.http_reply import HttpReply
from orchestrator.faults.kinds import Mechanism, fault_kind
from orchestrator.scenario.plan import PlannedFault

__all__ = [
    "FAULTS_PATH",
    "FAULT_BACKSTOP_S",
    "FaultTransport",
    "NodeFaultInjector",
    "node_specs",
    "parallel",
]

FAULTS_PATH = "/admin/faults"
FAULT_BACKSTOP_S = 30.0
"""A fault with a planned duration is sent with ``duration_s`` = duration + this, so the node
clears it by itself should the orchestrator die (the timeline clears it on time)."""
PARALLEL_REQUESTS = 8
"""Validators asked at once (a 1,000-validator partition is 1,000 requests)."""

_T = TypeVar("_T")
_R = TypeVar("_R")


class FaultTransport(Protocol):
    """How to reach validator ``index``'s ops port. Raises PlatformError when it does not
    answer; any HTTP status is returned."""

    def request(
        self, index: int, method: str, path: str, body: dict[str, Any] | None = None
    ) -> HttpReply: ...


def node_specs(fault: PlannedFault, validators: int) -> list[tuple[int, dict[str, Any]]]:
    """(validator, node fault spec) pairs that apply ``fault`` (see the module docstring)."""
    kind = fault_kind(fault.kind)
    if kind.mechanism is not Mechanism.NODE:
        raise ValueError(f"fault {fault.index} is {fault.kind}, not a node fault")
    inside = sorted(set(fault.ids))
    backstop: dict[str, Any] = {}
    if fault.duration_s is not None:
        backstop["duration_s"] = round(fault.duration_s + FAULT_BACKSTOP_S, 3)
    if kind.two_sided:
        outside = [i for i in range(validators) if i not in inside]
        if not outside or not inside:
            return []
        specs = [(i, {"kind": kind.name, "peers": outside, **backstop}) for i in inside]
        specs += [(i, {"kind": kind.name, "peers": inside, **backstop}) for i in outside]
        return specs
    params = kind.node_params(fault.params)
    return [(i, {"kind": kind.name, **params, **backstop}) for i in inside]


def parallel(action: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """``action`` over ``items``, at most ``PARALLEL_REQUESTS`` at once; results in order;
    the first error is raised."""
    if len(items) <= 1:
        return [action(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(PARALLEL_REQUESTS, len(items))) as pool:
        return list(pool.map(action, items))


@dataclass
class _Applied:
    """One node fault on one validator: the spec sent, the id the node gave it and who held
    it (the process key of the validator then). Mutable: a restarted validator gets the spec
    again under a new id."""

    validator: int
    spec: dict[str, Any]
    fault_id: str | None = None
    holder: Hashable | None = None


def _listed_ids(reply: HttpReply) -> set[str]:
    document = reply.json()
    faults = document.get("faults", []) if isinstance(document, dict) else []
    return {str(item.get("id")) for item in faults if isinstance(item, dict)}


def _error_text(reply: HttpReply) -> str:
    document = reply.json()
    if isinstance(document, dict) and document.get("error"):
        return str(document["error"])
    return reply.body.decode("utf-8", "replace").strip()[:200]


_HINTS = {
    400: "fix the fault spec",
    401: "use the run's admin token",
    403: "use the run's admin token",
    409: "clear some faults first (aitbc-testnet fault heal)",
}


class NodeFaultInjector:
    """The node faults of one testnet of ``validators`` validators.

    ``running(index)``: whether validator ``index`` runs now (a stopped one gets a fault when
    it restarts, through ``reapply``); ``holder(index)``: what identifies its current process
    (a restart changes it: a fault injected before went with the old process).
    """

    def __init__(
        self,
        transport: FaultTransport,
        validators: int,
        *,
        running: Callable[[int], bool] = lambda index: True,
        holder: Callable[[int], Hashable | None] = lambda index: None,
    ) -> None:
        self._transport = transport
        self._validators = validators
        self._running = running
        self._holder = holder
        self._lock = threading.Lock()
        self._applied: dict[int, list[_Applied]] = {}

    # -- apply and clear ---------------------------------------------------------------------

    def inject(self, fault: PlannedFault, expire_after_s: float | None = None) -> None:
        """Apply ``fault`` to the running validators of its specs, verified (a stopped one
        gets it when it restarts). ``expire_after_s`` replaces the backstop: the validators
        clear it by themselves after exactly that long."""
        applied: list[_Applied] = []
        for index, spec in node_specs(fault, self._validators):
            if expire_after_s is not None:
                spec = {**spec, "duration_s": expire_after_s}
            applied.append(_Applied(index, spec))
        with self._lock:
            self._applied[fault.index] = applied
        parallel(self._put, [record for record in applied if self._running(record.validator)])

    def remove(self, fault: PlannedFault) -> None:
        """Clear ``fault`` and verify it is gone. A fault this object did not apply (another
        invocation did) is cleared by kind on the validators of its specs."""
        with self._lock:
            applied = self._applied.pop(fault.index, None)
        if applied is None:
            nodes = sorted({index for index, _ in node_specs(fault, self._validators)})
            parallel(lambda index: self._clear_kind(index, fault.kind), self._up(nodes))
            return
        current = [
            record
            for record in applied
            if record.fault_id is not None
            and self._running(record.validator)
            and record.holder == self._holder(record.validator)
        ]  # a validator restarted since lost the fault with its old process
        parallel(self._delete, current)

    def heal(self, ids: Sequence[int] | None) -> None:
        """Clear every node fault of validators ``ids`` (None or empty: all), verified."""
        targets = list(ids) if ids else list(range(self._validators))
        parallel(self._heal_one, self._up(targets))

    def clear_all(self) -> None:
        """Clear every fault this object applied (teardown; best effort per validator).
        Raises PlatformError listing what could not be cleared."""
        with self._lock:
            pending = list(self._applied.items())
            self._applied.clear()
        errors: list[str] = []
        for fault_index, records in pending:
            for record in records:
                if record.fault_id is None or not self._running(record.validator):
                    continue
                try:
                    self._delete(record)
                except PlatformError as error:
                    errors.append(f"fault {fault_index} on validator {record.validator}: {error}")
        if errors:
            raise PlatformError("some faults could not be cleared:\n- " + "\n- ".join(errors))

    def active_faults(self) -> dict[int, list[dict[str, Any]]]:
        """Validator index -> its active node faults (``GET /admin/faults``); a validator that
        is not running or does not answer is left out."""
        result: dict[int, list[dict[str, Any]]] = {}
        for index in self._up(range(self._validators)):
            try:
                reply = self._transport.request(index, "GET", FAULTS_PATH)
            except PlatformError:
                continue
            document = reply.json()
            if reply.status == 200 and isinstance(document, dict):
                result[index] = [dict(item) for item in document.get("faults", [])]
        return result

    # -- restarts ----------------------------------------------------------------------------

    def pending(self, index: int) -> bool:
        """Whether a fault of this object should be active on validator ``index``."""
        with self._lock:
            return any(r.validator == index for rs in self._applied.values() for r in rs)

    def reapply(self, index: int) -> None:
        """Inject again into validator ``index`` (restarted, its ops port answering) the
        faults of this object still active on it."""
        with self._lock:
            records = [
                (fault_index, record)
                for fault_index, items in self._applied.items()
                for record in items
                if record.validator == index
            ]
        for fault_index, record in records:
            if not self._still_active(fault_index, record):
                continue
            self._put(record)
            if not self._still_active(fault_index, record):  # cleared meanwhile
                self._delete(record)

    # -- one validator -----------------------------------------------------------------------

    def _up(self, indices: Iterable[int]) -> list[int]:
        return [index for index in indices if self._running(index)]

    def _still_active(self, fault_index: int, record: _Applied) -> bool:
        with self._lock:
            return any(item is record for item in self._applied.get(fault_index, ()))

    def _put(self, record: _Applied) -> None:
        index, kind = record.validator, record.spec["kind"]
        reply = self._transport.request(index, "PUT", FAULTS_PATH, record.spec)
        document = reply.json()
        if reply.status != 201 or not isinstance(document, dict) or "id" not in document:
            hint = _HINTS.get(reply.status, "see the validator's log")
            raise PlatformError(
                f"validator {index}: the fault API refused {kind} (HTTP {reply.status}: "
                f"{_error_text(reply)}): {hint}"
            )
        record.fault_id = str(document["id"])
        record.holder = self._holder(index)
        listed = self._transport.request(index, "GET", FAULTS_PATH)
        if record.fault_id not in _listed_ids(listed):
            raise FaultNotVerified(
                f"validator {index}: fault {record.fault_id} ({kind}) was accepted but GET "
                f"{FAULTS_PATH} does not list it"
            )

    def _delete(self, record: _Applied) -> None:
        index, fault_id = record.validator, record.fault_id
        reply = self._transport.request(index, "DELETE", f"{FAULTS_PATH}/{fault_id}")
        if reply.status not in (200, 404):  # 404: the node no longer holds it (expired)
            raise PlatformError(
                f"validator {index}: DELETE {FAULTS_PATH}/{fault_id} answered {reply.status}: "
                f"{_error_text(reply)}"
            )
        if fault_id in _listed_ids(self._transport.request(index, "GET", FAULTS_PATH)):
            raise FaultNotVerified(
                f"validator {index}: fault {fault_id} ({record.spec['kind']}) is still listed "
                "after DELETE"
            )

    def _heal_one(self, index: int) -> None:
        reply = self._transport.request(index, "DELETE", FAULTS_PATH)
        if reply.status != 200:
            raise PlatformError(
                f"validator {index}: heal (DELETE {FAULTS_PATH}) answered {reply.status}: "
                f"{_error_text(reply)}"
            )
        left = _listed_ids(self._transport.request(index, "GET", FAULTS_PATH))
        if left:
            raise FaultNotVerified(
                f"validator {index}: {len(left)} faults still listed after heal (DELETE "
                f"{FAULTS_PATH})"
            )

    def _clear_kind(self, index: int, kind: str) -> None:
        listed = self._transport.request(index, "GET", FAULTS_PATH).json() or {}
        for item in listed.get("faults", []):
            if item.get("kind") == kind:
                self._transport.request(index, "DELETE", f"{FAULTS_PATH}/{item.get('id')}")
        after = self._transport.request(index, "GET", FAULTS_PATH).json() or {}
        if any(item.get("kind") == kind for item in after.get("faults", [])):
            raise FaultNotVerified(f"validator {index}: {kind} faults still listed after DELETE")
