"""The one narrow module over the official ``kubernetes`` client (a package: the API in
``api.py``, port-forward tunnels, plain records, typed errors, cluster access)."""

from orchestrator.external.http_reply import HttpReply
from orchestrator.external.kubernetes.access import (
    DEFAULT_RETRY,
    KubeAccess,
    RetryPolicy,
    resolve_kubeconfig,
)
from orchestrator.external.kubernetes.api import FIELD_MANAGER, KubeApi
from orchestrator.external.kubernetes.errors import (
    KubeApiError,
    KubeConfigError,
    KubeConflictError,
    KubeForbiddenError,
    KubeNotFoundError,
    KubeUnauthorizedError,
)
from orchestrator.external.kubernetes.models import PodState, StatefulSetState
from orchestrator.external.kubernetes.portforward import PortForwardTunnel

__all__ = [
    "DEFAULT_RETRY",
    "FIELD_MANAGER",
    "HttpReply",
    "KubeAccess",
    "KubeApi",
    "KubeApiError",
    "KubeConfigError",
    "KubeConflictError",
    "KubeForbiddenError",
    "KubeNotFoundError",
    "KubeUnauthorizedError",
    "PodState",
    "PortForwardTunnel",
    "RetryPolicy",
    "StatefulSetState",
    "resolve_kubeconfig",
]
