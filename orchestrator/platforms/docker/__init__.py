"""The ``docker`` platform (``platform.py``): validators as containers of the node image through
the Docker Engine API (Docker, or Podman's API service), Prometheus and Locust as on the local
platform, whose parts it builds on."""

from orchestrator.platforms.docker.platform import DockerPlatform

__all__ = ["DockerPlatform"]
