"""The validators of a docker run as containers of the node image: the ``ValidatorRunner`` of
``DockerPlatform`` (``local.runner`` says what a runner does).

* Names: container ``aitbc-<run id>-validator-<i>``, volume ``aitbc-<run id>-data-<i>``; each
  carries the run label (``aitbc.io/run-id``) and ``aitbc.io/validator``. A run id whose
  containers or volumes still exist in the engine is refused before anything is written.
* Kill: SIGKILL of the container, verified by the engine (exit code 137). The exited container
  stays, for its logs, until the validator starts again.
* Restart and churn: a new container with the same name on the same volume, as the StatefulSet
  recreates a deleted pod on the same PersistentVolumeClaim: the node restarts from its data
  (chain, safety state), and churn measures validators leaving and rejoining with their state.
  A fresh volume would be a new validator syncing from genesis, which the chart never does. The
  root file system is read-only, so a new container loses nothing the old one had.
* Logs: the engine keeps a container's output; before a container is removed (restart, ``down``)
  it is appended to ``logs/node-<i>.log`` under a header naming the container, and
  ``collect`` adds the live containers' output to the copy in the report's artifacts.
* The engine connection (``ContainerEngine``, which may start ``podman system service`` as a
  child) is opened on first use and closed by ``close()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from aitbc_node.commands.genesis_cmd import LocalTestnet

from orchestrator.errors import FaultNotVerified, PlatformError
from orchestrator.external.container_engine import (
    RUN_LABEL,
    ContainerEngine,
    ContainerNotFoundError,
    ContainerSpec,
    ContainerState,
)
from orchestrator.faults.node_faults import parallel
from orchestrator.platforms.capabilities import Stopped
from orchestrator.platforms.docker.config import write_container_configs
from orchestrator.platforms.docker.image import find_image
from orchestrator.platforms.docker.spec import ContainerPlace, validator_container_spec
from orchestrator.platforms.local.network import port_of
from orchestrator.platforms.local.processes import KILL_CONFIRM_S, STOP_GRACE_S, tail_text
from orchestrator.platforms.local.state import (
    ContainerRecord,
    ImageRecord,
    RunState,
    RunStateFile,
    ValidatorRecord,
)
from orchestrator.platforms.validator_container import EnvSource, validator_container
from orchestrator.scenario.plan import Plan

__all__ = ["VALIDATOR_LABEL", "ContainerRunner", "container_name", "run_labels", "volume_name"]

VALIDATOR_LABEL = "aitbc.io/validator"
PART_OF_LABEL = "app.kubernetes.io/part-of"


def run_labels(run_id: str) -> dict[str, str]:
    """The label every container and volume of run ``run_id`` carries."""
    return {RUN_LABEL: run_id}


def container_name(run_id: str, index: int) -> str:
    return f"aitbc-{run_id}-validator-{index}"


def volume_name(run_id: str, index: int) -> str:
    return f"aitbc-{run_id}-data-{index}"


class ContainerRunner:
    """Starts, watches, kills and removes the validator containers of one run (see the module
    docstring). ``reference`` is the image asked for; a deployed run's containers run the image
    id recorded at deploy."""

    def __init__(
        self,
        state_file: RunStateFile,
        config_root: Path,
        reference: str,
        engine_env: Mapping[str, str] | None = None,
    ) -> None:
        self._state_file = state_file
        self._config_root = config_root
        self._reference = reference
        self._engine_env = engine_env
        self._engine: ContainerEngine | None = None
        self._image_id: str | None = None
        self._lock = threading.Lock()

    # -- the engine and the run ----------------------------------------------------------------
    def engine(self) -> ContainerEngine:
        """The engine (connected on first use; NoContainerEngineError, exit 3, when none)."""
        with self._lock:
            if self._engine is None:
                self._engine = ContainerEngine.connect(self._engine_env)
            return self._engine

    def _validator(self, index: int) -> tuple[ValidatorRecord, ContainerRecord]:
        validator = self._state_file.state.validators[index]
        if validator.container is None:
            raise PlatformError(
                f"validator {index} of run {self._state_file.state.run_id} has no container "
                "record: the run directory is not a docker run's or is damaged"
            )
        return validator, validator.container

    def image_reference(self) -> str:
        """The image of the run (the one asked for before it is deployed)."""
        image = self._state_file.state.image if self._state_file.loaded else None
        return image.reference if image is not None else self._reference

    # -- ValidatorRunner -------------------------------------------------------------------------
    def preflight(self, plan: Plan) -> None:
        """The engine answers, has the image, and holds nothing of a run with this id."""
        engine = self.engine()
        self._image_id = find_image(engine, self._reference).id
        labels = run_labels(plan.run_id)
        containers = [state.name for state in engine.containers(labels)]
        volumes = engine.volumes(labels)
        if containers or volumes:
            found = ", ".join(containers + volumes)
            raise PlatformError(
                f"run id {plan.run_id}: the engine at {engine.base_url} still has its "
                f"containers or volumes ({found}): choose another --run-id, or remove them "
                f"(`aitbc-testnet down --run-id {plan.run_id}` with the --run-dir it ran in)"
            )

    def prepare(self, testnet: LocalTestnet) -> None:
        """Each validator's config folder, container and volume names, and the image id."""
        folders = write_container_configs(testnet, self._config_root)
        if self._image_id is None:
            raise PlatformError("the docker platform prepares a run only after its preflight")
        image = ImageRecord(reference=self._reference, id=self._image_id)

        def named(state: RunState) -> None:
            state.image = image
            for validator in state.validators:
                volume = volume_name(state.run_id, validator.index)
                validator.data_dir = f"volume {volume}"
                validator.container = ContainerRecord(
                    name=container_name(state.run_id, validator.index),
                    volume=volume,
                    config_dir=str(folders[validator.index]),
                )

        self._state_file.update(named)

    def spec(self, index: int) -> ContainerSpec:
        """What validator ``index``'s container runs (the same for every incarnation)."""
        state = self._state_file.state
        validator, record = self._validator(index)
        if state.image is None:
            raise PlatformError(f"run {state.run_id} records no image: is it a docker run?")
        container = validator_container(
            grpc_port=port_of(validator.grpc), ops_port=port_of(validator.ops)
        )
        return validator_container_spec(
            container,
            ContainerPlace(record.name, record.volume, Path(record.config_dir)),
            image=state.image.id,
            env={
                EnvSource.POD_NAME: record.name,
                EnvSource.NAMESPACE: state.run_id,
                EnvSource.ADMIN_TOKEN: Path(state.admin_token_file).read_text().strip(),
            },
            labels={**run_labels(state.run_id), VALIDATOR_LABEL: str(index),
                    PART_OF_LABEL: "aitbc-testnet"},
        )  # fmt: skip

    def start(self, index: int, *, restart: bool = False) -> None:
        """Create and start validator ``index``'s container; an earlier one (killed, stopped)
        is replaced: its logs saved, removed, a new one on the same volume."""
        self._retire(index)
        started = self.engine().run(self.spec(index))
        started_at = time.time()

        def recorded(state: RunState) -> None:
            entry = state.validators[index]
            assert entry.container is not None
            entry.container.id = started.id
            entry.container.started_at = started_at
            entry.killed_at = None
            if restart:
                entry.restarts += 1

        self._state_file.update(recorded)

    def start_all(self, indices: Sequence[int]) -> None:
        """One container after another (each imports the node in its own image)."""
        for index in indices:
            self.start(index)

    def running(self, index: int) -> bool:
        _, record = self._validator(index)
        try:
            return self.engine().state(record.name).running
        except ContainerNotFoundError:
            return False

    def exited(self) -> list[int]:
        state = self._state_file.state
        found = {c.name: c for c in self.engine().containers(run_labels(state.run_id))}
        return [
            validator.index
            for validator in state.validators
            if validator.container is not None
            and validator.container.id is not None
            and validator.killed_at is None
            and not _runs(found.get(validator.container.name))
        ]

    def kill(self, index: int) -> None:
        """SIGKILL the container; verified: the engine reports it exited."""
        if not self.running(index):
            return
        _, record = self._validator(index)
        engine = self.engine()
        engine.kill(record.name)
        engine.wait_exit(record.name, timeout_s=KILL_CONFIRM_S)
        if self.running(index):
            raise FaultNotVerified(
                f"validator {index}: container {record.name} still runs after SIGKILL: check "
                f"it with `docker ps` / `podman ps`"
            )
        killed_at = time.time()

        def killed(state: RunState) -> None:
            state.validators[index].killed_at = killed_at

        self._state_file.update(killed)

    def stop(self, index: int) -> None:
        _, record = self._validator(index)
        self.engine().stop(record.name, timeout_s=round(STOP_GRACE_S))

    def holder(self, index: int) -> Hashable | None:
        validator, record = self._validator(index)
        return None if validator.killed_at is not None else record.id

    def describe(self, index: int) -> str:
        _, record = self._validator(index)
        try:
            state = self.engine().state(record.name)
            logs = tail_text(self.engine().logs(record.name, tail=20))
        except ContainerNotFoundError:
            return f"validator {index}: container {record.name} does not exist"
        code = f", exit code {state.exit_code}" if state.exit_code is not None else ""
        return (
            f"validator {index} (container {record.name}, {state.status}{code}): {logs} "
            f"(whole log: `docker logs {record.name}` or `podman logs {record.name}`)"
        )

    def release(self) -> list[Stopped]:
        """Stop every validator container (SIGTERM, SIGKILL after the grace period), save its
        logs, remove it; then remove whatever else carries the run's label (its volumes, a
        container a failed deploy left unrecorded)."""
        state = self._state_file.state
        engine = self.engine()
        found = {c.name: c for c in engine.containers(run_labels(state.run_id))}
        recorded = [
            validator.index
            for validator in state.validators
            if validator.container is not None and validator.container.name in found
        ]

        def stop_one(index: int) -> Stopped:
            _, record = self._validator(index)
            was_running = _runs(found[record.name])
            if was_running:
                engine.stop(record.name, timeout_s=round(STOP_GRACE_S))
            self._retire(index)
            how = "SIGTERM, removed" if was_running else "had exited, removed"
            return Stopped(f"validator-{index}", None, how)

        results = parallel(stop_one, recorded)
        containers, volumes = engine.remove_labelled(run_labels(state.run_id))
        results += [Stopped(f"container {name}", None, "removed") for name in containers]
        results += [Stopped(f"volume {name}", None, "removed") for name in volumes]
        return results

    def append_live_logs(self, logs_dir: Path) -> None:
        """Append each validator container's output to ``logs_dir/node-<i>.log``."""
        logs_dir.mkdir(parents=True, exist_ok=True)
        for validator in self._state_file.state.validators:
            if validator.container is not None:
                self._append_logs(validator.container, logs_dir / Path(validator.log).name)

    def close(self) -> None:
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()

    # -- internals -----------------------------------------------------------------------------
    def _retire(self, index: int) -> None:
        """Save the logs of validator ``index``'s container (if any) and remove it."""
        validator, record = self._validator(index)
        if self._append_logs(record, Path(validator.log)):
            self.engine().remove(record.name, missing_ok=True)

    def _append_logs(self, record: ContainerRecord, log: Path) -> bool:
        """Append the container's output to ``log``; False when there is no container."""
        try:
            text = self.engine().logs(record.name)
            state = self.engine().state(record.name)
        except ContainerNotFoundError:
            return False
        read_at = datetime.now(UTC).isoformat(timespec="seconds")
        header = f"--- container {record.name} ({state.id[:12]}), {state.status}, read {read_at}\n"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as handle:
            handle.write(header + text + ("" if text.endswith("\n") or not text else "\n"))
        return True


def _runs(state: ContainerState | None) -> bool:
    return state is not None and state.running
