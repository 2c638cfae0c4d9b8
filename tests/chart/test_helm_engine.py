"""orchestrator.external.helm over a small chart made for the purpose and the real Helm engine:
what is filtered, how documents are split and named, and what each failure says."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.external.helm import (
    ChartValuesError,
    HelmEngineError,
    RenderedManifest,
    lint_chart,
    render_chart,
    split_helm_template_output,
    write_manifests,
)

TEMPLATES = {
    "NOTES.txt": "Installed {{ .Release.Name }}.\n",
    "_helpers.tpl": '{{- define "probe.name" -}}{{ .Release.Name }}-probe{{- end -}}\n',
    "configmaps.yaml": (
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ include "probe.name" . }}-a\n'
        "data:\n  n: {{ .Values.n | quote }}\n"
        "---\n"
        "# a document holding only a comment\n"
        "---\n"
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ include "probe.name" . }}-b\n'
    ),
    "disabled.yaml": "{{- if .Values.extra }}\napiVersion: v1\nkind: Secret\n"
    "metadata:\n  name: extra\n{{- end }}\n",
    "whitespace.yaml": "   \n\n",
    "service.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\n"
    "spec:\n  ports: [{port: 80}]\n",
    "hook.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hook\n  annotations:\n"
    '    "helm.sh/hook": pre-install\nspec:\n  containers: [{name: c, image: busybox}]\n',
}


@pytest.fixture()
def probe_chart(tmp_path: Path) -> Path:
    chart = tmp_path / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("n: 1\nextra: false\n")
    for name, text in TEMPLATES.items():
        (chart / "templates" / name).write_text(text)
    return chart


def test_render_filters_notes_helpers_hooks_and_empty_documents(probe_chart: Path) -> None:
    manifests = render_chart(probe_chart, {"n": 5}, release="demo", namespace="ns")
    assert [(m.kind, m.name, m.source) for m in manifests] == [
        ("ConfigMap", "demo-probe-a", "probe/templates/configmaps.yaml"),
        ("ConfigMap", "demo-probe-b", "probe/templates/configmaps.yaml"),
        ("Service", "demo", "probe/templates/service.yaml"),
    ]
    assert manifests[0].body["data"] == {"n": "5"}


def test_a_disabled_template_appears_once_enabled(probe_chart: Path) -> None:
    manifests = render_chart(probe_chart, {"extra": True}, release="demo", namespace="ns")
    assert ("Secret", "extra") in {(m.kind, m.name) for m in manifests}


def test_template_errors_name_the_template(probe_chart: Path) -> None:
    (probe_chart / "templates" / "broken.yaml").write_text("{{ .Values.missing.deeper }}\n")
    with pytest.raises(HelmEngineError, match=r"broken\.yaml") as caught:
        render_chart(probe_chart, {}, release="demo", namespace="ns")
    assert not isinstance(caught.value, ChartValuesError)
    with pytest.raises(HelmEngineError, match=r"broken\.yaml"):
        lint_chart(probe_chart, {})


def test_a_template_rendering_a_non_object_is_an_error(probe_chart: Path) -> None:
    (probe_chart / "templates" / "list.yaml").write_text("- just\n- a list\n")
    with pytest.raises(HelmEngineError, match=r"list\.yaml rendered a YAML list"):
        render_chart(probe_chart, {}, release="demo", namespace="ns")


def test_missing_chart_and_bad_release_name_are_clear(probe_chart: Path, tmp_path: Path) -> None:
    with pytest.raises(HelmEngineError, match=r"Chart\.yaml missing"):
        render_chart(tmp_path / "nowhere", {}, release="demo", namespace="ns")
    with pytest.raises(ChartValuesError, match="release name 'Not_Valid'"):
        render_chart(probe_chart, {}, release="Not_Valid", namespace="ns")


def test_values_must_be_json_types(probe_chart: Path) -> None:
    with pytest.raises(ChartValuesError, match="JSON types"):
        render_chart(probe_chart, {"n": {1, 2}}, release="demo", namespace="ns")


def test_lint_returns_messages(probe_chart: Path) -> None:
    messages = lint_chart(probe_chart, {})
    assert "info: Chart.yaml: icon is recommended" in messages


def test_helm_binary_errors_say_what_to_do(probe_chart: Path, tmp_path: Path) -> None:
    with pytest.raises(HelmEngineError, match="not found; pass the path of an installed helm"):
        render_chart(
            probe_chart, {}, release="demo", namespace="ns", helm_binary=tmp_path / "no-helm"
        )
    with pytest.raises(HelmEngineError, match="exited 1"):
        render_chart(probe_chart, {}, release="demo", namespace="ns", helm_binary=Path("false"))


def test_helm_template_output_is_grouped_by_source() -> None:
    output = (
        "---\n# Source: probe/templates/service.yaml\napiVersion: v1\nkind: Service\n"
        "metadata:\n  name: demo\n"
        "---\n# Source: probe/templates/configmaps.yaml\napiVersion: v1\nkind: ConfigMap\n"
        "metadata:\n  name: a\n"
        "---\n# Source: probe/templates/configmaps.yaml\napiVersion: v1\nkind: ConfigMap\n"
        "metadata:\n  name: b\n"
    )
    grouped = split_helm_template_output(output)
    assert sorted(grouped) == ["probe/templates/configmaps.yaml", "probe/templates/service.yaml"]
    names = [
        d["metadata"]["name"]
        for d in yaml.safe_load_all(grouped["probe/templates/configmaps.yaml"])
    ]
    assert names == ["a", "b"]
    with pytest.raises(HelmEngineError, match="no '# Source:' line"):
        split_helm_template_output("apiVersion: v1\nkind: ConfigMap\n")


def manifest(kind: str, name: str) -> RenderedManifest:
    body = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}}
    return RenderedManifest(source=f"t/{name}.yaml", kind=kind, name=name, body=body)


def test_write_manifests_names_files_by_kind_and_name(tmp_path: Path) -> None:
    out = tmp_path / "out" / "nested"
    paths = write_manifests([manifest("Service", "a"), manifest("ConfigMap", "a")], out)
    assert [p.name for p in paths] == ["service-a.yaml", "configmap-a.yaml"]
    assert paths[0].read_text().startswith("# Source: t/a.yaml\n")
    assert yaml.safe_load(paths[1].read_text())["kind"] == "ConfigMap"


def test_write_manifests_refuses_two_objects_for_one_file(tmp_path: Path) -> None:
    with pytest.raises(HelmEngineError, match=r"both be written to service-a\.yaml"):
        write_manifests([manifest("Service", "a"), manifest("Service", "a")], tmp_path)
    assert list(tmp_path.iterdir()) == []
