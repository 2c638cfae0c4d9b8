"""The records of ``container_engine`` and how they read and write the Docker Engine API's
documents: ``ContainerSpec`` (what to run; ``spec_from_inspect`` reads it back from an
inspected container), ``Mount``, ``HealthCheck``, ``ContainerState``, ``ImageInfo``. Pure: no
engine calls here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "NO_NEW_PRIVILEGES",
    "ContainerSpec",
    "ContainerState",
    "HealthCheck",
    "ImageInfo",
    "Mount",
    "container_state",
    "healthcheck_config",
    "spec_from_inspect",
]

NO_NEW_PRIVILEGES = "no-new-privileges"
_NANOSECONDS = 1_000_000_000
_MOUNT_KINDS = ("bind", "volume")
_ENGINE_TMPFS = frozenset({"/run", "/var/tmp"})
"""Folders Podman mounts as tmpfs in every read-only container by itself."""


@dataclass(frozen=True)
class Mount:
    """``source`` mounted at ``target``: a host path (``kind="bind"``) or a named volume
    (``kind="volume"``; created with the container's labels when missing)."""

    source: str
    target: str
    kind: Literal["bind", "volume"] = "bind"
    read_only: bool = False


@dataclass(frozen=True)
class HealthCheck:
    """The engine's health check of a container: ``test`` (exec form, run in the container)
    every ``interval_s``, failing after ``timeout_s``; unhealthy after ``retries`` failures in
    a row; failures in the first ``start_period_s`` do not count."""

    test: tuple[str, ...]
    interval_s: float
    timeout_s: float
    retries: int
    start_period_s: float = 0.0


@dataclass(frozen=True)
class ContainerSpec:
    """One container to run. ``command`` follows the entrypoint (``entrypoint`` None: the
    image's); ``user`` is ``uid[:gid]`` (None: the image's USER); ``network_mode`` "host" shares
    the host's network (the only kind this project's machines allow traffic on).

    Hardening, as a restricted pod security context: ``read_only_root`` (the image's file
    system read-only; ``tmpfs`` lists the writable in-memory folders), ``cap_drop``
    (capabilities removed, e.g. ``("ALL",)``), ``no_new_privileges`` (no setuid gains);
    ``healthcheck`` replaces the image's HEALTHCHECK (None: the image's)."""

    name: str
    image: str
    command: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    user: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    network_mode: str = "host"
    read_only_root: bool = False
    tmpfs: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    no_new_privileges: bool = False
    healthcheck: HealthCheck | None = None


@dataclass(frozen=True)
class ContainerState:
    """What the engine says about a container. ``status``: created, running, paused,
    restarting, exited or dead; ``exit_code`` is None until it has exited; ``pid`` is its main
    process on the engine's host while it runs (else None)."""

    name: str
    id: str
    image: str
    status: str
    exit_code: int | None
    pid: int | None
    labels: Mapping[str, str]

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass(frozen=True)
class ImageInfo:
    id: str
    tags: tuple[str, ...]
    size_bytes: int


def container_state(container: Any) -> ContainerState:
    """The state of a ``docker`` package container object."""
    attrs = container.attrs
    state = attrs.get("State") or {}
    status = str(state.get("Status") or container.status)
    exited = status in ("exited", "dead")
    config = attrs.get("Config") or {}
    return ContainerState(
        name=str(attrs.get("Name", container.name)).lstrip("/"),
        id=str(container.id),
        image=str(config.get("Image", "")),
        status=status,
        exit_code=int(state.get("ExitCode", -1)) if exited else None,
        pid=int(state.get("Pid") or 0) or None,
        labels=dict(config.get("Labels") or {}),
    )


def healthcheck_config(check: HealthCheck) -> dict[str, Any]:
    """``check`` as the ``docker`` package's ``healthcheck`` argument."""
    return {
        "test": ["CMD", *check.test],
        "interval": round(check.interval_s * _NANOSECONDS),
        "timeout": round(check.timeout_s * _NANOSECONDS),
        "retries": check.retries,
        "start_period": round(check.start_period_s * _NANOSECONDS),
    }


def spec_from_inspect(attrs: Mapping[str, Any], env_names: set[str]) -> ContainerSpec:
    """The spec an inspected container runs with (see ``ContainerEngine.inspect``)."""
    config = attrs.get("Config") or {}
    host = attrs.get("HostConfig") or {}
    env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
    check = config.get("Healthcheck") or {}
    test = list(check.get("Test") or [])
    healthcheck = None
    if test[:1] == ["CMD"]:
        healthcheck = HealthCheck(
            test=tuple(test[1:]),
            interval_s=int(check.get("Interval") or 0) / _NANOSECONDS,
            timeout_s=int(check.get("Timeout") or 0) / _NANOSECONDS,
            retries=int(check.get("Retries") or 0),
            start_period_s=int(check.get("StartPeriod") or 0) / _NANOSECONDS,
        )
    mounts = sorted(
        (_mount(item) for item in attrs.get("Mounts") or [] if item.get("Type") in _MOUNT_KINDS),
        key=lambda mount: mount.target,
    )
    entrypoint = config.get("Entrypoint")
    if isinstance(entrypoint, str):
        entrypoint = [entrypoint]
    return ContainerSpec(
        name=str(attrs.get("Name", "")).lstrip("/"),
        image=str(attrs.get("Image", "")),
        command=tuple(config.get("Cmd") or ()),
        entrypoint=None if entrypoint is None else tuple(entrypoint),
        env={name: value for name, value in env.items() if name in env_names},
        mounts=tuple(mounts),
        user=config.get("User") or None,
        labels=dict(config.get("Labels") or {}),
        network_mode=str(host.get("NetworkMode", "")),
        read_only_root=bool(host.get("ReadonlyRootfs")),
        tmpfs=tuple(sorted(set(host.get("Tmpfs") or {}) - _ENGINE_TMPFS)),
        cap_drop=tuple(host.get("CapDrop") or ()),
        no_new_privileges=NO_NEW_PRIVILEGES in (host.get("SecurityOpt") or ()),
        healthcheck=healthcheck,
    )


def _mount(item: Mapping[str, Any]) -> Mount:
    if item.get("Type") == "volume":
        return Mount(str(item.get("Name")), str(item.get("Destination")), "volume")
    return Mount(
        str(item.get("Source")), str(item.get("Destination")), read_only=not item.get("RW", True)
    )
