"""The Platform protocol: what the orchestrator needs from a place that runs a testnet (local
processes, a Kubernetes cluster, the simulator). One implementation per module in this package;
the campaign stages (up, load, fault, collect, down) call only these methods."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from orchestrator.errors import AitbcTestnetError
from orchestrator.plan import Plan, PlannedFault


class PlatformError(AitbcTestnetError):
    """The infrastructure failed or cannot do what was asked (a binary missing, a port taken,
    a cluster unreachable, a platform not implemented). The CLI exits 3."""

    exit_code = 3


@dataclass(frozen=True)
class Endpoint:
    """How to reach validator ``index``: its gRPC address and its operations HTTP address
    (``/metrics``, ``/healthz``, ``/readyz``, ``/admin/faults``), both ``host:port``."""

    index: int
    grpc: str
    ops: str


@runtime_checkable
class Platform(Protocol):
    """A place that runs the testnet of a plan. Methods raise PlatformError on failure."""

    name: str

    def deploy(self, plan: Plan) -> None:
        """Create everything the plan needs (genesis, configs, validators, Prometheus)."""

    def wait_ready(self, timeout_s: float) -> None:
        """Return once every validator is ready; PlatformError after ``timeout_s``."""

    def endpoints(self) -> list[Endpoint]:
        """One endpoint per validator, by index."""

    def kill(self, index: int) -> None:
        """Kill validator ``index`` abruptly (kill -9 / pod delete with grace 0)."""

    def restart(self, index: int) -> None:
        """Start validator ``index`` again with its existing data."""

    def apply_fault(self, fault: PlannedFault) -> None:
        """Inject ``fault`` now (and verify it took effect)."""

    def clear_fault(self, fault: PlannedFault) -> None:
        """Clear ``fault`` now (and verify it is gone)."""

    def prometheus_url(self) -> str | None:
        """Base URL of the Prometheus server scraping this testnet (None: no Prometheus)."""

    def start_load(self, plan: Plan) -> None:
        """Start the load generator with the plan's load section."""

    def stop_load(self) -> None:
        """Stop the load generator (idempotent)."""

    def collect_artifacts(self, dest: Path) -> None:
        """Copy logs, configs and results of the run into ``dest``."""

    def destroy(self) -> None:
        """Stop exactly what deploy started (idempotent); keeps the run directory."""
