"""Typed errors of the Kubernetes API (all PlatformError, exit 3): ``KubeConfigError`` (no
kubeconfig, unknown context), ``KubeUnauthorizedError`` (401), ``KubeForbiddenError`` (403),
``KubeNotFoundError`` (404), ``KubeConflictError`` (409 after the retries), ``KubeApiError``
otherwise; ``api_error`` turns an HTTP status and body into the right one, with what to do."""

from __future__ import annotations

import json

from orchestrator.errors import PlatformError

__all__ = [
    "KubeApiError",
    "KubeConfigError",
    "KubeConflictError",
    "KubeForbiddenError",
    "KubeNotFoundError",
    "KubeUnauthorizedError",
    "api_error",
    "error_body",
]


class KubeApiError(PlatformError):
    """A Kubernetes API call failed (exit 3). ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class KubeConfigError(KubeApiError):
    """No usable kubeconfig or context."""


class KubeUnauthorizedError(KubeApiError):
    """401: the API server does not accept the kubeconfig's credentials."""


class KubeForbiddenError(KubeApiError):
    """403: the credentials may not do this (RBAC)."""


class KubeNotFoundError(KubeApiError):
    """404: the object (or the kind) does not exist."""


class KubeConflictError(KubeApiError):
    """409 still answered after every retry."""


def error_body(error: Exception) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return str(body or "")


def status_message(body: str) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return body.strip()[:300]
    if isinstance(document, dict):
        return str(document.get("message") or document.get("reason") or "").strip()[:300]
    return body.strip()[:300]


def api_error(what: str, status: int, body: str, context: str | None) -> KubeApiError:
    message = status_message(body)
    who = f"the kubeconfig's user (context {context})" if context else "the kubeconfig's user"
    if status == 401:
        return KubeUnauthorizedError(
            f"cannot {what}: the API server rejected the credentials (401 Unauthorized: "
            f"{message}); refresh them (e.g. re-run your cloud's get-credentials, or "
            "`kind export kubeconfig`)",
            401,
        )
    if status == 403:
        return KubeForbiddenError(
            f"cannot {what}: 403 Forbidden: {message}; {who} needs RBAC permission for it "
            "(namespaces create/delete, the chart's kinds, pods/proxy, pods/portforward, "
            "pods/log); ask a cluster admin or use a kubeconfig that has it",
            403,
        )
    if status == 404:
        return KubeNotFoundError(f"cannot {what}: 404 Not Found: {message}", 404)
    if status == 409:
        return KubeConflictError(
            f"cannot {what}: 409 Conflict after retries: {message}; another writer is "
            "changing the same object, or the namespace is still terminating: retry later",
            409,
        )
    return KubeApiError(f"cannot {what}: HTTP {status}: {message}", status)
