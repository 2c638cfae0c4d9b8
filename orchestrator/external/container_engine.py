"""The one module that talks to a container engine: the Docker Engine API through the ``docker``
package, served by Docker or by Podman (``podman system service``). Everything above it sees
frozen records (``ContainerSpec``, ``ContainerState``, ``ImageInfo``) and typed errors.

Connection (``ContainerEngine.connect``), first that answers:

1. ``DOCKER_HOST`` when it is set (it must answer: no fallback behind the user's back);
2. Docker's socket ``/var/run/docker.sock``, then Podman's rootful ``/run/podman/podman.sock``;
3. with ``podman`` on PATH: ``podman system service --time=0`` started here, as a child process
   in its own session, on a socket in a private temporary folder. ``close()`` stops it by pid
   (SIGTERM, SIGKILL after ``SERVICE_STOP_S``) and removes the folder; a finalizer does the same
   if the owner never calls ``close()``, so no service outlives the process that started it.

Containers keep running when the service stops (their monitor, conmon, is not its child): whoever
runs containers removes them (``remove``, or ``remove_labelled`` with the run's label).

Errors: ``ContainerEngineError``, a ``PlatformError`` (exit 3; the message names the object, the
value and what to do next), ``NoContainerEngineError`` (nothing answers), ``ImageMissingError``
(build the image first), ``ContainerNotFoundError``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
import requests

from orchestrator.errors import PlatformError
from orchestrator.external.container_records import (
    NO_NEW_PRIVILEGES,
    ContainerSpec,
    ContainerState,
    HealthCheck,
    ImageInfo,
    Mount,
    container_state,
    healthcheck_config,
    spec_from_inspect,
)

__all__ = [
    "RUN_LABEL",
    "ContainerEngine",
    "ContainerEngineError",
    "ContainerNotFoundError",
    "ContainerSpec",
    "ContainerState",
    "HealthCheck",
    "ImageInfo",
    "ImageMissingError",
    "Mount",
    "NoContainerEngineError",
]

#: The label that ties containers and volumes to a run (the same key as the chart's objects).
RUN_LABEL = "aitbc.io/run-id"
DOCKER_SOCKET = Path("/var/run/docker.sock")
PODMAN_SOCKET = Path("/run/podman/podman.sock")
#: Seconds a call to the engine may take (image inspection, stop with its grace period, logs).
API_TIMEOUT_S = 120.0
#: Upper bound on the wait for a started ``podman system service`` to answer (it usually does
#: within a second; the bound only matters on a machine that is very busy).
SERVICE_START_S = 60.0
SERVICE_STOP_S = 15.0


class ContainerEngineError(PlatformError):
    """The container engine failed or cannot do what was asked (exit 3)."""


class NoContainerEngineError(ContainerEngineError):
    """No Docker Engine API answers and podman is not installed."""


class ImageMissingError(ContainerEngineError):
    """The engine does not have the image."""


class ContainerNotFoundError(ContainerEngineError):
    """No container (or volume) of that name."""


class ContainerEngine:
    """A connection to one engine; see the module docstring. Use ``connect()`` and ``close()``
    (or ``with ContainerEngine.connect() as engine``)."""

    def __init__(self, client: Any, base_url: str, service: _PodmanService | None = None) -> None:
        self._client = client
        self.base_url = base_url
        self._service = service

    # ------------------------------------------------------------------ connection

    @classmethod
    def connect(
        cls,
        env: Mapping[str, str] | None = None,
        sockets: Sequence[Path] = (DOCKER_SOCKET, PODMAN_SOCKET),
    ) -> ContainerEngine:
        """Connect as the module docstring says (``env``: DOCKER_HOST and the PATH podman is
        looked up on, default ``os.environ``; ``sockets``: the engine sockets tried in turn);
        raises ``NoContainerEngineError``."""
        environment = os.environ if env is None else env
        docker_host = environment.get("DOCKER_HOST")
        if docker_host:
            client = _client_if_answering(docker_host)
            if client is None:
                raise ContainerEngineError(
                    f"DOCKER_HOST={docker_host} does not answer the Docker Engine API: start that "
                    "engine, or unset DOCKER_HOST to use the local Docker or Podman"
                )
            return cls(client, docker_host)
        for socket_path in sockets:
            if socket_path.exists():
                url = f"unix://{socket_path}"
                client = _client_if_answering(url)
                if client is not None:
                    return cls(client, url)
        podman = shutil.which("podman", path=environment.get("PATH", os.defpath))
        if podman is None:
            tried = " or ".join(str(path) for path in sockets) or "no socket"
            raise NoContainerEngineError(
                f"no container engine: nothing answers at {tried}, DOCKER_HOST is unset and "
                "podman is not on PATH: start Docker, or run `make install` as root (installs "
                "podman)"
            )
        service, client = _PodmanService.start(podman)
        return cls(client, service.url, service)

    def close(self) -> None:
        """Close the connection and stop the podman service this object started (if any)."""
        with contextlib.suppress(Exception):
            self._client.close()
        if self._service is not None:
            self._service.stop()

    def __enter__(self) -> ContainerEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def started_service_pid(self) -> int | None:
        """The pid of the ``podman system service`` this object started (None: none)."""
        return None if self._service is None else self._service.pid

    def describe(self) -> str:
        """E.g. ``Podman Engine 4.3.1 at unix:///tmp/aitbc-podman-x/podman.sock``."""
        with self._errors("asking the engine for its version"):
            version = self._client.version()
        components = version.get("Components") or [{}]
        product = components[0].get("Name") or "Docker Engine"
        return f"{product} {version.get('Version', '?')} at {self.base_url}"

    # ------------------------------------------------------------------ images

    def image(self, reference: str) -> ImageInfo:
        """The image ``reference`` (a tag or an id); raises ``ImageMissingError``."""
        try:
            with self._errors(f"inspecting image {reference}"):
                image = self._client.images.get(reference)
        except ContainerNotFoundError:
            raise ImageMissingError(
                f"image {reference} is not in the engine at {self.base_url}: build it with "
                "`make image`"
            ) from None
        return ImageInfo(image.id, tuple(image.tags), int(image.attrs.get("Size") or 0))

    def image_ids(self) -> set[str]:
        """Ids of every image in the engine, intermediate layers of builds included."""
        with self._errors("listing the images"):
            return {str(image.id) for image in self._client.images.list(all=True)}

    def remove_image(self, reference: str) -> None:
        """Remove the image ``reference`` (a tag or an id) and its layers no other image uses."""
        with self._errors(f"removing image {reference}"):
            self._client.images.remove(reference)

    def has_image(self, reference: str) -> bool:
        try:
            self.image(reference)
        except ImageMissingError:
            return False
        return True

    # ------------------------------------------------------------------ containers

    def run(self, spec: ContainerSpec) -> ContainerState:
        """Create and start a container (its named volumes first, labelled like it). Raises
        ``ImageMissingError`` when the image is missing; a container that was created but did
        not start is removed again."""
        self.image(spec.image)
        for mount in spec.mounts:
            if mount.kind == "volume":
                self.create_volume(mount.source, spec.labels)
        mounts = [
            docker.types.Mount(m.target, m.source, type=m.kind, read_only=m.read_only)
            for m in spec.mounts
        ]
        hardening: dict[str, Any] = {}
        if spec.read_only_root:
            hardening["read_only"] = True
        if spec.tmpfs:
            hardening["tmpfs"] = {path: "" for path in spec.tmpfs}
        if spec.cap_drop:
            hardening["cap_drop"] = list(spec.cap_drop)
        if spec.no_new_privileges:
            hardening["security_opt"] = [NO_NEW_PRIVILEGES]
        if spec.healthcheck is not None:
            hardening["healthcheck"] = healthcheck_config(spec.healthcheck)
        with self._errors(f"creating container {spec.name} from {spec.image}"):
            container = self._client.containers.create(
                spec.image,
                list(spec.command) or None,
                name=spec.name,
                entrypoint=None if spec.entrypoint is None else list(spec.entrypoint),
                environment=dict(spec.env),
                mounts=mounts,
                user=spec.user,
                labels=dict(spec.labels),
                network_mode=spec.network_mode,
                **hardening,
            )
        try:
            with self._errors(f"starting container {spec.name}"):
                container.start()
        except ContainerEngineError:
            with contextlib.suppress(Exception):
                container.remove(force=True)
            raise
        return self.state(spec.name)

    def state(self, name: str) -> ContainerState:
        return container_state(self._container(name))

    def inspect(self, name: str, env_names: Iterable[str] = ()) -> ContainerSpec:
        """What container ``name`` runs with, read back from the engine as a ``ContainerSpec``
        (its mounts in the order of their targets). ``env`` holds only the variables named in
        ``env_names`` (the engine also lists the image's and its own); ``tmpfs`` only those
        the container asked for (Podman adds /run and /var/tmp to a read-only container);
        ``entrypoint`` is the image's when the container did not set one; ``cap_drop`` is as
        the engine lists it (Podman names each capability ``ALL`` dropped)."""
        with self._errors(f"inspecting container {name}"):
            attrs = self._container(name).attrs
        return spec_from_inspect(attrs, set(env_names))

    def kill(self, name: str, signal_name: str = "SIGKILL") -> None:
        """Send ``signal_name`` to the container's main process (SIGKILL: no clean-up at all)."""
        with self._errors(f"sending {signal_name} to container {name}"):
            self._container(name).kill(signal=signal_name)

    def stop(self, name: str, timeout_s: int = 10) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``."""
        with self._errors(f"stopping container {name}"):
            self._container(name).stop(timeout=timeout_s)

    def start(self, name: str) -> None:
        """Start a stopped container again (same file system, same volumes)."""
        with self._errors(f"starting container {name}"):
            self._container(name).start()

    def wait_exit(self, name: str, timeout_s: float) -> int:
        """Block until the container has exited; returns its exit code."""
        with self._errors(f"waiting for container {name} to exit"):
            result = self._container(name).wait(timeout=timeout_s)
        return int(result.get("StatusCode", -1))

    def logs(self, name: str, tail: int | None = None) -> str:
        """The container's stdout and stderr (the last ``tail`` lines when given)."""
        with self._errors(f"reading the logs of container {name}"):
            raw = self._container(name).logs(
                stdout=True, stderr=True, tail="all" if tail is None else tail
            )
        return bytes(raw).decode(errors="replace")

    def remove(self, name: str, *, missing_ok: bool = False) -> None:
        """Remove the container, running or not (its named volumes stay)."""
        try:
            with self._errors(f"removing container {name}"):
                self._container(name).remove(force=True)
        except ContainerNotFoundError:
            if not missing_ok:
                raise

    def containers(self, labels: Mapping[str, str]) -> list[ContainerState]:
        """Every container (running or not) carrying all of ``labels``."""
        with self._errors(f"listing the containers labelled {_label_text(labels)}"):
            found = self._client.containers.list(all=True, filters=_label_filter(labels))
        return [container_state(container) for container in found]

    # ------------------------------------------------------------------ volumes

    def create_volume(self, name: str, labels: Mapping[str, str]) -> None:
        """Create the named volume ``name`` unless it exists (an existing one keeps its data)."""
        with self._errors(f"creating volume {name}"):
            try:
                self._client.volumes.get(name)
            except docker.errors.NotFound:
                self._client.volumes.create(name=name, labels=dict(labels))

    def volumes(self, labels: Mapping[str, str]) -> list[str]:
        """Names of the volumes carrying all of ``labels``."""
        with self._errors(f"listing the volumes labelled {_label_text(labels)}"):
            found = self._client.volumes.list(filters=_label_filter(labels))
        return sorted(volume.name for volume in found)

    def remove_volume(self, name: str, *, missing_ok: bool = False) -> None:
        try:
            with self._errors(f"removing volume {name}"):
                self._client.volumes.get(name).remove(force=True)
        except ContainerNotFoundError:
            if not missing_ok:
                raise

    def remove_labelled(self, labels: Mapping[str, str]) -> tuple[list[str], list[str]]:
        """Remove every container, then every volume, carrying all of ``labels`` (a run's
        clean-up); returns the names removed (containers, volumes)."""
        containers = [state.name for state in self.containers(labels)]
        for name in containers:
            self.remove(name, missing_ok=True)
        volumes = self.volumes(labels)
        for name in volumes:
            self.remove_volume(name, missing_ok=True)
        return containers, volumes

    # ------------------------------------------------------------------ internals

    def _container(self, name: str) -> Any:
        with self._errors(f"looking up container {name}"):
            return self._client.containers.get(name)

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Translate the ``docker`` package's exceptions into this module's errors."""
        try:
            yield
        except docker.errors.NotFound as error:
            raise ContainerNotFoundError(f"{what}: not found ({_explanation(error)})") from None
        except docker.errors.APIError as error:
            raise ContainerEngineError(
                f"{what}: the engine at {self.base_url} answered {error.status_code}: "
                f"{_explanation(error)}"
            ) from None
        except (requests.exceptions.RequestException, docker.errors.DockerException) as error:
            raise ContainerEngineError(
                f"{what}: the engine at {self.base_url} does not answer ({error}): is it still "
                "running?"
            ) from None


class _PodmanService:
    """A ``podman system service`` child process serving the Docker Engine API on a socket in
    a private temporary folder; stopped by pid in ``stop()`` or by the finalizer."""

    def __init__(self, process: subprocess.Popen[bytes], folder: Path) -> None:
        self.process = process
        self.folder = folder
        self.url = f"unix://{folder / 'podman.sock'}"
        self._finalizer = weakref.finalize(self, _stop_service, process, folder)

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(cls, podman: str) -> tuple[_PodmanService, Any]:
        """Start the service; returns it with a client that got its first answer."""
        folder = Path(tempfile.mkdtemp(prefix="aitbc-podman-"))
        log_path = folder / "service.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [podman, "system", "service", "--time=0", f"unix://{folder / 'podman.sock'}"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        service = cls(process, folder)
        deadline = time.monotonic() + SERVICE_START_S
        while (client := _client_if_answering(service.url)) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
                state = (
                    f"exited with {process.returncode}"
                    if process.poll() is not None
                    else f"did not answer within {SERVICE_START_S:g} s"
                )
                service.stop()
                raise ContainerEngineError(
                    f"podman system service (pid {process.pid}) {state}: "
                    f"{' | '.join(tail) or 'no output'}; check `podman info` (make install "
                    "writes the settings podman needs here)"
                )
            time.sleep(0.1)
        return service, client

    def stop(self) -> None:
        self._finalizer()


def _stop_service(process: subprocess.Popen[bytes], folder: Path) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=SERVICE_STOP_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=SERVICE_STOP_S)
    shutil.rmtree(folder, ignore_errors=True)


def _client(url: str) -> Any:
    return docker.DockerClient(base_url=url, version="auto", timeout=API_TIMEOUT_S)


def _client_if_answering(url: str) -> Any | None:
    """A client for ``url`` when the engine there answers a ping, else None."""
    try:
        client = _client(url)
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return None
    try:
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        client.close()
        return None
    return client


def _label_filter(labels: Mapping[str, str]) -> dict[str, list[str]]:
    return {"label": [f"{key}={value}" for key, value in labels.items()]}


def _label_text(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in labels.items()) or "(any)"


def _explanation(error: docker.errors.APIError) -> str:
    return str(error.explanation or error)
