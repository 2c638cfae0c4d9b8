"""The one module that touches helm-python-sdk (``import helm_python``): render and lint the
chart with the real Helm engine, and write the rendered manifests as plain files.

Rendered output is filtered before anyone applies it: NOTES.txt, helper templates, hook
templates (``helm.sh/hook`` annotation, e.g. ``helm test`` pods) and empty or whitespace-only
documents are dropped, and multi-document templates are split. With ``helm_binary`` the same
happens to the output of ``helm template``.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

from orchestrator.errors import AitbcTestnetError

__all__ = [
    "ChartValuesError",
    "HelmEngineError",
    "RenderedManifest",
    "lint_chart",
    "render_chart",
    "render_notes",
    "split_helm_template_output",
    "write_manifests",
]

HOOK_ANNOTATION = "helm.sh/hook"
"""Templates carrying this annotation run at install/test time, never as plain manifests."""

HELM_BINARY_TIMEOUT_S = 120.0
"""Upper bound for one `helm template` run (staging renders in well under 5 s)."""

LINT_RELEASE = "aitbc-lint"
LINT_NAMESPACE = "default"

# Helm's install order (pkg/release/util/kind_sorter.go), so that written manifests read and
# apply in dependency order. Kinds not listed come after, by name.
_INSTALL_ORDER = (
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
)
_KIND_RANK = {kind: rank for rank, kind in enumerate(_INSTALL_ORDER)}
_SOURCE_LINE = re.compile(r"^# Source: (?P<source>\S.*?)\s*$", re.MULTILINE)
_DOCUMENT_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)
_LINT_SEVERITY = {0: "unknown", 1: "info", 2: "warning", 3: "error"}


class HelmEngineError(AitbcTestnetError):
    """The chart could not be loaded, rendered, linted or written (exit 3)."""


class ChartValuesError(HelmEngineError):
    """The chart rejected the values: values.schema.json or a check in a template (exit 2)."""

    exit_code = 2


@dataclass(frozen=True)
class RenderedManifest:
    """One Kubernetes object rendered from the chart."""

    source: str
    """Template it came from, e.g. ``aitbc-testnet/templates/statefulset.yaml``."""
    kind: str
    name: str
    body: dict[str, Any]
    """The object, as parsed from the rendered YAML."""


def render_chart(
    chart_dir: Path,
    values: Mapping[str, Any],
    *,
    release: str,
    namespace: str,
    helm_binary: Path | None = None,
) -> list[RenderedManifest]:
    """Render ``chart_dir`` with ``values`` as release ``release`` in ``namespace``.

    Uses the Helm engine in-process (helm-python-sdk); with ``helm_binary`` runs
    ``helm template`` instead. Returns the applicable objects in Helm's install order.
    Raises ChartValuesError when the chart rejects the values, HelmEngineError otherwise.
    """
    chart_dir = _existing_chart(chart_dir)
    plain_values = _plain_values(values)
    _check_release_name(release)
    if helm_binary is None:
        sources = _render_in_process(chart_dir, plain_values, release, namespace)
    else:
        sources = _render_with_binary(helm_binary, chart_dir, plain_values, release, namespace)
    return _manifests_from_sources(sources)


def render_notes(
    chart_dir: Path, values: Mapping[str, Any], *, release: str, namespace: str
) -> str:
    """The chart's NOTES.txt rendered for these values (how to reach Prometheus, Grafana and
    status), or "" when the chart has none. Raises like render_chart."""
    chart_dir = _existing_chart(chart_dir)
    _check_release_name(release)
    sources = _render_in_process(chart_dir, _plain_values(values), release, namespace)
    notes = [text for source, text in sorted(sources.items()) if source.endswith("/NOTES.txt")]
    return notes[0].strip() + "\n" if notes else ""


def lint_chart(chart_dir: Path, values: Mapping[str, Any]) -> list[str]:
    """Lint ``chart_dir`` with ``values`` using Helm's linter; return its messages
    (``"<severity>: <path>: <message>"``, info and warnings included).

    The chart is rendered first, because Helm's lint mode downgrades a template's ``fail``
    (e.g. authorities > validators) to a log line. Raises ChartValuesError/HelmEngineError
    when rendering fails or the linter reports errors.
    """
    chart_dir = _existing_chart(chart_dir)
    plain_values = _plain_values(values)
    _render_in_process(chart_dir, plain_values, LINT_RELEASE, LINT_NAMESPACE)
    try:
        report = helm_python.lint(chart_dir, plain_values, namespace=LINT_NAMESPACE)
    except helm_python.HelmError as error:
        raise HelmEngineError(
            f"helm lint could not run on chart {chart_dir}: {error.detail.strip()}; "
            "check that the chart directory is complete"
        ) from error
    messages = [
        f"{_LINT_SEVERITY.get(int(entry.get('severity', 0)), 'unknown')}: "
        f"{entry.get('path', '')}: {str(entry.get('error', '')).strip()}"
        for entry in report.get("messages", [])
    ]
    errors = [str(error).strip() for error in report.get("errors", [])]
    if errors:
        raise HelmEngineError(
            f"helm lint found {len(errors)} error(s) in chart {chart_dir}:\n- "
            + "\n- ".join(errors)
            + "\nfix the chart or the values it was linted with"
        )
    return messages


def write_manifests(manifests: Iterable[RenderedManifest], out_dir: Path) -> list[Path]:
    """Write one YAML file per manifest into ``out_dir`` (created if missing), named
    ``<kind>-<name>.yaml`` in lower case, so a re-render overwrites the same files. Files in
    ``out_dir`` that no manifest names are left alone. Returns the paths in manifest order.
    """
    manifests = list(manifests)
    names: dict[str, RenderedManifest] = {}
    for manifest in manifests:
        file_name = f"{manifest.kind.lower()}-{manifest.name}.yaml"
        if file_name in names:
            other = names[file_name]
            raise HelmEngineError(
                f"two manifests would both be written to {file_name}: {other.kind}/{other.name} "
                f"from {other.source} and {manifest.kind}/{manifest.name} from "
                f"{manifest.source}; give them different names"
            )
        names[file_name] = manifest
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise HelmEngineError(
            f"cannot create the manifest directory {out_dir}: {error.strerror}; "
            "choose a writable --out directory"
        ) from error
    written: list[Path] = []
    for file_name, manifest in names.items():
        path = out_dir / file_name
        text = f"# Source: {manifest.source}\n" + _dump_yaml(manifest.body)
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as error:
            raise HelmEngineError(
                f"cannot write {path}: {error.strerror}; choose a writable --out directory"
            ) from error
        written.append(path)
    return written


# --- rendering -------------------------------------------------------------------------------


def _render_in_process(
    chart_dir: Path, values: dict[str, Any], release: str, namespace: str
) -> dict[str, str]:
    try:
        with helm_python.Chart.load(chart_dir) as chart:
            return chart.render(values, name=release, namespace=namespace, is_install=True)
    except helm_python.HelmValuesError as error:
        raise ChartValuesError(_values_message(chart_dir, error.detail)) from error
    except helm_python.HelmRenderError as error:
        raise _render_error(chart_dir, error.detail) from error
    except helm_python.HelmChartLoadError as error:
        raise HelmEngineError(
            f"Helm cannot load the chart at {chart_dir}: {error.detail.strip()}; "
            "check Chart.yaml and the templates"
        ) from error
    except helm_python.HelmError as error:
        raise HelmEngineError(
            f"the Helm engine failed on chart {chart_dir}: {error.detail.strip()}"
        ) from error


def _render_with_binary(
    helm_binary: Path,
    chart_dir: Path,
    values: dict[str, Any],
    release: str,
    namespace: str,
) -> dict[str, str]:
    with tempfile.TemporaryDirectory(prefix="aitbc-helm-") as scratch:
        values_file = Path(scratch) / "values.json"  # JSON is YAML: helm reads it with -f
        values_file.write_text(json.dumps(values), encoding="utf-8")
        command = [
            str(helm_binary),
            "template",
            release,
            str(chart_dir),
            "--namespace",
            namespace,
            "--values",
            str(values_file),
        ]
        try:
            completed = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=HELM_BINARY_TIMEOUT_S,
                check=False,
            )
        except FileNotFoundError as error:
            raise HelmEngineError(
                f"helm binary {helm_binary} not found; pass the path of an installed helm "
                "(v3.8+), or leave --helm-binary out to use the built-in Helm engine"
            ) from error
        except PermissionError as error:
            raise HelmEngineError(
                f"helm binary {helm_binary} is not executable; chmod +x it or pass another path"
            ) from error
        except subprocess.TimeoutExpired as error:
            raise HelmEngineError(
                f"`helm template` on {chart_dir} did not finish within "
                f"{HELM_BINARY_TIMEOUT_S:.0f} s; check the helm binary {helm_binary}"
            ) from error
    if completed.returncode != 0:
        detail = completed.stderr.strip() or completed.stdout.strip()
        if "don't meet the specifications of the schema" in detail or "values:" in detail:
            raise ChartValuesError(_values_message(chart_dir, detail))
        raise HelmEngineError(
            f"`helm template` on {chart_dir} exited {completed.returncode}: {detail}"
        )
    return split_helm_template_output(completed.stdout)


def split_helm_template_output(text: str) -> dict[str, str]:
    """Group the documents of ``helm template`` output by their ``# Source:`` comment
    (template path -> that template's documents), the shape the in-process engine returns."""
    sources: dict[str, list[str]] = {}
    for document in _DOCUMENT_SEPARATOR.split(text):
        match = _SOURCE_LINE.search(document)
        if match is None:
            if document.strip():
                raise HelmEngineError(
                    "a document in the `helm template` output has no '# Source:' line; "
                    f"it starts with {document.strip()[:80]!r}; use helm v3.8 or later"
                )
            continue
        sources.setdefault(match.group("source"), []).append(document)
    return {source: "\n---\n".join(documents) for source, documents in sources.items()}


# --- filtering and parsing --------------------------------------------------------------------


def _manifests_from_sources(sources: Mapping[str, str]) -> list[RenderedManifest]:
    manifests: list[RenderedManifest] = []
    seen: dict[tuple[str, str, str], str] = {}
    for source in sorted(sources):
        text = sources[source]
        if _is_not_a_manifest(source) or not text.strip():
            continue
        for body in _documents(source, text):
            if _is_hook(body):
                continue
            manifest = _manifest(source, body)
            namespace = str(body.get("metadata", {}).get("namespace", ""))
            key = (manifest.kind, namespace, manifest.name)
            if key in seen:
                raise HelmEngineError(
                    f"{manifest.kind}/{manifest.name} is rendered twice, by {seen[key]} and "
                    f"{source}; give one of them another name"
                )
            seen[key] = source
            manifests.append(manifest)
    return sorted(manifests, key=_install_rank)


def _is_not_a_manifest(source: str) -> bool:
    file_name = source.rsplit("/", 1)[-1]
    return file_name == "NOTES.txt" or file_name.startswith("_") or file_name.endswith(".tpl")


def _documents(source: str, text: str) -> list[dict[str, Any]]:
    try:
        documents = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as error:
        raise HelmEngineError(
            f"template {source} rendered invalid YAML: {error}; fix the template"
        ) from error
    bodies: list[dict[str, Any]] = []
    for document in documents:
        if document is None:
            continue
        if not isinstance(document, dict):
            raise HelmEngineError(
                f"template {source} rendered a YAML {type(document).__name__}, not an object; "
                "fix the template"
            )
        bodies.append(document)
    return bodies


def _is_hook(body: Mapping[str, Any]) -> bool:
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    return HOOK_ANNOTATION in annotations


def _manifest(source: str, body: dict[str, Any]) -> RenderedManifest:
    kind = body.get("kind")
    name = (body.get("metadata") or {}).get("name")
    if not isinstance(kind, str) or not kind or not isinstance(name, str) or not name:
        raise HelmEngineError(
            f"template {source} rendered an object without kind or metadata.name "
            f"(kind={kind!r}, name={name!r}); fix the template"
        )
    return RenderedManifest(source=source, kind=kind, name=name, body=body)


def _install_rank(manifest: RenderedManifest) -> tuple[int, str, str, str]:
    rank = _KIND_RANK.get(manifest.kind, len(_INSTALL_ORDER))
    return (rank, manifest.kind, manifest.name, manifest.source)


# --- helpers ----------------------------------------------------------------------------------


def _existing_chart(chart_dir: Path) -> Path:
    chart_dir = Path(chart_dir)
    if not (chart_dir / "Chart.yaml").is_file():
        raise HelmEngineError(
            f"no Helm chart at {chart_dir} (Chart.yaml missing); pass the chart directory, "
            "e.g. helm/aitbc-testnet"
        )
    return chart_dir


def _check_release_name(release: str) -> None:
    try:
        helm_python.validate_release_name(release)
    except helm_python.HelmError as error:
        raise ChartValuesError(
            f"release name {release!r} is not valid for Helm: {error.detail.strip()}; use at "
            "most 53 lower-case letters, digits and '-', starting and ending alphanumeric"
        ) from error


def _plain_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values as plain JSON types (the engine receives them as JSON)."""
    try:
        plain: dict[str, Any] = json.loads(json.dumps(_to_plain(values)))
    except (TypeError, ValueError) as error:
        raise ChartValuesError(
            f"chart values must be JSON types (dict, list, str, int, float, bool, None): "
            f"{error}; convert the value before rendering"
        ) from error
    return plain


def _to_plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _to_plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_to_plain(item) for item in value]
    return value


def _values_message(chart_dir: Path, detail: str) -> str:
    return (
        f"chart {chart_dir.name} rejected the values: {detail.strip()}\n"
        "fix the scenario (or --set) value named above"
    )


def _render_error(chart_dir: Path, detail: str) -> HelmEngineError:
    # The chart's own checks (templates/_helpers.tpl, aitbc.validateValues) start with "values:".
    if "values:" in detail:
        return ChartValuesError(_values_message(chart_dir, detail))
    return HelmEngineError(
        f"chart {chart_dir.name} failed to render: {detail.strip()}; fix the template named above"
    )


_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[valid-type,misc]
    """Multi-line strings (node.yaml, genesis.json, dashboards) as literal blocks, so written
    manifests read and diff like the files they hold."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump_yaml(body: Mapping[str, Any]) -> str:
    return yaml.dump(
        body,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 20,
    )
