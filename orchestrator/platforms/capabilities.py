"""What a platform can do, one Protocol per capability, and ``require`` to ask for one.

A platform is any object with a ``name`` and an ``image_tag()`` (``Platform``); what it can
do is the set of capability Protocols it implements. Implementations subclass the
capabilities they have (so mypy checks every method signature against the Protocol) and the
registry (``platforms/__init__.py``) states the same set for each platform name (a test
checks that both agree). The campaign and every stage ask
for a capability with ``require(platform, Capability, "what for")``: a platform without it is
a ``CapabilityError`` (exit 2) naming the platform, the capability, and what it has. Optional
extras (a pid column in ``status``) test ``isinstance(platform, Capability)``.

Protocols hold methods only (plus ``name`` and ``run_dir``): ``isinstance`` on a
runtime-checkable Protocol with a property would run the property on Python 3.11.

==================  =========================================================================
capability          methods
==================  =========================================================================
Deployer            deploy(plan), wait_ready(timeout_s, on_progress)
Teardown            destroy() -> what was stopped
NodeAccess          endpoints(), client(index) (gRPC + ops of each validator)
ValidatorProcesses  validator_pids() (local processes)
KillRestart         kill(index), restart(index), is_running(index)
NodeFaults          inject(fault), remove(fault), heal(ids), active_faults()
LoadRunner          start_load(plan), stop_load(), load_running(), wait_load(), load_files()
LiveRun             attach(run_dir) (class), plan(), run_dir, genesis_path(), run_record(),
                    close()
PrometheusAccess    prometheus_url()
Artifacts           collect_artifacts(dest)
Simulator           budget_s(plan), run(plan, timeout_s) -> SimRunResult
==================  =========================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar, runtime_checkable

from orchestrator.errors import CapabilityError
from orchestrator.external.node_client import Endpoint, NodeClient
from orchestrator.scenario.plan import Plan, PlannedFault

if TYPE_CHECKING:
    from orchestrator.external.simulator import SimRunResult

__all__ = [
    "CAPABILITIES",
    "LIVE_CAPABILITIES",
    "Artifacts",
    "Deployer",
    "KillRestart",
    "LivePlatform",
    "LiveRun",
    "LoadFiles",
    "LoadRunner",
    "NodeAccess",
    "NodeFaults",
    "Platform",
    "PrometheusAccess",
    "ReadyProgress",
    "RunRecord",
    "Simulator",
    "Stopped",
    "Teardown",
    "ValidatorProcesses",
    "capabilities_of",
    "require",
]

ReadyProgress = Callable[[str, int, int], None]
"""``on_progress(stage, count, max_height)`` while a platform waits until it is ready."""


@dataclass(frozen=True)
class Stopped:
    """One thing ``destroy`` stopped: its name, its pid (None: not a local process) and how
    (``SIGTERM``, ``SIGKILL``, ``already exited``, ``not ours``, ``deleted``)."""

    name: str
    pid: int | None
    how: str


@dataclass(frozen=True)
class RunRecord:
    """What a live run recorded about itself (unix seconds)."""

    run_id: str
    created: float
    stopped_at: float | None
    load_started_at: float | None
    """The start of the last load (None: no load ran)."""
    load_duration_s: float | None


@dataclass(frozen=True)
class LoadFiles:
    """Where a platform's load generator leaves its results."""

    dir: Path
    log: Path | None
    summary: Path | None
    """The load generator's JSON summary (loadgen.summary); None: this platform has none."""
    probe_log: Path | None


@runtime_checkable
class Platform(Protocol):
    """What every platform has: a name (``local``, ``kubernetes``, ``sim``) and the node
    image its validators run (for the report)."""

    name: str

    def image_tag(self) -> str:
        """The node image the validators run (``local`` for this machine's code)."""


@runtime_checkable
class Deployer(Platform, Protocol):
    def deploy(self, plan: Plan) -> None:
        """Create everything the plan needs (genesis, validators, Prometheus). What started is
        recorded first, so ``destroy`` stops it after a failure."""

    def wait_ready(self, timeout_s: float, on_progress: ReadyProgress | None = None) -> None:
        """Return once the testnet is ready; PlatformError after ``timeout_s``."""


@runtime_checkable
class Teardown(Platform, Protocol):
    def destroy(self) -> list[Stopped]:
        """Stop exactly what deploy started (idempotent); keeps the run directory."""


@runtime_checkable
class NodeAccess(Platform, Protocol):
    def endpoints(self) -> list[Endpoint]:
        """One endpoint per validator, by index."""

    def client(self, index: int) -> NodeClient:
        """A client of validator ``index`` (the platform knows how to reach it and closes its
        clients in ``close``/``destroy``)."""


@runtime_checkable
class ValidatorProcesses(Platform, Protocol):
    def validator_pids(self) -> dict[int, int | None]:
        """Validator index -> pid of its running process (None: not running)."""


@runtime_checkable
class KillRestart(Platform, Protocol):
    def kill(self, index: int) -> None:
        """Kill validator ``index`` abruptly (kill -9, pod deletion with grace 0); verified."""

    def restart(self, index: int) -> None:
        """Start validator ``index`` again with its data; verified."""

    def is_running(self, index: int) -> bool:
        """Whether validator ``index`` runs (False after ``kill`` until ``restart``)."""


@runtime_checkable
class NodeFaults(Platform, Protocol):
    def inject(self, fault: PlannedFault, expire_after_s: float | None = None) -> None:
        """Apply a node fault (``faults.kinds`` mechanism NODE) to its validators, verified.
        ``expire_after_s``: the validators clear it by themselves after that long."""

    def remove(self, fault: PlannedFault) -> None:
        """Clear a node fault ``inject`` applied (or another invocation did), verified."""

    def heal(self, ids: Sequence[int] | None) -> None:
        """Clear every node fault of validators ``ids`` (None: all), verified."""

    def active_faults(self) -> dict[int, list[dict[str, Any]]]:
        """Validator index -> its active node faults; unreachable validators left out."""


@runtime_checkable
class LoadRunner(Platform, Protocol):
    def start_load(self, plan: Plan) -> None:
        """Start the load generator with the plan's load section."""

    def stop_load(self) -> None:
        """Stop the load generator, keeping its results (idempotent)."""

    def load_running(self) -> bool:
        """Whether the load generator still runs."""

    def wait_load(self, timeout_s: float) -> bool:
        """Wait until the load generator exits by itself (True) or ``timeout_s`` passes."""

    def load_files(self) -> LoadFiles:
        """Where the load results are."""


@runtime_checkable
class LiveRun(Platform, Protocol):
    """A run that later invocations attach to (``up``, then ``status``, ``load``, ...)."""

    run_dir: Path

    @classmethod
    def attach(cls, run_dir: Path) -> Self:
        """The platform of the run in ``run_dir`` (PlatformError when it holds none)."""

    def plan(self) -> Plan:
        """The plan the run was deployed with."""

    def genesis_path(self) -> Path:
        """The genesis file the validators run."""

    def run_record(self) -> RunRecord:
        """When the run started, stopped and last ran a load."""

    def close(self) -> None:
        """Release connections and clients (the testnet keeps running)."""


@runtime_checkable
class PrometheusAccess(Platform, Protocol):
    def prometheus_url(self) -> str | None:
        """Base URL of the Prometheus scraping this testnet (None: none now)."""


@runtime_checkable
class Artifacts(Platform, Protocol):
    def collect_artifacts(self, dest: Path) -> None:
        """Copy logs, configs and results of the run into ``dest``."""


@runtime_checkable
class Simulator(Platform, Protocol):
    def budget_s(self, plan: Plan) -> float:
        """The default wall-clock budget of simulating ``plan``."""

    def run(self, plan: Plan, timeout_s: float) -> SimRunResult:
        """Run the whole plan in the simulator within ``timeout_s``; its result."""


@runtime_checkable
class LivePlatform(
    Deployer,
    Teardown,
    NodeAccess,
    KillRestart,
    NodeFaults,
    LoadRunner,
    LiveRun,
    PrometheusAccess,
    Artifacts,
    Protocol,
):
    """Everything a platform with live validators has (local processes, pods, containers):
    a campaign and every stage command run on it."""


CAPABILITIES: tuple[type, ...] = (
    Deployer,
    Teardown,
    NodeAccess,
    ValidatorProcesses,
    KillRestart,
    NodeFaults,
    LoadRunner,
    LiveRun,
    PrometheusAccess,
    Artifacts,
    Simulator,
)
"""Every capability, in the order messages list them."""

LIVE_CAPABILITIES: tuple[type, ...] = tuple(c for c in CAPABILITIES if c in LivePlatform.__mro__)
"""The capabilities of ``LivePlatform``."""

_HINTS: dict[type, str] = {
    NodeAccess: "use --platform local or kubernetes (the simulator has no live validators)",
    KillRestart: "use --platform local or kubernetes, or put the fault in the scenario",
    NodeFaults: "use --platform local or kubernetes, or put the fault in the scenario",
    LoadRunner: "use --platform local or kubernetes",
    LiveRun: "start the run with `aitbc-testnet up` on --platform local or kubernetes",
    PrometheusAccess: "use --platform local (or sim for a simulated report)",
    Simulator: "use --platform sim",
}

_C = TypeVar("_C")


def capabilities_of(platform: object) -> list[type]:
    """The capabilities ``platform`` implements, in ``CAPABILITIES`` order."""
    return [capability for capability in CAPABILITIES if isinstance(platform, capability)]


def require(platform: object, capability: type[_C], what: str) -> _C:
    """``platform`` as ``capability``; CapabilityError (exit 2) saying that the platform
    cannot ``what`` without it, what it can do instead and what to use."""
    if isinstance(platform, capability):
        return platform
    name = getattr(platform, "name", type(platform).__name__)
    has_names = ", ".join(c.__name__ for c in capabilities_of(platform)) or "none"
    hint = _HINTS.get(capability, "use another --platform")
    raise CapabilityError(
        f"platform {name} cannot {what}: it has no {capability.__name__} capability (it has "
        f"{has_names}); {hint}"
    )
