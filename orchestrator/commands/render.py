"""``aitbc-testnet render``: the Helm chart rendered for a scenario into plain manifests.

Scenario -> plan (platform kubernetes) -> real genesis -> chart values -> the Helm engine
(in-process helm-python-sdk, or ``--helm-binary``) -> filtered manifests (no NOTES, no hooks,
no empty documents) -> Helm lint -> kubernetes-validate for every requested Kubernetes version
-> one YAML file per object in ``--out``. Exit 2 for bad input (scenario, flags, values the
chart rejects), 3 when the chart engine fails or a rendered manifest is invalid.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.commands.options import PlatformName, ScenarioArgument, SetOption, load_plan
from orchestrator.external.helm import (
    HelmEngineError,
    RenderedManifest,
    lint_chart,
    render_chart,
    write_manifests,
)
from orchestrator.external.manifest_validation import DEFAULT_KUBERNETES_VERSIONS, check_manifests
from orchestrator.platforms.kubernetes.chart_values import (
    CHART_DIR,
    ChartSettings,
    apply_chart_sets,
    chart_values,
    make_genesis,
)

__all__ = ["RenderFigures", "RenderResult", "register", "render_scenario"]


@dataclass(frozen=True)
class RenderFigures:
    """What one render produced and how long each stage took (seconds)."""

    validators: int
    authorities: int
    manifests: int
    genesis_bytes: int
    genesis_validators: int
    genesis_s: float
    render_s: float
    lint_s: float
    validate_s: float
    write_s: float
    total_s: float


@dataclass(frozen=True)
class RenderResult:
    files: tuple[Path, ...]
    manifests: tuple[RenderedManifest, ...]
    lint_messages: tuple[str, ...]
    kubernetes_versions: tuple[str, ...]
    validated: int
    skipped: tuple[str, ...]
    figures: RenderFigures

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [str(path) for path in self.files],
            "objects": [f"{m.kind}/{m.name}" for m in self.manifests],
            "lint": list(self.lint_messages),
            "kubernetes_versions": list(self.kubernetes_versions),
            "validated": self.validated,
            "skipped": list(self.skipped),
            "figures": self.figures.__dict__,
        }


def render_scenario(
    scenario: str,
    out_dir: Path,
    *,
    sets: list[str] | None = None,
    chart_sets: list[str] | None = None,
    helm_binary: Path | None = None,
    namespace: str | None = None,
    release: str | None = None,
    image_tag: str | None = None,
    kubernetes_versions: tuple[str, ...] = DEFAULT_KUBERNETES_VERSIONS,
    loadgen: bool = True,
    chart_dir: Path = CHART_DIR,
) -> RenderResult:
    """Render ``scenario`` into ``out_dir`` (see the module docstring). Raises
    ScenarioError/UsageError/ChartValuesError (exit 2) or HelmEngineError (exit 3)."""
    started = time.perf_counter()
    # The run id reaches the Locust settings: the scenario name keeps re-renders identical.
    plan = load_plan(scenario, sets, PlatformName.kubernetes, run_id=None)
    plan = dataclasses.replace(plan, run_id=plan.name)
    release_name = release or plan.name
    namespace_name = namespace or f"aitbc-{plan.name}"
    clock = time.perf_counter()
    genesis = make_genesis(plan)
    genesis_s = time.perf_counter() - clock
    settings = ChartSettings(
        release=release_name,
        namespace=namespace_name,
        image_tag=image_tag,
        loadgen=loadgen,
    )
    values = apply_chart_sets(chart_values(plan, genesis, settings), chart_sets or [])
    clock = time.perf_counter()
    manifests = render_chart(
        chart_dir, values, release=release_name, namespace=namespace_name, helm_binary=helm_binary
    )
    render_s = time.perf_counter() - clock
    clock = time.perf_counter()
    lint_messages = lint_chart(chart_dir, values)
    lint_s = time.perf_counter() - clock
    clock = time.perf_counter()
    report = check_manifests(manifests, kubernetes_versions)
    validate_s = time.perf_counter() - clock
    if report.errors:
        raise HelmEngineError(
            f"{len(report.errors)} rendered manifest(s) of chart {chart_dir.name} are invalid "
            f"for Kubernetes {', '.join(report.versions)}:\n- "
            + "\n- ".join(report.errors)
            + "\nfix the template (or the --chart-set value) named above"
        )
    clock = time.perf_counter()
    files = write_manifests(manifests, out_dir)
    write_s = time.perf_counter() - clock
    genesis_text = values.get("genesis.json", "")
    figures = RenderFigures(
        validators=plan.network.validators,
        authorities=plan.network.authorities,
        manifests=len(manifests),
        genesis_bytes=len(genesis_text.encode()) if isinstance(genesis_text, str) else 0,
        genesis_validators=len(genesis.validators),
        genesis_s=round(genesis_s, 3),
        render_s=round(render_s, 3),
        lint_s=round(lint_s, 3),
        validate_s=round(validate_s, 3),
        write_s=round(write_s, 3),
        total_s=round(time.perf_counter() - started, 3),
    )
    return RenderResult(
        files=tuple(files),
        manifests=tuple(manifests),
        lint_messages=tuple(lint_messages),
        kubernetes_versions=report.versions,
        validated=report.checked,
        skipped=report.skipped,
        figures=figures,
    )


def _summary(result: RenderResult) -> str:
    fig = result.figures
    lines = [f"wrote {len(result.files)} manifests:"]
    lines += [f"  {path}" for path in result.files]
    lines += [f"lint: {message}" for message in result.lint_messages]
    lines += [f"skipped: {note}" for note in result.skipped]
    lines.append(
        f"validated {result.validated} manifest x version pairs against Kubernetes "
        f"{', '.join(result.kubernetes_versions)}: no errors"
    )
    lines.append(
        f"{fig.validators} validators ({fig.authorities} authorities); genesis "
        f"{fig.genesis_bytes:,} bytes with {fig.genesis_validators} validators; "
        f"{fig.manifests} objects"
    )
    lines.append(
        f"time: genesis {fig.genesis_s:.2f} s, render {fig.render_s:.2f} s, lint "
        f"{fig.lint_s:.2f} s, validate {fig.validate_s:.2f} s, write {fig.write_s:.2f} s, "
        f"total {fig.total_s:.2f} s"
    )
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command(
        help=(
            "Render the Helm chart for a scenario into plain manifests (one YAML file per "
            "object, no NOTES, no hooks), ready for GitOps: the real genesis is generated, the "
            "chart is linted by the Helm engine, and every manifest is validated for "
            "Kubernetes 1.29-1.33 (custom resources are skipped with a note). Apply the output "
            "with `kubectl apply --server-side -f DIR` (the genesis ConfigMap is too large for "
            "client-side apply). Exit 2 for bad input, 3 when the chart engine fails.\n\n"
            "Example: aitbc-testnet render devnet --out manifests/devnet --image-tag 0.1.0"
        )
    )
    def render(
        scenario: ScenarioArgument,
        out: Annotated[
            Path,
            typer.Option("--out", "-o", help="Folder for the manifests (created if missing)."),
        ],
        sets: SetOption = None,
        chart_sets: Annotated[
            list[str] | None,
            typer.Option(
                "--chart-set",
                metavar="KEY=VALUE",
                help="Override a chart value after the scenario's (helm --set style, value "
                "parsed as YAML), e.g. --chart-set podMonitor.enabled=true. Repeatable.",
                show_default=False,
            ),
        ] = None,
        helm_binary: Annotated[
            Path | None,
            typer.Option(
                "--helm-binary",
                help="Render with this `helm` binary (helm template) instead of the built-in "
                "Helm engine.",
                show_default=False,
            ),
        ] = None,
        namespace: Annotated[
            str | None,
            typer.Option(
                "--namespace", "-n", help="Namespace of the objects (default aitbc-<scenario>)."
            ),
        ] = None,
        release: Annotated[
            str | None,
            typer.Option("--release", help="Helm release name (default: the scenario name)."),
        ] = None,
        image_tag: Annotated[
            str | None,
            typer.Option(
                "--image-tag",
                envvar="AITBC_IMAGE_TAG",
                help="Tag of the node image (default: the chart's).",
            ),
        ] = None,
        kubernetes_versions: Annotated[
            list[str] | None,
            typer.Option(
                "--kubernetes-version",
                metavar="X.Y",
                help="Validate for this Kubernetes version (repeatable; default 1.29 to 1.33).",
                show_default=False,
            ),
        ] = None,
        loadgen: Annotated[
            bool,
            typer.Option(
                "--loadgen/--no-loadgen",
                help="Include the Locust master Job and worker Deployment for the scenario's load.",
            ),
        ] = True,
        json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        result = render_scenario(
            scenario,
            out,
            sets=sets,
            chart_sets=chart_sets,
            helm_binary=helm_binary,
            namespace=namespace,
            release=release,
            image_tag=image_tag,
            kubernetes_versions=tuple(kubernetes_versions or DEFAULT_KUBERNETES_VERSIONS),
            loadgen=loadgen,
        )
        if json_output:
            typer.echo(json.dumps(result.to_dict(), indent=2))
        else:
            typer.echo(_summary(result))
