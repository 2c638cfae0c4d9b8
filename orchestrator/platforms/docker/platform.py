"""The docker platform: each validator a container of the node image, run through the Docker
Engine API (Docker, or Podman's ``podman system service``) by ``containers.ContainerRunner``;
Prometheus, Locust, the network files, readiness, node faults and the run state exactly as on
the local platform (``local.host.HostPlatform``, whose run directory layout it shares, plus
``net/containers/node-<i>/``: each container's config folder).

Containers share the host's network: validator i listens on 127.0.0.1 ports of its own
(``--base-port`` as on local), so Prometheus, Locust and the fault API reach them as they reach
local processes. Everything the run creates in the engine carries its run label; ``down``
removes its containers and volumes by that label and stops its processes by pid.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.platforms.docker.containers import ContainerRunner
from orchestrator.platforms.docker.image import image_reference
from orchestrator.platforms.local.host import HostPlatform
from orchestrator.platforms.local.runner import ValidatorRunner

__all__ = ["CONTAINERS_DIR", "DockerPlatform"]

CONTAINERS_DIR = "containers"
"""The containers' config folders, in the run's network folder."""


class DockerPlatform(HostPlatform):
    """Validator containers, Prometheus and Locust of one run directory (see the module
    docstring). ``image``: the node image (a reference or an id; default
    ``aitbc-testnet-node:<AITBC_IMAGE_TAG or version>``); ``engine_env``: where the engine is
    looked for (``DOCKER_HOST``, ``PATH``; default ``os.environ``)."""

    name = "docker"

    def __init__(
        self,
        run_dir: Path,
        *,
        image: str | None = None,
        engine_env: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        self._image = image_reference(image, os.environ if engine_env is None else engine_env)
        self._engine_env = engine_env
        super().__init__(run_dir, **options)

    def _make_runner(self) -> ValidatorRunner:
        self._containers = ContainerRunner(
            self._state_file, self.net_dir / CONTAINERS_DIR, self._image, self._engine_env
        )
        return self._containers

    @property
    def containers(self) -> ContainerRunner:
        """The validators' containers (their engine, specs, names)."""
        return self._containers

    def image_tag(self) -> str:
        """The node image the validators run (the reference recorded at deploy)."""
        return self._containers.image_reference()
