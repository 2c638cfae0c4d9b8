"""Which cluster and how patiently: ``KubeAccess`` (kubeconfig file and context),
``resolve_kubeconfig`` and the retry policy of conflicts, terminating namespaces, 429 and 5xx."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

from orchestrator.external.kubernetes.errors import KubeConfigError

__all__ = ["DEFAULT_RETRY", "KubeAccess", "RetryPolicy", "context_names", "resolve_kubeconfig"]


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of conflicts (409), namespaces still terminating, 429 and 5xx."""

    attempts: int = 6
    """Tries in total (first one included)."""
    first_delay_s: float = 0.5
    """Delay after the first failure; doubles each time up to ``max_delay_s``."""
    max_delay_s: float = 8.0

    def delay_s(self, failures: int) -> float:
        return float(min(self.max_delay_s, self.first_delay_s * 2 ** max(0, failures - 1)))


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class KubeAccess:
    """Which cluster: a kubeconfig file (None: $KUBECONFIG, then ~/.kube/config, then the
    in-cluster service account) and a context in it (None: its current context)."""

    kubeconfig: Path | None = None
    context: str | None = None


def resolve_kubeconfig(access: KubeAccess, env: Mapping[str, str] = os.environ) -> Path | None:
    """The kubeconfig file that ``access`` means: its own, else the first existing file of
    $KUBECONFIG, else ~/.kube/config; None when there is none (in-cluster may still work).
    Raises KubeConfigError when an explicitly named file does not exist."""
    if access.kubeconfig is not None:
        path = Path(access.kubeconfig).expanduser()
        if not path.is_file():
            raise KubeConfigError(
                f"kubeconfig {path} does not exist; pass an existing file (--kubeconfig or "
                "AITBC_KUBECONFIG), or create a cluster, e.g. `kind create cluster`"
            )
        return path
    for entry in env.get("KUBECONFIG", "").split(os.pathsep):
        if entry and Path(entry).expanduser().is_file():
            return Path(entry).expanduser()
    default = Path(env.get("HOME", str(Path.home()))) / ".kube" / "config"
    return default if default.is_file() else None


def context_names(path: Path) -> list[str]:
    try:
        contexts, _ = k8s_config.list_kube_config_contexts(config_file=str(path))
    except (ConfigException, OSError, ValueError, TypeError, KeyError) as error:
        raise KubeConfigError(
            f"kubeconfig {path} cannot be read ({error}); fix it or choose another"
        ) from error
    return [str(context.get("name")) for context in contexts or []]
