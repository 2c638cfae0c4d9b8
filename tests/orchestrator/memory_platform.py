"""An in-memory platform for the tests of the campaign, the stages and the fault timeline: a
real implementation of the live capability Protocols whose "testnet" is a few dictionaries.
Every call is written to ``journal`` (call, argument); chosen calls fail (``fail``: raise
PlatformError) and ``interrupt`` is a condition on the platform that makes ``load_running``
raise KeyboardInterrupt (a Ctrl-C landing in the main thread), so tests depend on what
happened, never on timing. (A uniquely named module: the tests folders are not packages.)"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import PlatformError
from orchestrator.external.node_client import Endpoint
from orchestrator.platforms.capabilities import (
    Artifacts,
    Deployer,
    KillRestart,
    LoadFiles,
    LoadRunner,
    NodeAccess,
    NodeFaults,
    PrometheusAccess,
    ReadyProgress,
    Stopped,
    Teardown,
)
from orchestrator.scenario.plan import Plan, PlannedFault

DEAD_PROMETHEUS = "http://127.0.0.1:9"
"""A URL nothing answers (the discard port): queries fail at once, as on a dead server."""


@dataclass(frozen=True)
class _Status:
    height: int


@dataclass
class MemoryValidator:
    """The chain reader of one in-memory validator (``safety.ChainReader``)."""

    index: int
    height: int = 1
    journal: list[tuple[str, Any]] = field(default_factory=list)

    def status(self) -> _Status:
        self.height += 1
        return _Status(self.height)

    def committed_hashes(self, first: int, last: int) -> list[bytes]:
        return [bytes([h % 256]) * 32 for h in range(first, min(last, self.height) + 1)]

    def blocks(self, first: int, last: int) -> list[Any]:
        return []

    def close(self) -> None:
        self.journal.append(("close client", self.index))


class MemoryPlatform(
    Deployer,
    Teardown,
    NodeAccess,
    KillRestart,
    NodeFaults,
    LoadRunner,
    PrometheusAccess,
    Artifacts,
):
    name = "memory"

    def __init__(
        self,
        validators: int = 4,
        *,
        fail: set[tuple[str, Any]] | None = None,
        interrupt: Callable[[MemoryPlatform], bool] | None = None,
        load_exits_when: Callable[[MemoryPlatform], bool] | None = None,
        prometheus: str | None = DEAD_PROMETHEUS,
    ) -> None:
        self.validators = validators
        self.fail = fail or set()
        self.interrupt = interrupt
        self.load_exits_when = load_exits_when
        self.prometheus = prometheus
        self.journal: list[tuple[str, Any]] = []
        self.active: dict[int, PlannedFault] = {}
        self.killed: set[int] = set()
        self.load_on = False
        self.deployed = False
        self._lock = threading.Lock()
        self._clients = {i: MemoryValidator(i, journal=self.journal) for i in range(validators)}

    def _call(self, call: str, argument: Any = None) -> None:
        with self._lock:
            self.journal.append((call, argument))
        if (call, argument) in self.fail:
            raise PlatformError(f"{call} {argument} failed on purpose")

    def calls(self, *names: str) -> list[tuple[str, Any]]:
        """The journal, only the calls named (all without names)."""
        with self._lock:
            return [entry for entry in self.journal if not names or entry[0] in names]

    def image_tag(self) -> str:
        return "memory"

    # Deployer, Teardown
    def deploy(self, plan: Plan) -> None:
        self._call("deploy", plan.run_id)
        self.deployed = True

    def wait_ready(self, timeout_s: float, on_progress: ReadyProgress | None = None) -> None:
        self._call("wait_ready")
        if on_progress is not None:
            on_progress("ready", self.validators, 1)

    def destroy(self) -> list[Stopped]:
        self._call("destroy")
        was = self.deployed
        self.deployed = False
        return [Stopped("memory testnet", None, "deleted")] if was else []

    # NodeAccess, KillRestart
    def endpoints(self) -> list[Endpoint]:
        return [Endpoint(i, f"mem:{i}", f"mem-ops:{i}") for i in range(self.validators)]

    def client(self, index: int) -> Any:
        return self._clients[index]

    def kill(self, index: int) -> None:
        self._call("kill", index)
        self.killed.add(index)

    def restart(self, index: int) -> None:
        self._call("restart", index)
        self.killed.discard(index)

    def is_running(self, index: int) -> bool:
        return index not in self.killed

    # NodeFaults
    def inject(self, fault: PlannedFault, expire_after_s: float | None = None) -> None:
        self._call("inject", fault.index)
        with self._lock:
            self.active[fault.index] = fault

    def remove(self, fault: PlannedFault) -> None:
        self._call("remove", fault.index)
        with self._lock:
            self.active.pop(fault.index, None)

    def heal(self, ids: Sequence[int] | None) -> None:
        self._call("heal", None if ids is None else tuple(ids))
        with self._lock:
            self.active.clear()

    def active_faults(self) -> dict[int, list[dict[str, Any]]]:
        with self._lock:
            faults = list(self.active.values())
        result: dict[int, list[dict[str, Any]]] = {}
        for fault in faults:
            for index in fault.ids:
                result.setdefault(index, []).append({"id": str(fault.index), "kind": fault.kind})
        return result

    # LoadRunner
    def start_load(self, plan: Plan) -> None:
        self._call("start_load", plan.load.tps)
        self.load_on = True

    def load_running(self) -> bool:
        if self.interrupt is not None and self.interrupt(self):
            self.journal.append(("ctrl-c", None))
            raise KeyboardInterrupt
        if self.load_exits_when is not None and self.load_exits_when(self):
            self.load_on = False
        return self.load_on

    def wait_load(self, timeout_s: float) -> bool:
        return not self.load_on

    def stop_load(self) -> None:
        self._call("stop_load")
        self.load_on = False

    def load_files(self) -> LoadFiles:
        return LoadFiles(dir=Path("/nonexistent"), log=None, summary=None, probe_log=None)

    # PrometheusAccess, Artifacts
    def prometheus_url(self) -> str | None:
        return self.prometheus

    def collect_artifacts(self, dest: Path) -> None:
        self._call("collect_artifacts")
