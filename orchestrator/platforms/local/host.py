"""A testnet run from this host: a real Prometheus server and a real Locust as processes of
this machine, started by pid from one run directory, and validators reachable on this host's
ports, started by a ``ValidatorRunner`` (``runner.py``): processes on the local platform
(``platform.py``), containers of the node image on the docker platform (``platforms/docker``).

Run directory ``<run-root>/<run-id>/``::

    net/          genesis.json, node-<i>.yaml, network.json, admin-token, data/node-<i>/
    logs/         node-<i>.log, prometheus.log, locust.log
    prometheus/   prometheus.yml, targets/{validators,loadgen}.json, data/ (TSDB)
    load/         locust_*.csv, locust.json, summary.json, probe.jsonl
    state.json    what runs: pids with their start times, ports, Prometheus URL, the plan

Each concern is its own module of this package: ``state.py`` (state.json under a file lock),
``processes.py`` (starting and stopping by pid), ``network.py`` (network files, ports, the
validator's command line), ``prometheus.py`` (the run's Prometheus), ``readiness.py`` (when
the run is ready), ``load.py`` (Locust), ``runner.py`` (the validators).
``HostPlatform`` puts them together behind the capability Protocols; a subclass names the
platform and gives the runner. ``attach(dir)`` reads a run back, so each CLI stage works from
its own invocation.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import threading
import time
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

from orchestrator.errors import AitbcTestnetError, FaultNotVerified, PlatformError
from orchestrator.external.http_reply import HttpReply
from orchestrator.external.node_client import Endpoint, NodeClient, NodeUnreachable
from orchestrator.external.prometheus_server import PrometheusLayout, find_prometheus
from orchestrator.faults.node_faults import NodeFaultInjector
from orchestrator.platforms.capabilities import (
    LivePlatform,
    LoadFiles,
    ReadyProgress,
    RunRecord,
    Stopped,
)
from orchestrator.platforms.local.load import LocalLoad
from orchestrator.platforms.local.network import extra_ports, free_extra_ports, write_network
from orchestrator.platforms.local.processes import ProcessSupervisor
from orchestrator.platforms.local.prometheus import prepare_prometheus
from orchestrator.platforms.local.readiness import wait_until_ready
from orchestrator.platforms.local.runner import ValidatorRunner
from orchestrator.platforms.local.state import (
    LoadRecord,
    PrometheusRecord,
    RunState,
    RunStateFile,
    StartedProcess,
    ValidatorRecord,
    all_processes,
    refuse_if_stopped,
)
from orchestrator.platforms.run_dirs import STATE_FILE
from orchestrator.scenario.model import Scenario
from orchestrator.scenario.plan import Plan, PlannedFault, resolve_plan

__all__ = ["HostPlatform"]

REAPPLY_WAIT_S = 60.0
"""Seconds a restarted validator's ops port may take to answer before its faults return."""
POLL_S = 0.1


class _DirectOps:
    """The node fault API of a validator on this host: straight to its ops port."""

    def __init__(self, platform: HostPlatform) -> None:
        self._platform = platform

    def request(
        self, index: int, method: str, path: str, body: dict[str, Any] | None = None
    ) -> HttpReply:
        return self._platform.client(index).ops_request(method, path, body)


class HostPlatform(LivePlatform):
    """Prometheus and Locust as processes of one run directory on this host, the validators
    through the subclass's ``ValidatorRunner`` (``_make_runner``)."""

    name: str

    def __init__(
        self,
        run_dir: Path,
        *,
        base_port: int | None = None,
        host: str = "127.0.0.1",
        python: str = sys.executable,
        node_timeout_s: float = 5.0,
    ) -> None:
        self.run_dir = Path(run_dir).absolute()
        self.base_port = base_port
        self.host = host
        self.python = python
        self.node_timeout_s = node_timeout_s
        self._state_file = RunStateFile(self.run_dir)
        self._processes = ProcessSupervisor()
        self._plan: Plan | None = None
        self._lock = threading.RLock()
        self._clients: dict[int, NodeClient] = {}
        self._faults: NodeFaultInjector | None = None
        self._load = LocalLoad(self._state_file, self._processes, python, self.load_dir)
        self._validators = self._make_runner()
        #: Faults that could not be injected again into a restarted validator (background).
        self.reapply_errors: list[str] = []

    @abstractmethod
    def _make_runner(self) -> ValidatorRunner:
        """The runner of this platform's validators (called once, by ``__init__``)."""

    # -- files and state ---------------------------------------------------------------------
    @property
    def net_dir(self) -> Path:
        return self.run_dir / "net"

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def load_dir(self) -> Path:
        return self.run_dir / "load"

    @property
    def prometheus_dir(self) -> Path:
        return self.run_dir / "prometheus"

    @property
    def state(self) -> RunState:
        """The run's state (PlatformError before deploy/attach)."""
        return self._state_file.state

    def refresh(self) -> RunState:
        """Re-read state.json (what other invocations changed since)."""
        return self._state_file.update(lambda state: None)

    def plan(self) -> Plan:
        """The plan this run was deployed with (re-resolved from state.json after attach)."""
        if self._plan is None:
            scenario = Scenario.model_validate(self.state.scenario)
            self._plan = resolve_plan(scenario, platform=self.name, run_id=self.state.run_id)
        return self._plan

    @classmethod
    def attach(cls, run_dir: Path) -> Self:
        """The platform of an existing run (from its state.json). Raises PlatformError when
        ``run_dir`` holds no run of this platform."""
        platform = cls(Path(run_dir))
        state = platform._state_file.read()
        if state.platform != platform.name:
            raise PlatformError(f"{run_dir} is a {state.platform} run, not a {platform.name} one")
        return platform

    def run_record(self) -> RunRecord:
        state = self.state
        return RunRecord(
            run_id=state.run_id,
            created=state.created,
            stopped_at=state.stopped_at,
            load_started_at=state.load.started_at,
            load_duration_s=state.load.duration_s,
        )

    # -- deploy ------------------------------------------------------------------------------
    def deploy(self, plan: Plan) -> None:
        """Genesis and configs, then Prometheus (its own process group) and every validator.
        Raises PlatformError (a port taken, the prometheus binary missing, the run directory
        already used, the validators' runner not ready) before anything starts; what started
        is recorded in state.json at once, so ``destroy`` stops it."""
        if self._state_file.path.exists():
            raise PlatformError(
                f"run directory {self.run_dir} is already used by a run: choose another "
                "--run-id, or stop that run first (aitbc-testnet down --run-id "
                f"{self.run_dir.name})"
            )
        binary = find_prometheus()
        ports = extra_ports(self.host, self.base_port, plan.network.validators)
        self._validators.preflight(plan)
        for folder in (self.net_dir, self.logs_dir, self.load_dir, self.prometheus_dir):
            folder.mkdir(parents=True, exist_ok=True)
        testnet = write_network(self.net_dir, plan, host=self.host, base_port=self.base_port)
        prometheus_port, loadgen_port = ports or free_extra_ports(self.host, testnet)
        listen = f"{self.host}:{prometheus_port}"
        self._plan = plan
        self._state_file.create(
            RunState(
                platform=self.name,
                run_id=plan.run_id,
                created=time.time(),
                host=self.host,
                net_dir=str(self.net_dir),
                genesis=str(testnet.genesis_path),
                chain_id=testnet.genesis.chain_id,
                admin_token_file=str(testnet.admin_token_path),
                validators=[
                    ValidatorRecord(
                        index=node.index,
                        grpc=node.grpc,
                        ops=node.ops,
                        config=str(node.config),
                        data_dir=str(node.data_dir),
                        log=str(self.logs_dir / f"node-{node.index}.log"),
                    )
                    for node in testnet.nodes
                ],
                prometheus=PrometheusRecord(
                    url=f"http://{listen}",
                    listen=listen,
                    dir=str(self.prometheus_dir),
                    log=str(self.logs_dir / "prometheus.log"),
                ),
                load=LoadRecord(
                    dir=str(self.load_dir),
                    log=str(self.logs_dir / "locust.log"),
                    metrics_port=loadgen_port,
                    csv_prefix=str(self.load_dir / "locust"),
                    stats_json=str(self.load_dir / "locust.json"),
                    summary=str(self.load_dir / "summary.json"),
                    probe_log=str(self.load_dir / "probe.jsonl"),
                ),
                scenario=dict(plan.scenario),
                plan=plan.to_dict(),
            )
        )
        self._validators.prepare(testnet)
        argv = prepare_prometheus(
            self.prometheus_dir,
            run_id=plan.run_id,
            validators=[(v.index, v.ops) for v in self.state.validators],
            loadgen=f"{self.host}:{loadgen_port}",
            listen=listen,
            binary=binary,
        )
        # Prometheus first: its service discovery hands targets to the scrapers only every
        # few seconds, which then overlaps with the validators' start.
        process = self._processes.spawn(
            argv, Path(self.state.prometheus.log), cwd=self.prometheus_dir, env=None
        )

        def started(state: RunState) -> None:
            state.prometheus.process = process
            state.history.append(StartedProcess(name="prometheus", process=process))

        self._state_file.update(started)
        self._validators.start_all([validator.index for validator in self.state.validators])

    # -- readiness ---------------------------------------------------------------------------
    def wait_ready(self, timeout_s: float, on_progress: ReadyProgress | None = None) -> None:
        """See ``readiness.wait_until_ready``."""
        wait_until_ready(
            self.state,
            client_of=self.client,
            validators=self._validators,
            processes=self._processes,
            logs_dir=self.logs_dir,
            prometheus_dir=self.prometheus_dir,
            timeout_s=timeout_s,
            on_progress=on_progress,
        )

    # -- reaching the validators ----------------------------------------------------------------
    def endpoints(self) -> list[Endpoint]:
        return [Endpoint(v.index, v.grpc, v.ops) for v in self.state.validators]

    def client(self, index: int) -> NodeClient:
        """A (cached) NodeClient of validator ``index``."""
        with self._lock:
            client = self._clients.get(index)
            if client is None:
                validator = self._validator(index)
                endpoint = Endpoint(validator.index, validator.grpc, validator.ops)
                client = NodeClient(endpoint, self.admin_token(), self.node_timeout_s)
                self._clients[index] = client
            return client

    def admin_token(self) -> str:
        """The fault API's bearer token of this run (net/admin-token)."""
        path = Path(self.state.admin_token_file)
        try:
            return path.read_text().strip()
        except OSError as error:
            raise PlatformError(f"cannot read the admin token {path}: {error.strerror}") from None

    def _validator(self, index: int) -> ValidatorRecord:
        validators = self.state.validators
        if not 0 <= index < len(validators) or validators[index].index != index:
            raise PlatformError(
                f"validator {index} does not exist in run {self.state.run_id}: it has "
                f"validators 0..{len(validators) - 1}"
            )
        return validators[index]

    def prometheus_url(self) -> str | None:
        return self.state.prometheus.url

    def genesis_path(self) -> Path:
        return Path(self.state.genesis)

    # -- kill / restart ----------------------------------------------------------------------
    def is_running(self, index: int) -> bool:
        self._validator(index)
        return self._validators.running(index)

    def kill(self, index: int) -> None:
        """Kill validator ``index`` at once (SIGKILL); verified: it is gone. A validator that
        is not running is left as it is."""
        self._validator(index)
        self._validators.kill(index)

    def restart(self, index: int) -> None:
        """Start validator ``index`` again with its config and data (a running one is stopped
        with SIGTERM first). Verified: it runs again. Its node faults come back once its ops
        port answers (in the background: a restart never holds up the timeline)."""
        refuse_if_stopped(self.state, f"restart validator {index}")
        if self.is_running(index):
            self._validators.stop(index)
        self._validators.start(index, restart=True)
        time.sleep(POLL_S)
        if not self._validators.running(index):
            raise FaultNotVerified(
                f"validator {index} exited right after its restart: "
                f"{self._validators.describe(index)}"
            )
        if self._faults is not None and self._faults.pending(index):
            threading.Thread(
                target=self._reapply_quietly, args=(index,), name=f"reapply-{index}", daemon=True
            ).start()

    # -- node faults -------------------------------------------------------------------------
    def _node_faults(self) -> NodeFaultInjector:
        with self._lock:
            if self._faults is None:
                self._faults = NodeFaultInjector(
                    _DirectOps(self),
                    len(self.state.validators),
                    running=self.is_running,
                    holder=self._validators.holder,
                )
            return self._faults

    def inject(self, fault: PlannedFault, expire_after_s: float | None = None) -> None:
        """Node faults with a planned duration are sent with ``duration_s`` = duration + 30 s
        (a backstop should the orchestrator die); ``expire_after_s`` instead makes the nodes
        clear them by themselves after exactly that long (``fault --detach --duration``)."""
        self._node_faults().inject(fault, expire_after_s)

    def remove(self, fault: PlannedFault) -> None:
        self._node_faults().remove(fault)

    def heal(self, ids: Sequence[int] | None) -> None:
        self._node_faults().heal(ids)

    def active_faults(self) -> dict[int, list[dict[str, Any]]]:
        return self._node_faults().active_faults()

    def _reapply_quietly(self, index: int) -> None:
        try:
            self._reapply(index)
        except AitbcTestnetError as error:
            self.reapply_errors.append(str(error))

    def _reapply(self, index: int) -> None:
        deadline = time.monotonic() + REAPPLY_WAIT_S
        while True:
            try:
                self.client(index).ready()
                break
            except NodeUnreachable:
                if time.monotonic() >= deadline or not self.is_running(index):
                    raise FaultNotVerified(
                        f"validator {index} restarted but its ops port did not answer within "
                        f"{REAPPLY_WAIT_S:g}s, so its active faults were not injected again: "
                        f"{self._validators.describe(index)}"
                    ) from None
                time.sleep(POLL_S)
        self._node_faults().reapply(index)

    # -- load --------------------------------------------------------------------------------
    def start_load(self, plan: Plan) -> None:
        """Start Locust headless with the plan's load section (``load.py``)."""
        self._load.start(plan)

    def load_running(self) -> bool:
        return self._load.running()

    def wait_load(self, timeout_s: float) -> bool:
        return self._load.wait(timeout_s)

    def stop_load(self) -> None:
        self._load.stop()

    def load_files(self) -> LoadFiles:
        return self._load.files()

    # -- artifacts and teardown --------------------------------------------------------------
    def collect_artifacts(self, dest: Path) -> None:
        """Copy logs, load results, configs, genesis, Prometheus config and state.json into
        ``dest`` (not the chain data, the TSDB or the admin token)."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        for folder in (self.logs_dir, self.load_dir):
            if folder.is_dir():
                shutil.copytree(folder, dest / folder.name, dirs_exist_ok=True)
        if self._state_file.loaded:
            self._validators.append_live_logs(dest / self.logs_dir.name)
        net = dest / "net"
        net.mkdir(exist_ok=True)
        for path in self.net_dir.glob("*"):
            if path.is_file() and path.name != "admin-token":
                shutil.copy2(path, net / path.name)
        layout = PrometheusLayout(self.prometheus_dir)
        if layout.config.exists():
            prom = dest / "prometheus"
            prom.mkdir(exist_ok=True)
            shutil.copy2(layout.config, prom / layout.config.name)
            if layout.targets_dir.is_dir():
                shutil.copytree(layout.targets_dir, prom / "targets", dirs_exist_ok=True)
        if self._state_file.path.exists():
            shutil.copy2(self._state_file.path, dest / STATE_FILE)

    def destroy(self) -> list[Stopped]:
        """Stop exactly what this run started (idempotent); keeps the run directory. Nothing
        when this object neither deployed nor attached a run."""
        if not self._state_file.loaded:
            self.close()
            return []
        return self.stop_processes()

    def stop_processes(self) -> list[Stopped]:
        """SIGTERM every process of the run (load, validators, Prometheus), by pid and only
        if it still is the process we started; SIGKILL what remains after the grace period;
        then the runner removes what else it made (containers, volumes). Returns what was
        done to each."""
        results = self._processes.stop_all(list(all_processes(self.refresh())))
        results += self._validators.release()
        stopped_at = time.time()

        def stopped(fresh: RunState) -> None:
            fresh.load.process = None
            fresh.prometheus.process = None
            for validator in fresh.validators:
                validator.process = None
            fresh.stopped_at = stopped_at

        self._state_file.update(stopped)
        self.close()
        return results

    def close(self) -> None:
        """Close the cached node clients and the runner's connections (the testnet keeps
        running)."""
        with self._lock:
            for client in self._clients.values():
                with contextlib.suppress(Exception):
                    client.close()
            self._clients.clear()
        self._validators.close()
