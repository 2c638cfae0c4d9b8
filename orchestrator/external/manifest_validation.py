"""The one module over kubernetes-validate: check rendered manifests offline against the
OpenAPI schemas of several Kubernetes versions (strict: unknown fields are errors).

Kinds from CustomResourceDefinitions (PodMonitor, Chaos Mesh, ...) have no schema in the
package: they are reported as skipped, not failed. A built-in API group whose schema is
missing for a version (an apiVersion that version no longer serves) is an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import kubernetes_validate
from kubernetes_validate import utils as kv_utils
from kubernetes_validate.version import __version__ as KUBERNETES_VALIDATE_VERSION

from orchestrator.errors import AitbcTestnetError

__all__ = [
    "DEFAULT_KUBERNETES_VERSIONS",
    "ManifestLike",
    "UnsupportedKubernetesVersionError",
    "ValidationReport",
    "check_manifests",
    "supported_kubernetes_versions",
    "validate_manifests",
]

DEFAULT_KUBERNETES_VERSIONS: tuple[str, ...] = ("1.29", "1.30", "1.31", "1.32", "1.33")
"""The Kubernetes versions the chart supports (major.minor)."""

MAX_MESSAGE_CHARS = 300
"""Schema messages quote the offending value; a 500 KB genesis string is cut to this."""

_VERSION = re.compile(r"^v?(?P<major>\d+)\.(?P<minor>\d+)(?:\.\d+)?$")


class UnsupportedKubernetesVersionError(AitbcTestnetError):
    """A requested Kubernetes version has no schemas in the installed kubernetes-validate."""

    exit_code = 2


class ManifestLike(Protocol):
    """What validation needs of a manifest (``external.helm.RenderedManifest`` fits)."""

    @property
    def kind(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def body(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of validating manifests against several Kubernetes versions."""

    versions: tuple[str, ...]
    """The major.minor versions checked."""
    checked: int
    """Manifest x version pairs validated against a schema."""
    errors: tuple[str, ...]
    """``<kind>/<name>: Kubernetes <version>: <field>: <message>``, one per failure."""
    skipped: tuple[str, ...]
    """``<kind>/<name> (<apiVersion>): ...``: custom resources without a schema."""

    @property
    def ok(self) -> bool:
        return not self.errors


def supported_kubernetes_versions() -> tuple[str, ...]:
    """The major.minor versions whose schemas the installed kubernetes-validate ships."""
    found = {kv_utils.major_minor(version) for version in kv_utils.all_versions()}
    return tuple(sorted(found, key=_version_key))


def validate_manifests(
    manifests: Iterable[ManifestLike],
    kubernetes_versions: Iterable[str] = DEFAULT_KUBERNETES_VERSIONS,
) -> list[str]:
    """Validate every manifest against every version; return the errors (empty: all valid).

    Custom-resource kinds are skipped (see ``check_manifests`` for the list). Raises
    UnsupportedKubernetesVersionError when a version's schemas are not installed.
    """
    return list(check_manifests(manifests, kubernetes_versions).errors)


def check_manifests(
    manifests: Iterable[ManifestLike],
    kubernetes_versions: Iterable[str] = DEFAULT_KUBERNETES_VERSIONS,
) -> ValidationReport:
    """Validate every manifest against every version; return errors and skipped kinds."""
    versions = _checked_versions(kubernetes_versions)
    errors: list[str] = []
    skipped: list[str] = []
    checked = 0
    for manifest in manifests:
        label = f"{manifest.kind}/{manifest.name}"
        body = dict(manifest.body)
        api_version = str(body.get("apiVersion", ""))
        if not api_version or not body.get("kind"):
            errors.append(f"{label}: the object has no apiVersion or kind; fix its template")
            continue
        missing_in: list[str] = []
        for version in versions:
            outcome = _validate_one(label, body, version)
            if outcome is _NO_SCHEMA:
                missing_in.append(version)
            elif outcome is not None:
                errors.append(str(outcome))
            else:
                checked += 1
        if not missing_in:
            continue
        if _is_custom_resource(api_version):
            skipped.append(
                f"{label} ({api_version}): a custom resource; kubernetes-validate has no schema "
                f"for it, skipped for Kubernetes {', '.join(missing_in)}"
            )
        else:
            errors.extend(
                f"{label}: Kubernetes {version}: apiVersion {api_version} kind {manifest.kind} "
                "is not served by this version; use the API version that version serves"
                for version in missing_in
            )
    return ValidationReport(
        versions=versions, checked=checked, errors=tuple(errors), skipped=tuple(skipped)
    )


class _NoSchema:
    """Marker: the package has no schema for the object's kind/apiVersion in a version."""


_NO_SCHEMA = _NoSchema()


def _validate_one(label: str, body: dict[str, Any], version: str) -> str | _NoSchema | None:
    try:
        kubernetes_validate.validate(body, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return _NO_SCHEMA
    except kubernetes_validate.ValidationError as error:
        field = _field_path(error.absolute_path) or "(the object)"
        return f"{label}: Kubernetes {version}: {field}: {_short(error.message)}"
    except kubernetes_validate.InvalidSchemaError as error:
        return (
            f"{label}: Kubernetes {version}: kubernetes-validate "
            f"{KUBERNETES_VALIDATE_VERSION} has a broken schema: {error.message}; "
            "reinstall kubernetes-validate"
        )
    return None


def _checked_versions(requested: Iterable[str]) -> tuple[str, ...]:
    supported = supported_kubernetes_versions()
    versions: list[str] = []
    for raw in requested:
        match = _VERSION.match(str(raw).strip())
        if match is None:
            raise UnsupportedKubernetesVersionError(
                f"Kubernetes version {raw!r} is not a version; write it as major.minor, e.g. 1.33"
            )
        version = f"{int(match['major'])}.{int(match['minor'])}"
        if version not in supported:
            raise UnsupportedKubernetesVersionError(
                f"kubernetes-validate {KUBERNETES_VALIDATE_VERSION} has no schemas for "
                f"Kubernetes {version} (it has {supported[0]} to {supported[-1]}); upgrade it "
                f"(pip install -U kubernetes-validate) or leave {version} out of the versions"
            )
        if version not in versions:
            versions.append(version)
    if not versions:
        raise UnsupportedKubernetesVersionError(
            "no Kubernetes version to validate against; pass at least one, e.g. 1.33"
        )
    return tuple(versions)


def _is_custom_resource(api_version: str) -> bool:
    """Built-in groups are core (``v1``), dotless (``apps/v1``) or end in ``.k8s.io``."""
    if "/" not in api_version:
        return False
    group = api_version.split("/", 1)[0]
    return "." in group and not group.endswith(".k8s.io")


def _field_path(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _short(message: str) -> str:
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 3] + "..."


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))
