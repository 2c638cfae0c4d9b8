"""How the kubernetes platform reaches the cluster and runs the testnet: ``KubernetesOptions``
from CLI flags, else the ``AITBC_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from orchestrator.errors import UsageError
from orchestrator.external.kubernetes import KubeAccess

__all__ = [
    "CHAOS_CHOICES",
    "ENV_CHAOS",
    "ENV_CONTEXT",
    "ENV_IMAGE_TAG",
    "ENV_KUBECONFIG",
    "ENV_NAMESPACE_PREFIX",
    "ENV_PROMETHEUS_URL",
    "ENV_RELEASE",
    "KubernetesOptions",
]

ENV_KUBECONFIG = "AITBC_KUBECONFIG"
ENV_CONTEXT = "AITBC_KUBE_CONTEXT"
ENV_PROMETHEUS_URL = "AITBC_PROMETHEUS_URL"
ENV_CHAOS = "AITBC_CHAOS"
ENV_IMAGE_TAG = "AITBC_IMAGE_TAG"
ENV_NAMESPACE_PREFIX = "AITBC_NAMESPACE_PREFIX"
ENV_RELEASE = "AITBC_RELEASE"
CHAOS_CHOICES = ("none", "chaos-mesh")


@dataclass(frozen=True)
class KubernetesOptions:
    """How the kubernetes platform reaches the cluster and runs the testnet."""

    kubeconfig: Path | None = None
    """Kubeconfig file (None: $KUBECONFIG, then ~/.kube/config, then in-cluster)."""
    context: str | None = None
    """Context in the kubeconfig (None: its current context)."""
    namespace_prefix: str = "aitbc"
    """Each run gets the namespace ``<prefix>-<run id>`` (cut to 63 characters)."""
    prometheus_url: str | None = None
    """A Prometheus that scrapes the testnet (e.g. kube-prometheus-stack); None: deploy the
    chart's bundled Prometheus and reach it by port-forward."""
    chaos: Literal["none", "chaos-mesh"] = "none"
    """``chaos-mesh``: partitions, delays, loss and pauses as Chaos Mesh objects."""
    image_tag: str | None = None
    """Node image tag (None: the chart's default)."""
    release: str | None = None
    """Helm release name (None: the scenario name)."""
    ttl_s: float = 24 * 3600.0
    """The namespace's TTL annotation (a janitor deletes expired run namespaces)."""
    poll_s: float = 2.0
    """Status polling interval while waiting."""
    restart_timeout_s: float = 180.0
    """How long ``restart`` waits for the StatefulSet to bring a pod back and ready."""
    fault_transport: Literal["proxy", "port-forward"] = "proxy"
    """How the node fault API is reached (proxy falls back to port-forward on 401)."""
    in_cluster_endpoints: bool | None = None
    """Endpoints as cluster DNS names (True) or port-forwards (False); None: DNS names when
    running in a pod."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, **flags: Any) -> KubernetesOptions:
        """Options from CLI ``flags`` (None values ignored), else the AITBC_* variables."""
        given = {key: value for key, value in flags.items() if value is not None}
        kubeconfig = given.pop("kubeconfig", None) or env.get(ENV_KUBECONFIG) or None
        chaos = given.pop("chaos", None) or env.get(ENV_CHAOS) or "none"
        if chaos not in CHAOS_CHOICES:
            raise UsageError(
                f"chaos {chaos!r} ({ENV_CHAOS} or --chaos) is not one of {', '.join(CHAOS_CHOICES)}"
            )
        return cls(
            kubeconfig=Path(kubeconfig) if kubeconfig else None,
            context=given.pop("context", None) or env.get(ENV_CONTEXT) or None,
            namespace_prefix=given.pop("namespace_prefix", None)
            or env.get(ENV_NAMESPACE_PREFIX)
            or "aitbc",
            prometheus_url=given.pop("prometheus_url", None) or env.get(ENV_PROMETHEUS_URL) or None,
            chaos=chaos,  # type: ignore[arg-type]
            image_tag=given.pop("image_tag", None) or env.get(ENV_IMAGE_TAG) or None,
            release=given.pop("release", None) or env.get(ENV_RELEASE) or None,
            **given,
        )

    @property
    def access(self) -> KubeAccess:
        return KubeAccess(kubeconfig=self.kubeconfig, context=self.context)
