"""The validator container (``platforms.validator_container``, the one the chart's pods run) as
the container spec the docker platform hands to the engine. Pure: no engine, no files.

The mapping, part by part:

* args: the same, after the image's entrypoint (``aitbc-node``);
* environment: the same names; the values written in (the container's name for the pod's,
  the run id for its namespace, the run's admin token for the Secret's);
* ports: the container shares the host's network, so each validator listens on ports of its
  own (in its ``node.yaml``) where a pod listens on the chart's: nothing is published;
* mounts: ``config`` is the validator's config folder on this host, read-only; ``data`` a named
  volume of its own (the pod's PersistentVolumeClaim); ``tmp`` a tmpfs (the pod's emptyDir);
* user and hardening: uid:gid 10001, read-only root file system, every capability dropped, no
  privilege escalation (``no-new-privileges``), as the chart's security contexts;
* probes: the liveness probe becomes the container's health check (the same GET on the ops
  port, period, timeout and failure threshold; the startup probe's window as its start period);
  readiness is what the platform waits for before the run starts (``/readyz``), as on local.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from orchestrator.external.container_engine import ContainerSpec, HealthCheck, Mount
from orchestrator.platforms.validator_container import (
    EnvSource,
    Probe,
    ValidatorContainer,
)

__all__ = ["CONTAINER_HOST", "ContainerPlace", "healthcheck", "validator_container_spec"]

CONTAINER_HOST = "127.0.0.1"
"""Where a validator container's ports are (host networking)."""
HEALTH_SCRIPT = (
    "__import__('urllib.request').request.urlopen('http://{host}:{port}{path}',timeout={timeout})"
)
"""The health check's Python, without a space: Podman 4.3's Docker API splits an exec-form
health check's arguments at spaces (found by trying)."""


@dataclass(frozen=True)
class ContainerPlace:
    """Where one validator's container lives on this host."""

    name: str
    """The container's name (ends with ``-<index>``: the node's index, as a pod's name)."""
    volume: str
    """Its named data volume."""
    config_dir: Path
    """Its config folder (``node.yaml``, ``genesis.json``)."""


def healthcheck(
    liveness: Probe, startup: Probe, ports: Mapping[Literal["grpc", "ops"], int]
) -> HealthCheck:
    """The engine health check that does what ``liveness`` does (an HTTP GET on this host),
    after ``startup``'s window."""
    if liveness.action != "http" or liveness.path is None:
        raise ValueError(f"liveness probe {liveness}: only an HTTP GET maps to a health check")
    port = ports[liveness.port]
    script = HEALTH_SCRIPT.format(
        host=CONTAINER_HOST, port=port, path=liveness.path, timeout=liveness.timeout_s
    )
    return HealthCheck(
        test=("python", "-c", script),
        interval_s=liveness.period_s,
        timeout_s=liveness.timeout_s,
        retries=liveness.failure_threshold,
        start_period_s=startup.period_s * startup.failure_threshold,
    )


def validator_container_spec(
    container: ValidatorContainer,
    place: ContainerPlace,
    *,
    image: str,
    env: Mapping[EnvSource, str],
    labels: Mapping[str, str],
) -> ContainerSpec:
    """The spec of ``container`` (listening on its validator's host ports) at ``place``, from
    ``image``; ``env`` gives the value of each environment source."""
    sources = {
        "config": Mount(str(place.config_dir), container.mount("config").path, read_only=True),
        "data": Mount(place.volume, container.mount("data").path, kind="volume"),
    }
    mounts = tuple(sources[mount.volume] for mount in container.mounts if mount.volume in sources)
    return ContainerSpec(
        name=place.name,
        image=image,
        command=container.args,
        env={variable.name: env[variable.source] for variable in container.env},
        mounts=mounts,
        user=f"{container.run_as_user}:{container.run_as_group}",
        labels=dict(labels),
        network_mode="host",
        read_only_root=container.read_only_root,
        tmpfs=(container.mount("tmp").path,),
        cap_drop=container.drop_capabilities,
        no_new_privileges=not container.allow_privilege_escalation,
        healthcheck=healthcheck(container.liveness, container.startup, container.ports),
    )
