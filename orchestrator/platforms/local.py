"""The local platform: validator processes on this machine, a real Prometheus server and a
real Locust, all started by pid from one run directory.

Run directory ``<run-root>/<run-id>/``::

    net/          genesis.json, node-<i>.yaml, network.json, admin-token, data/node-<i>/
    logs/         node-<i>.log, prometheus.log, locust.log
    prometheus/   prometheus.yml, targets/{validators,loadgen}.json, data/ (TSDB)
    load/         locust_*.csv, locust.json, summary.json, probe.jsonl
    state.json    what runs: pids with their start times, ports, Prometheus URL, the plan

``state.json`` lets every CLI stage work from its own invocation: ``LocalPlatform.attach(dir)``
reads it back, and ``latest_run(run_root)`` finds the newest run. A pid is only ever signalled
after checking that it still is the process this run started (same kernel start time), and
each process runs in its own process group.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from aitbc_node.commands.genesis_cmd import make_local_testnet
from aitbc_node.errors import ConfigError
from pydantic import BaseModel, ConfigDict

import loadgen
from orchestrator.errors import AitbcTestnetError
from orchestrator.node_client import FaultApiError, NodeClient, NodeUnreachable
from orchestrator.plan import LoadPlan, Plan, PlannedFault, resolve_plan
from orchestrator.platforms.base import Endpoint, PlatformError
from orchestrator.prometheus_server import (
    LOADGEN_JOB,
    VALIDATOR_JOB,
    PrometheusLayout,
    ScrapeTarget,
    find_prometheus,
    is_ready,
    query_instant,
    start_prometheus,
    write_config,
    write_targets,
)
from orchestrator.scenario import Scenario

__all__ = [
    "DEFAULT_RUN_ROOT",
    "STATE_FILE",
    "FaultNotVerified",
    "LocalPlatform",
    "ProcessRecord",
    "RunState",
    "StartedProcess",
    "StoppedProcess",
    "latest_run",
    "process_alive",
]

DEFAULT_RUN_ROOT = Path(".aitbc/runs")
STATE_FILE = "state.json"
STATE_LOCK_FILE = ".state.lock"
STATE_VERSION = 1
STOP_GRACE_S = 10.0
"""Seconds between SIGTERM and SIGKILL when stopping a process."""
KILL_CONFIRM_S = 5.0
"""Seconds a SIGKILLed process may take to disappear before kill() fails."""
REAPPLY_WAIT_S = 20.0
"""Seconds a restarted validator's ops port may take to answer before its faults return."""
FAULT_BACKSTOP_S = 30.0
"""A fault with a planned duration is sent to the node with ``duration_s`` = duration + this,
so the node clears it by itself should the orchestrator die (the engine clears it on time)."""
_POLL_S = 0.1
_HEIGHT_RISE_POLL_S = 0.25
NODE_FAULT_KINDS = ("partition", "delay", "loss", "pause", "equivocate")


class FaultNotVerified(PlatformError):
    """A fault was sent but the validator does not show it applied (or cleared)."""


@dataclass
class _NodeFault:
    """One node-API fault this platform injected: the validator, the spec sent, the id the
    node gave it and the process (pid, start ticks) that holds it. Mutable: a restarted
    validator gets the spec again under a new id."""

    validator: int
    spec: dict[str, Any]
    fault_id: str | None = None
    holder: tuple[int, int] | None = None


# ----------------------------------------------------------------------------- state file


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProcessRecord(_Record):
    """A process this run started: its pid, its kernel start time (clock ticks since boot,
    ``/proc/<pid>/stat`` field 22: the pid is ours only while this matches) and its log."""

    pid: int
    start_ticks: int
    argv: list[str]
    log: str
    started_at: float


class ValidatorRecord(_Record):
    index: int
    grpc: str
    ops: str
    config: str
    data_dir: str
    log: str
    process: ProcessRecord | None = None
    restarts: int = 0
    killed_at: float | None = None


class PrometheusRecord(_Record):
    url: str
    listen: str
    dir: str
    log: str
    process: ProcessRecord | None = None


class LoadRecord(_Record):
    dir: str
    log: str
    metrics_port: int
    csv_prefix: str
    stats_json: str
    summary: str
    probe_log: str
    process: ProcessRecord | None = None
    started_at: float | None = None
    duration_s: float | None = None
    tps: float | None = None


class StartedProcess(_Record):
    """One process the run ever started (``RunState.history``)."""

    name: str
    process: ProcessRecord


class RunState(_Record):
    """``state.json``: everything a later CLI invocation needs to reach and stop this run."""

    version: int = STATE_VERSION
    platform: str = "local"
    run_id: str
    created: float
    host: str
    net_dir: str
    genesis: str
    chain_id: str
    admin_token_file: str
    validators: list[ValidatorRecord]
    prometheus: PrometheusRecord
    load: LoadRecord
    scenario: dict[str, Any]
    plan: dict[str, Any]
    stopped_at: float | None = None
    history: list[StartedProcess] = []
    """Every process the run started, in order (restarted validators included): what a
    check that "nothing of the run is left alive" walks."""


@dataclass(frozen=True)
class StoppedProcess:
    """What ``stop_processes`` did to one process: ``how`` is ``SIGTERM``, ``SIGKILL``,
    ``already exited`` or ``not ours`` (the pid now belongs to another program: left alone)."""

    name: str
    pid: int
    how: str


def latest_run(run_root: Path) -> Path | None:
    """The most recently created run directory under ``run_root`` (one with a state.json),
    or None when there is none."""
    if not run_root.is_dir():
        return None
    best: tuple[float, Path] | None = None
    for candidate in run_root.iterdir():
        state_path = candidate / STATE_FILE
        if not state_path.is_file():
            continue
        try:
            created = float(json.loads(state_path.read_text()).get("created", 0.0))
        except (OSError, ValueError, AttributeError):
            created = state_path.stat().st_mtime
        if best is None or created > best[0]:
            best = (created, candidate)
    return None if best is None else best[1]


# ----------------------------------------------------------------------------- processes


def _start_ticks(pid: int) -> int | None:
    """The kernel start time of ``pid``, or None when it does not exist or is a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    if not fields or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def process_alive(record: ProcessRecord | None) -> bool:
    """Whether the process of ``record`` still runs and is the one we started."""
    return record is not None and _start_ticks(record.pid) == record.start_ticks


def _spawn(
    argv: Sequence[str], log_path: Path, *, cwd: Path, env: dict[str, str] | None
) -> tuple[subprocess.Popen[bytes], ProcessRecord]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        try:
            child = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        except OSError as error:
            raise PlatformError(f"cannot start {argv[0]}: {error.strerror}") from None
    ticks = _start_ticks(child.pid)
    record = ProcessRecord(
        pid=child.pid,
        start_ticks=ticks if ticks is not None else -1,
        argv=list(argv),
        log=str(log_path),
        started_at=time.time(),
    )
    return child, record


def _tail(path: str | Path, lines: int = 6) -> str:
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return "no log"
    return " | ".join(line.strip() for line in text) or "empty log"


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str, avoid: set[int]) -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        if port not in avoid:
            return port
    raise PlatformError(f"cannot find a free port on {host}: pass --base-port")


def _port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


# ----------------------------------------------------------------------------- the platform


class LocalPlatform:
    """Validators, Prometheus and Locust as local processes of one run directory."""

    name = "local"

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
        self._state: RunState | None = None
        self._plan: Plan | None = None
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.RLock()
        self._clients: dict[int, NodeClient] = {}
        self._applied: dict[int, list[_NodeFault]] = {}
        #: Faults that could not be injected again into a restarted validator (background).
        self.reapply_errors: list[str] = []

    # -- files -------------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.run_dir / STATE_FILE

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
        if self._state is None:
            raise PlatformError(
                f"run {self.run_dir.name} has no state yet: deploy it (aitbc-testnet up) or "
                "attach to an existing run directory"
            )
        return self._state

    @property
    def plan(self) -> Plan:
        """The plan this run was deployed with (re-resolved from state.json after attach)."""
        if self._plan is None:
            scenario = Scenario.model_validate(self.state.scenario)
            self._plan = resolve_plan(scenario, platform="local", run_id=self.state.run_id)
        return self._plan

    @classmethod
    def attach(cls, run_dir: Path, *, node_timeout_s: float = 5.0) -> LocalPlatform:
        """The platform of an existing run (from its state.json). Raises PlatformError when
        ``run_dir`` holds no local run."""
        platform = cls(Path(run_dir), node_timeout_s=node_timeout_s)
        path = platform.state_path
        if not path.is_file():
            raise PlatformError(
                f"{run_dir} is not a run directory (no {STATE_FILE}): give the --run-id of a "
                "run started with `aitbc-testnet up` (they live in the --run-dir folder)"
            )
        try:
            platform._state = RunState.model_validate_json(path.read_text())
        except (OSError, ValueError) as error:
            raise PlatformError(
                f"{path} cannot be read ({str(error)[:200]}): the run directory is damaged or "
                "from another version; stop its processes by hand"
            ) from None
        if platform._state.platform != "local":
            raise PlatformError(f"{run_dir} is a {platform._state.platform} run, not a local one")
        return platform

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """This object's lock and an exclusive lock on the run's state file (other CLI
        invocations of the same run wait)."""
        with self._lock:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with (self.run_dir / STATE_LOCK_FILE).open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def _write(self, state: RunState) -> None:
        temporary = self.state_path.with_name(
            f".{STATE_FILE}.tmp{os.getpid()}.{threading.get_ident()}"
        )
        temporary.write_text(state.model_dump_json(indent=2) + "\n")
        os.replace(temporary, self.state_path)
        self._state = state

    def _save(self) -> None:
        """Write this object's state as it is (deploy's first write)."""
        with self._file_lock():
            self._write(self.state)

    def _update(self, change: Callable[[RunState], None]) -> RunState:
        """Read state.json again, apply ``change``, write it back, all under the file lock:
        stages running at the same time (a ``load`` during a ``fault kill``) never lose each
        other's changes. Returns the new state (also ``self.state``)."""
        with self._file_lock():
            state = self.state
            if self.state_path.is_file():
                with contextlib.suppress(OSError, ValueError):
                    state = RunState.model_validate_json(self.state_path.read_text())
            change(state)
            self._write(state)
            return state

    def refresh(self) -> RunState:
        """Re-read state.json (what other invocations changed since)."""
        return self._update(lambda state: None)

    # -- deploy ------------------------------------------------------------------------------
    def deploy(self, plan: Plan) -> None:
        """Genesis and configs, then every validator and Prometheus, each in its own process
        group. Raises PlatformError (a port taken, the prometheus binary missing, the run
        directory already used); what already started is recorded in state.json, so
        ``destroy`` stops it."""
        if self.state_path.exists():
            raise PlatformError(
                f"run directory {self.run_dir} is already used by a run: choose another "
                "--run-id, or stop that run first (aitbc-testnet down --run-id "
                f"{self.run_dir.name})"
            )
        prometheus_binary = find_prometheus()
        network = plan.network
        count = network.validators
        extra_ports = self._extra_ports(count)
        for folder in (self.net_dir, self.logs_dir, self.load_dir, self.prometheus_dir):
            folder.mkdir(parents=True, exist_ok=True)
        stake = (
            network.stake_spec if isinstance(network.stake_spec, str) else list(network.stake_spec)
        )
        try:
            testnet = make_local_testnet(
                self.net_dir,
                validators=count,
                authorities=network.authorities,
                seed=network.genesis_seed,
                stake=cast(Any, stake),  # make_testnet_genesis also takes an explicit list
                mode=network.mode,
                accounts=plan.load.accounts + 2,
                epoch_length=network.epoch_length,
                block_interval_ms=network.block_interval_ms,
                host=self.host,
                base_port=self.base_port,
            )
        except ConfigError as error:
            raise PlatformError(f"cannot write the testnet of run {plan.run_id}: {error}") from None
        used = {_port_of(node.grpc) for node in testnet.nodes} | {
            _port_of(node.ops) for node in testnet.nodes
        }
        if extra_ports is not None:
            prometheus_port, loadgen_port = extra_ports
        else:
            prometheus_port = _free_port(self.host, used)
            loadgen_port = _free_port(self.host, used | {prometheus_port})
        listen = f"{self.host}:{prometheus_port}"
        self._plan = plan
        self._state = RunState(
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
        self._save()
        layout = PrometheusLayout(self.prometheus_dir)
        write_config(layout, run_id=plan.run_id)
        write_targets(
            layout.validators_file,
            [
                ScrapeTarget(v.ops, {"validator": str(v.index), "job": VALIDATOR_JOB})
                for v in self.state.validators
            ],
        )
        write_targets(
            layout.loadgen_file,
            [ScrapeTarget(f"{self.host}:{loadgen_port}", {"job": LOADGEN_JOB})],
        )
        # Prometheus first: its service discovery hands targets to the scrapers only every
        # few seconds, which then overlaps with the validators' start.
        child = start_prometheus(
            layout, listen, Path(self.state.prometheus.log), binary=prometheus_binary
        )
        self._children[child.pid] = child
        ticks = _start_ticks(child.pid)
        record = ProcessRecord(
            pid=child.pid,
            start_ticks=ticks if ticks is not None else -1,
            argv=[str(arg) for arg in cast(Sequence[Any], child.args)],
            log=self.state.prometheus.log,
            started_at=time.time(),
        )

        def started(state: RunState) -> None:
            state.prometheus.process = record
            state.history.append(StartedProcess(name="prometheus", process=record))

        self._update(started)
        for validator in list(self.state.validators):
            self._start_validator(validator.index)

    def _extra_ports(self, validators: int) -> tuple[int, int] | None:
        """With --base-port: Prometheus on BASE+2N, the loadgen metrics on BASE+2N+1 (the
        validators take BASE..BASE+2N-1); every port of the range checked free first."""
        if self.base_port is None:
            return None
        last = self.base_port + 2 * validators + 1
        if self.base_port < 1 or last > 65535:
            raise PlatformError(
                f"--base-port {self.base_port}: the run needs ports {self.base_port}..{last}, "
                "outside 1..65535: choose a lower base port"
            )
        for port in range(self.base_port, last + 1):
            if not _port_free(self.host, port):
                raise PlatformError(
                    f"--base-port {self.base_port}: port {port} on {self.host} is taken (the run "
                    f"needs {self.base_port}..{last}): choose another --base-port, leave it out "
                    "to get free ports, or stop what uses it"
                )
        return last - 1, last

    def _start_validator(self, index: int, *, restart: bool = False) -> ProcessRecord:
        validator = self._validator(index)
        argv = [self.python, "-m", "aitbc_node.cli", "run", "--config", validator.config]
        child, record = _spawn(argv, Path(validator.log), cwd=self.net_dir, env=None)
        self._children[child.pid] = child

        def started(state: RunState) -> None:
            entry = state.validators[index]
            entry.process = record
            entry.killed_at = None
            if restart:
                entry.restarts += 1
            state.history.append(StartedProcess(name=f"validator-{index}", process=record))

        self._update(started)
        return record

    # -- readiness ---------------------------------------------------------------------------
    def wait_ready(
        self,
        timeout_s: float,
        on_progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        """Every validator's /readyz answers 200 and Prometheus' /-/ready too, then every
        validator's height rises. ``on_progress(stage, ready_count, max_height)`` is called
        about every poll. Raises PlatformError after ``timeout_s`` or as soon as a process
        exits (with the tail of its log)."""
        deadline = time.monotonic() + timeout_s
        state = self.state
        total = len(state.validators)
        ready: set[int] = set()
        heights: dict[int, int] = {}
        while True:
            self._check_alive()
            for validator in state.validators:
                if validator.index in ready:
                    continue
                try:
                    ok, _ = self.client(validator.index).ready()
                except NodeUnreachable:
                    ok = False
                if ok:
                    ready.add(validator.index)
            prometheus_ok = is_ready(state.prometheus.url, timeout_s=0.5)
            if on_progress is not None:
                on_progress("starting", len(ready), max(heights.values(), default=0))
            if len(ready) == total and prometheus_ok:
                break
            if time.monotonic() >= deadline:
                waiting = sorted(set(range(total)) - ready)
                what = f"validators {waiting} not ready" if waiting else "prometheus not ready"
                raise PlatformError(
                    f"run {state.run_id}: {what} within {timeout_s:g}s: see {self.logs_dir} "
                    f"(e.g. {_tail(state.validators[waiting[0]].log) if waiting else ''})"
                )
            time.sleep(_POLL_S)
        base: dict[int, int] = {}
        rising: set[int] = set()
        while True:
            self._check_alive()
            for index in range(total):
                if index in rising:
                    continue
                height = self._height_or(index, None)
                if height is None:
                    continue
                heights[index] = height
                if index not in base:
                    base[index] = height
                elif height > base[index]:
                    rising.add(index)
            if on_progress is not None:
                on_progress("heights rising", len(rising), max(heights.values(), default=0))
            if len(rising) == total:
                break
            if time.monotonic() >= deadline:
                stuck = sorted(set(range(total)) - rising)
                raise PlatformError(
                    f"run {state.run_id}: the height of validators {stuck} did not rise within "
                    f"{timeout_s:g}s (heights {heights}): see {self.logs_dir}"
                )
            time.sleep(_HEIGHT_RISE_POLL_S)
        self._wait_scraped(total, deadline, timeout_s, on_progress)

    def _wait_scraped(
        self,
        total: int,
        deadline: float,
        timeout_s: float,
        on_progress: Callable[[str, int, int], None] | None,
    ) -> None:
        """Wait until Prometheus has scraped every validator (``up == 1``), so that queries
        see the whole testnet from the moment ``wait_ready`` returns."""
        url = self.state.prometheus.url
        scraped = 0
        while True:
            try:
                scraped = len(query_instant(url, f'up{{job="{VALIDATOR_JOB}"}} == 1', 2.0))
            except PlatformError:
                scraped = 0
            if on_progress is not None:
                on_progress("scraped by prometheus", scraped, 0)
            if scraped >= total:
                return
            if time.monotonic() >= deadline:
                raise PlatformError(
                    f"run {self.state.run_id}: prometheus at {url} scraped {scraped} of {total} "
                    f"validators within {timeout_s:g}s: see {self.state.prometheus.log} and "
                    f"{PrometheusLayout(self.prometheus_dir).validators_file}"
                )
            time.sleep(_HEIGHT_RISE_POLL_S)

    def _height_or(self, index: int, default: int | None) -> int | None:
        try:
            return self.client(index).status().height
        except NodeUnreachable:
            return default

    def _check_alive(self) -> None:
        state = self.state
        for validator in state.validators:
            if validator.process is not None and not self._running(validator.process):
                raise PlatformError(
                    f"validator {validator.index} (pid {validator.process.pid}) exited while "
                    f"starting: {_tail(validator.log)}: fix the cause (see {validator.log}) and "
                    "run `aitbc-testnet up` again"
                )
        prom = state.prometheus.process
        if prom is not None and not self._running(prom):
            raise PlatformError(
                f"prometheus (pid {prom.pid}) exited while starting: "
                f"{_tail(state.prometheus.log)}: see {state.prometheus.log}"
            )

    def _running(self, record: ProcessRecord) -> bool:
        child = self._children.get(record.pid)
        if child is not None and child.poll() is not None:
            return False
        return process_alive(record)

    # -- reaching the validators ----------------------------------------------------------------
    def endpoints(self) -> list[Endpoint]:
        return [Endpoint(v.index, v.grpc, v.ops) for v in self.state.validators]

    def admin_token(self) -> str:
        """The fault API's bearer token of this run (net/admin-token)."""
        path = Path(self.state.admin_token_file)
        try:
            return path.read_text().strip()
        except OSError as error:
            raise PlatformError(f"cannot read the admin token {path}: {error.strerror}") from None

    def validator_pids(self) -> dict[int, int | None]:
        """Validator index -> pid of its running process (None: not running)."""
        pids: dict[int, int | None] = {}
        for validator in self.state.validators:
            record = validator.process
            pids[validator.index] = (
                record.pid if record is not None and self._running(record) else None
            )
        return pids

    def _running_or_none(self, record: ProcessRecord | None) -> bool:
        return record is not None and self._running(record)

    def client(self, index: int) -> NodeClient:
        """A (cached) NodeClient of validator ``index``."""
        with self._lock:
            client = self._clients.get(index)
            if client is None:
                endpoint = self._endpoint(index)
                client = NodeClient(endpoint, self.admin_token(), self.node_timeout_s)
                self._clients[index] = client
            return client

    def _endpoint(self, index: int) -> Endpoint:
        for validator in self.state.validators:
            if validator.index == index:
                return Endpoint(validator.index, validator.grpc, validator.ops)
        raise PlatformError(
            f"validator {index} does not exist in run {self.state.run_id}: it has validators "
            f"0..{len(self.state.validators) - 1}"
        )

    def _validator(self, index: int) -> ValidatorRecord:
        self._endpoint(index)
        return self.state.validators[index]

    def prometheus_url(self) -> str | None:
        return self.state.prometheus.url

    def genesis_path(self) -> Path:
        return Path(self.state.genesis)

    # -- kill / restart ----------------------------------------------------------------------
    def kill(self, index: int) -> None:
        """SIGKILL validator ``index``'s process group; verified: the pid is gone. A validator
        that is not running is left as it is."""
        record = self._validator(index).process
        if record is None or not self._running(record):
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pid, signal.SIGKILL)
        if not self._wait_gone(record, KILL_CONFIRM_S):
            raise FaultNotVerified(
                f"validator {index} (pid {record.pid}) still runs {KILL_CONFIRM_S:g}s after "
                "SIGKILL: check the process by hand"
            )
        killed_at = time.time()

        def killed(state: RunState) -> None:
            entry = state.validators[index]
            if entry.process is not None and entry.process.pid == record.pid:
                entry.process = None
                entry.killed_at = killed_at

        self._update(killed)

    def restart(self, index: int) -> None:
        """Start validator ``index`` again with its config and data (a running one is stopped
        with SIGTERM first). Verified: the new process runs."""
        self._refuse_if_stopped(f"restart validator {index}")
        running = self._validator(index).process
        if running is not None and self._running(running):
            self._stop(f"validator-{index}", running, STOP_GRACE_S)
        record = self._start_validator(index, restart=True)
        time.sleep(_POLL_S)
        if not self._running(record):
            raise FaultNotVerified(
                f"validator {index} exited right after its restart: "
                f"{_tail(self._validator(index).log)}"
            )
        if self._pending_faults(index):
            threading.Thread(
                target=self._reapply_quietly, args=(index,), name=f"reapply-{index}", daemon=True
            ).start()

    def _refuse_if_stopped(self, what: str) -> None:
        if self.state.stopped_at is not None:
            raise PlatformError(
                f"cannot {what}: run {self.state.run_id} was stopped (aitbc-testnet down); "
                "start a new run with `aitbc-testnet up`"
            )

    def _wait_gone(self, record: ProcessRecord, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        child = self._children.get(record.pid)
        while True:
            if child is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=_POLL_S)
                if child.returncode is not None:
                    self._children.pop(record.pid, None)
                    return True
            elif not process_alive(record):
                return True
            else:
                time.sleep(_POLL_S)
            if time.monotonic() >= deadline:
                return not process_alive(record)

    # -- faults ------------------------------------------------------------------------------
    def apply_fault(self, fault: PlannedFault, *, expire_after_s: float | None = None) -> None:
        """Inject ``fault`` and verify it: node faults show in each node's GET /admin/faults,
        killed pids are gone, restarted processes run. A partition of the set S cuts both
        ways: each node in S drops every node outside S and each outside node drops S.

        Node faults with a planned duration are sent with ``duration_s`` = duration + 30 s (a
        backstop should the orchestrator die); ``expire_after_s`` instead makes the nodes
        clear them by themselves after exactly that long (``fault --detach --duration``)."""
        kind = fault.kind
        if kind == "churn":
            raise PlatformError(
                f"fault {fault.index} is churn: the fault engine (orchestrator.fault_engine) "
                "expands it into kills and restarts; apply those instead"
            )
        if kind == "kill":
            for index in fault.ids:
                self.kill(index)
            return
        if kind == "restart":
            for index in fault.ids:
                self.restart(index)
            return
        if kind == "heal":
            targets = fault.ids or tuple(range(len(self.state.validators)))
            for index in targets:
                if self._node_running(index):
                    self._heal_node(index)
            return
        if kind not in NODE_FAULT_KINDS:
            raise PlatformError(f"fault {fault.index}: unknown kind {kind!r}")
        applied: list[_NodeFault] = []
        with self._lock:
            self._applied[fault.index] = applied
        for index, spec in self._node_specs(fault):
            if expire_after_s is not None:
                spec = {**spec, "duration_s": expire_after_s}
            record = _NodeFault(index, spec)
            applied.append(record)
            if self._node_running(index):  # a killed validator gets it when it restarts
                self._inject(record, kind)

    def _inject(self, record: _NodeFault, kind: str) -> None:
        """Send ``record``'s spec to its validator and verify it is listed."""
        client = self.client(record.validator)
        fault_id = client.apply_fault(record.spec)
        record.fault_id = fault_id
        record.holder = self._process_key(record.validator)
        if fault_id not in {item.get("id") for item in client.faults()}:
            raise FaultNotVerified(
                f"validator {record.validator}: fault {fault_id} ({kind}) was accepted but GET "
                "/admin/faults does not list it"
            )

    def _process_key(self, index: int) -> tuple[int, int] | None:
        process = self._validator(index).process
        return None if process is None else (process.pid, process.start_ticks)

    def _pending_faults(self, index: int) -> list[tuple[int, _NodeFault]]:
        with self._lock:
            return [
                (fault_index, record)
                for fault_index, records in self._applied.items()
                for record in records
                if record.validator == index
            ]

    def _still_active(self, fault_index: int, record: _NodeFault) -> bool:
        with self._lock:
            return any(item is record for item in self._applied.get(fault_index, ()))

    def _reapply_quietly(self, index: int) -> None:
        try:
            self._reapply(index)
        except AitbcTestnetError as error:
            self.reapply_errors.append(str(error))

    def _reapply(self, index: int) -> None:
        """After validator ``index`` restarted (in the background, so a restart never holds
        up the fault timeline): inject again the node faults of this platform still active
        on it (a fault lives in the node's memory only), once its ops port answers."""
        deadline = time.monotonic() + REAPPLY_WAIT_S
        while True:
            try:
                self.client(index).ready()
                break
            except NodeUnreachable:
                if time.monotonic() >= deadline or not self._node_running(index):
                    raise FaultNotVerified(
                        f"validator {index} restarted but its ops port did not answer within "
                        f"{REAPPLY_WAIT_S:g}s, so its active faults were not injected again: "
                        f"see {self._validator(index).log}"
                    ) from None
                time.sleep(_POLL_S)
        for fault_index, record in self._pending_faults(index):
            if not self._still_active(fault_index, record):
                continue
            self._inject(record, f"fault {fault_index}, injected again after the restart")
            if not self._still_active(fault_index, record) and record.fault_id is not None:
                self.client(index).clear_faults(record.fault_id)  # cleared meanwhile

    def clear_fault(self, fault: PlannedFault) -> None:
        """Clear ``fault`` and verify it is gone: node faults no longer listed, killed
        validators running again. Heal and restart have nothing to clear. A validator that
        restarted since lost the fault with its old process: nothing to clear there."""
        kind = fault.kind
        if kind == "kill":
            for index in fault.ids:
                if not self._node_running(index):
                    self.restart(index)
            return
        if kind in ("heal", "restart", "churn") or kind not in NODE_FAULT_KINDS:
            return
        with self._lock:
            applied = self._applied.pop(fault.index, None)
        if applied is None:  # applied by another invocation: clear that kind on its nodes
            nodes = sorted({index for index, _ in self._node_specs(fault)})
            for index in nodes:
                if self._node_running(index):
                    self._clear_kind(index, kind)
            return
        for record in applied:
            index, fault_id = record.validator, record.fault_id
            if fault_id is None or not self._node_running(index):
                continue
            if record.holder != self._process_key(index):
                continue  # restarted since: the fault went with the old process
            client = self.client(index)
            client.clear_faults(fault_id)
            if fault_id in {item.get("id") for item in client.faults()}:
                raise FaultNotVerified(
                    f"validator {index}: fault {fault_id} ({kind}) is still listed after DELETE"
                )

    def _node_specs(self, fault: PlannedFault) -> list[tuple[int, dict[str, Any]]]:
        """(validator, node fault spec) pairs that inject ``fault``."""
        everyone = [v.index for v in self.state.validators]
        inside = sorted(set(fault.ids))
        backstop: dict[str, Any] = {}
        if fault.duration_s is not None:
            backstop["duration_s"] = round(fault.duration_s + FAULT_BACKSTOP_S, 3)
        if fault.kind == "partition":
            outside = [i for i in everyone if i not in inside]
            if not outside or not inside:
                return []
            specs = [(i, {"kind": "partition", "peers": outside, **backstop}) for i in inside]
            specs += [(i, {"kind": "partition", "peers": inside, **backstop}) for i in outside]
            return specs
        params: dict[str, Any] = {}
        if fault.kind == "delay":
            params = {
                "delay_ms": float(fault.params.get("delay_ms", 0)),
                "jitter_ms": float(fault.params.get("jitter_ms", 0)),
            }
        elif fault.kind == "loss":
            params = {"rate": float(fault.params["rate"])}
        return [(i, {"kind": fault.kind, **params, **backstop}) for i in inside]

    def _node_running(self, index: int) -> bool:
        return self._running_or_none(self._validator(index).process)

    def _heal_node(self, index: int) -> None:
        client = self.client(index)
        client.clear_faults(None)
        left = client.faults()
        if left:
            raise FaultNotVerified(
                f"validator {index}: {len(left)} faults still listed after heal (DELETE "
                "/admin/faults)"
            )

    def _clear_kind(self, index: int, kind: str) -> None:
        client = self.client(index)
        for item in client.faults():
            if item.get("kind") == kind:
                client.clear_faults(str(item["id"]))
        if any(item.get("kind") == kind for item in client.faults()):
            raise FaultNotVerified(f"validator {index}: {kind} faults still listed after DELETE")

    def active_faults(self) -> dict[int, list[dict[str, Any]]]:
        """Validator index -> its active node faults (GET /admin/faults); a validator that is
        not running or does not answer is left out."""
        result: dict[int, list[dict[str, Any]]] = {}
        for validator in self.state.validators:
            if not self._node_running(validator.index):
                continue
            try:
                result[validator.index] = self.client(validator.index).faults()
            except (NodeUnreachable, FaultApiError):
                continue
        return result

    # -- load --------------------------------------------------------------------------------
    def start_load(self, plan: Plan) -> None:
        """Start Locust headless (``python -m locust -f loadgen/locustfile.py``) with the plan's
        load section: load users plus the probe user, CSV and JSON stats, summary and probe log
        in load/, metrics on the port Prometheus already scrapes (job aitbc-loadgen)."""
        self._refuse_if_stopped("start a load")
        load_state = self.state.load
        if load_state.process is not None and self._running(load_state.process):
            raise PlatformError(
                f"run {self.state.run_id}: a load is already running (pid "
                f"{load_state.process.pid}): wait for it or stop it first"
            )
        load = plan.load
        env = dict(os.environ)
        env.update(self.loadgen_environment(load))
        users = load.users + (1 if load.probe_enabled else 0)
        argv = [
            self.python,
            "-m",
            "locust",
            "-f",
            str(Path(loadgen.__file__).resolve().parent / "locustfile.py"),
            "--headless",
            "-u",
            str(users),
            "-r",
            str(users),
            "--run-time",
            f"{max(1, math.ceil(load.duration_s))}s",
            "--stop-timeout",
            "5",
            "--csv",
            load_state.csv_prefix,
            "--json-file",
            str(Path(load_state.stats_json).with_suffix("")),
            "--only-summary",
            "--exit-code-on-error",
            "0",
        ]
        for stale in (load_state.summary, load_state.probe_log):
            Path(stale).unlink(missing_ok=True)
        child, record = _spawn(argv, Path(load_state.log), cwd=self.load_dir, env=env)
        self._children[child.pid] = child

        def started(state: RunState) -> None:
            state.load.process = record
            state.load.started_at = record.started_at
            state.load.duration_s = load.duration_s
            state.load.tps = load.tps
            state.history.append(StartedProcess(name="locust", process=record))

        self._update(started)

    def loadgen_environment(self, load: LoadPlan) -> dict[str, str]:
        """The AITBC_* variables of the load generator for ``load`` on this run."""
        state = self.state
        return {
            "AITBC_TARGETS": ",".join(v.grpc for v in state.validators),
            "AITBC_GENESIS": state.genesis,
            "AITBC_TPS": f"{load.tps:g}",
            "AITBC_BATCH_SIZE": str(load.batch_size),
            "AITBC_TX_SIZE": str(load.tx_size),
            "AITBC_ACCOUNTS": str(load.accounts),
            "AITBC_FIRST_ACCOUNT": "0",
            "AITBC_SHAPE": load.shape,
            "AITBC_SHAPE_PARAMS": json.dumps(load.shape_params()),
            "AITBC_PROBE_INTERVAL_S": f"{load.probe_interval_s:g}" if load.probe_enabled else "0",
            "AITBC_PROBE_LOG": state.load.probe_log,
            "AITBC_SUMMARY": state.load.summary,
            "AITBC_LOADGEN_METRICS_PORT": str(state.load.metrics_port),
            "AITBC_RUN_ID": state.run_id,
        }

    def load_running(self) -> bool:
        return self._running_or_none(self.state.load.process)

    def wait_load(self, timeout_s: float) -> bool:
        """Wait until the load generator exits by itself (True) or ``timeout_s`` passes."""
        record = self.state.load.process
        if record is None:
            return True
        done = self._wait_gone(record, timeout_s)
        if done:
            self._update(lambda state: _forget_load(state, record))
        return done

    def stop_load(self) -> None:
        """Stop Locust (SIGTERM: it writes its stats and summary; SIGKILL after the grace
        period). Idempotent."""
        record = self.state.load.process
        if record is None:
            return
        if self._running(record):
            self._stop("locust", record, STOP_GRACE_S)
        self._update(lambda state: _forget_load(state, record))

    # -- artifacts and teardown --------------------------------------------------------------
    def collect_artifacts(self, dest: Path) -> None:
        """Copy logs, load results, configs, genesis, Prometheus config and state.json into
        ``dest`` (not the chain data, the TSDB or the admin token)."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        for folder in (self.logs_dir, self.load_dir):
            if folder.is_dir():
                shutil.copytree(folder, dest / folder.name, dirs_exist_ok=True)
        net = dest / "net"
        net.mkdir(exist_ok=True)
        for path in self.net_dir.glob("*"):
            if path.is_file() and path.name != "admin-token":
                shutil.copy2(path, net / path.name)
        prom = dest / "prometheus"
        layout = PrometheusLayout(self.prometheus_dir)
        if layout.config.exists():
            prom.mkdir(exist_ok=True)
            shutil.copy2(layout.config, prom / layout.config.name)
            if layout.targets_dir.is_dir():
                shutil.copytree(layout.targets_dir, prom / "targets", dirs_exist_ok=True)
        if self.state_path.exists():
            shutil.copy2(self.state_path, dest / STATE_FILE)

    def destroy(self) -> None:
        """Stop exactly what this run started (idempotent); keeps the run directory."""
        if self._state is None:  # nothing deployed or attached by this object
            return
        self.stop_processes()

    def stop_processes(self) -> list[StoppedProcess]:
        """SIGTERM every process of the run (load, validators, Prometheus), by pid and only
        if it still is the process we started; SIGKILL what remains after the grace period.
        Returns what was done to each."""
        state = self.refresh()
        named: list[tuple[str, ProcessRecord]] = []
        if state.load.process is not None:
            named.append(("locust", state.load.process))
        named += [
            (f"validator-{v.index}", v.process) for v in state.validators if v.process is not None
        ]
        if state.prometheus.process is not None:
            named.append(("prometheus", state.prometheus.process))
        results: list[StoppedProcess] = []
        signalled: list[tuple[str, ProcessRecord]] = []
        for name, record in named:
            if not self._running(record):
                how = "already exited" if _start_ticks(record.pid) is None else "not ours"
                results.append(StoppedProcess(name, record.pid, how))
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(record.pid, signal.SIGTERM)
            signalled.append((name, record))
        deadline = time.monotonic() + STOP_GRACE_S
        for name, record in signalled:
            remaining = max(0.0, deadline - time.monotonic())
            if self._wait_gone(record, remaining):
                results.append(StoppedProcess(name, record.pid, "SIGTERM"))
                continue
            if self._running(record):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(record.pid, signal.SIGKILL)
            self._wait_gone(record, KILL_CONFIRM_S)
            results.append(StoppedProcess(name, record.pid, "SIGKILL"))
        stopped_at = time.time()

        def stopped(fresh: RunState) -> None:
            fresh.load.process = None
            fresh.prometheus.process = None
            for validator in fresh.validators:
                validator.process = None
            fresh.stopped_at = stopped_at

        self._update(stopped)
        self.close()
        return results

    def _stop(self, name: str, record: ProcessRecord, grace_s: float) -> StoppedProcess:
        if not self._running(record):
            return StoppedProcess(name, record.pid, "already exited")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pid, signal.SIGTERM)
        if self._wait_gone(record, grace_s):
            return StoppedProcess(name, record.pid, "SIGTERM")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pid, signal.SIGKILL)
        self._wait_gone(record, KILL_CONFIRM_S)
        return StoppedProcess(name, record.pid, "SIGKILL")

    def close(self) -> None:
        """Close the cached node clients (the processes keep running)."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def all_pids(self) -> Iterator[tuple[str, ProcessRecord]]:
        """Every process record of the run that is set (for checks and reports)."""
        state = self.state
        if state.load.process is not None:
            yield "locust", state.load.process
        for validator in state.validators:
            if validator.process is not None:
                yield f"validator-{validator.index}", validator.process
        if state.prometheus.process is not None:
            yield "prometheus", state.prometheus.process


def _forget_load(state: RunState, record: ProcessRecord) -> None:
    """The load of ``record`` is over (unless state.json already names a newer one)."""
    current = state.load.process
    if current is not None and current.pid == record.pid:
        state.load.process = None


def replace_load(plan: Plan, **changes: Any) -> Plan:
    """``plan`` with some fields of its load section changed (``tps``, ``duration_s``, ...)."""
    return dataclasses.replace(plan, load=dataclasses.replace(plan.load, **changes))
