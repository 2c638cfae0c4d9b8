"""The validator container, defined once for every platform that runs the node image: the
chart's StatefulSet puts it in each validator pod (``helm/aitbc-testnet/templates/
statefulset.yaml``; ``kubernetes.chart_values`` passes its ports and probe timings as values)
and the docker platform runs it (``docker/containers.py``). ``validator_container()`` returns
it: command, environment, ports, mounts, user and hardening, probes. What differs between the
two is where things come from, never what they are: the chart reads the pod's name from the
downward API and the admin token from a Secret, the docker platform writes the values in; a pod
listens on the chart's ports, a container on the host's network on ports of its own.
``tests/chart/test_chart_validator_container.py`` renders the chart with the real Helm engine
and checks its validator container against the docker platform's, addresses aside.

Also the image both run: ``IMAGE_REPOSITORY`` with the tag ``AITBC_IMAGE_TAG``, by default this
package's version (what ``make image`` tags and the chart's ``image.tag`` default).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import metadata
from typing import Literal

__all__ = [
    "CONFIG_DIR",
    "CONFIG_FILE",
    "DATA_DIR",
    "DEFAULT_GRPC_PORT",
    "DEFAULT_OPS_PORT",
    "ENV_IMAGE_TAG",
    "GENESIS_FILE",
    "IMAGE_REPOSITORY",
    "RUN_AS",
    "TMP_DIR",
    "EnvSource",
    "EnvVar",
    "Probe",
    "ValidatorContainer",
    "VolumeMount",
    "default_image_reference",
    "package_version",
    "validator_container",
]

IMAGE_REPOSITORY = "aitbc-testnet-node"
"""The node image's name (``make image`` tags it ``<name>:<version>``; the chart's default)."""
ENV_IMAGE_TAG = "AITBC_IMAGE_TAG"
"""The node image tag to run (kubernetes and docker platforms); default: ``package_version()``."""
DISTRIBUTION = "aitbc-testnet"

CONFIG_DIR = "/etc/aitbc"
"""The config folder (read-only): ``node.yaml`` and ``genesis.json``."""
CONFIG_FILE = "node.yaml"
GENESIS_FILE = "genesis.json"
DATA_DIR = "/data"
"""The validator's data (chain, safety state): a volume that outlives the container."""
TMP_DIR = "/tmp"
"""The only writable folder besides the data (the root file system is read-only; HOME)."""
RUN_AS = 10001
"""uid and gid of the node (the image's USER)."""
DEFAULT_GRPC_PORT = 7000
DEFAULT_OPS_PORT = 9100


class EnvSource(StrEnum):
    """Where an environment variable's value comes from (each platform has its own way)."""

    POD_NAME = "pod-name"
    """The pod's name (downward API) / the container's name: ends with ``-<index>``, from
    which the node takes its validator index (``key.index: auto``)."""
    NAMESPACE = "namespace"
    """The pod's namespace / the run id (a docker run's namespace)."""
    ADMIN_TOKEN = "admin-token"
    """The fault API's bearer token (a Secret / the run's token)."""


@dataclass(frozen=True)
class EnvVar:
    name: str
    source: EnvSource


@dataclass(frozen=True)
class VolumeMount:
    """``volume`` mounted at ``path``: ``config`` (the config folder, read-only), ``data``
    (the validator's own persistent volume), ``tmp`` (in memory, gone with the container)."""

    volume: Literal["config", "data", "tmp"]
    path: str
    read_only: bool = False


@dataclass(frozen=True)
class Probe:
    """A Kubernetes probe: ``action`` ``http`` (GET ``path``) or ``grpc`` (``grpc.health.v1``)
    on the port named ``port``, with its timings (seconds; 0 initial delay is left out of the
    chart values, as Kubernetes' default)."""

    action: Literal["http", "grpc"]
    port: Literal["grpc", "ops"]
    period_s: int
    timeout_s: int
    failure_threshold: int
    initial_delay_s: int = 0
    path: str | None = None

    def timings(self) -> dict[str, int]:
        """The probe's timings as the chart's ``probes.<name>`` values take them."""
        timings = {"initialDelaySeconds": self.initial_delay_s} if self.initial_delay_s else {}
        return {
            **timings,
            "periodSeconds": self.period_s,
            "timeoutSeconds": self.timeout_s,
            "failureThreshold": self.failure_threshold,
        }


@dataclass(frozen=True)
class ValidatorContainer:
    """One validator's container (see the module docstring)."""

    args: tuple[str, ...]
    """After the image's entrypoint (``aitbc-node``)."""
    env: tuple[EnvVar, ...]
    ports: Mapping[Literal["grpc", "ops"], int]
    mounts: tuple[VolumeMount, ...]
    startup: Probe
    readiness: Probe
    liveness: Probe
    run_as_user: int = RUN_AS
    run_as_group: int = RUN_AS
    read_only_root: bool = True
    allow_privilege_escalation: bool = False
    drop_capabilities: tuple[str, ...] = ("ALL",)

    def mount(self, volume: str) -> VolumeMount:
        """The mount of ``volume`` (``config``, ``data``, ``tmp``)."""
        return next(mount for mount in self.mounts if mount.volume == volume)

    def probes(self) -> dict[str, Probe]:
        """The probes by the chart's names (``probes.<name>``)."""
        return {"startup": self.startup, "readiness": self.readiness, "liveness": self.liveness}


def validator_container(
    *, grpc_port: int = DEFAULT_GRPC_PORT, ops_port: int = DEFAULT_OPS_PORT
) -> ValidatorContainer:
    """The validator container listening on ``grpc_port`` and ``ops_port``."""
    return ValidatorContainer(
        args=("run", "--config", f"{CONFIG_DIR}/{CONFIG_FILE}"),
        env=(
            EnvVar("POD_NAME", EnvSource.POD_NAME),
            EnvVar("POD_NAMESPACE", EnvSource.NAMESPACE),
            EnvVar("AITBC_ADMIN_TOKEN", EnvSource.ADMIN_TOKEN),
        ),
        ports={"grpc": grpc_port, "ops": ops_port},
        mounts=(
            VolumeMount("config", CONFIG_DIR, read_only=True),
            VolumeMount("data", DATA_DIR),
            VolumeMount("tmp", TMP_DIR),
        ),
        # Readiness: the native gRPC probe against grpc.health.v1 on the gRPC port; liveness and
        # startup: GET /healthz on the ops port, startup giving a node (genesis load, sync) up
        # to 2 minutes before liveness counts.
        startup=Probe(
            "http", "ops", period_s=2, timeout_s=3, failure_threshold=60, path="/healthz",
        ),
        readiness=Probe(
            "grpc", "grpc", period_s=5, timeout_s=3, failure_threshold=3, initial_delay_s=2,
        ),
        liveness=Probe(
            "http", "ops", period_s=10, timeout_s=3, failure_threshold=6, initial_delay_s=10,
            path="/healthz",
        ),
    )  # fmt: skip


def package_version() -> str:
    """This orchestrator's version (pyproject's), the default node image tag."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0"


def default_image_reference(env: Mapping[str, str] = os.environ) -> str:
    """``aitbc-testnet-node:<AITBC_IMAGE_TAG or this package's version>``."""
    return f"{IMAGE_REPOSITORY}:{env.get(ENV_IMAGE_TAG) or package_version()}"
