"""``aitbc-testnet render``: the chart rendered by the real Helm engine for devnet and staging,
linted, validated for Kubernetes 1.29-1.33, written as plain manifests; exit codes."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
import yaml
from aitbc_node.crypto.bls import BlsScheme
from aitbc_node.genesis import Genesis
from typer.testing import CliRunner

from orchestrator.cli import AitbcGroup
from orchestrator.commands import render as render_command
from orchestrator.commands.render import RenderResult, render_scenario
from orchestrator.external.manifest_validation import DEFAULT_KUBERNETES_VERSIONS, check_manifests


def _app() -> typer.Typer:
    app = typer.Typer(cls=AitbcGroup)
    render_command.register(app)

    @app.command()
    def other() -> None:  # a second command keeps `render` a sub-command
        return None

    return app


@pytest.fixture(scope="module")
def staging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RenderResult, float]]:
    out = tmp_path_factory.mktemp("staging")
    started = time.perf_counter()
    result = render_scenario("staging", out)
    yield result, time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> RenderResult:
    return render_scenario("devnet", tmp_path_factory.mktemp("devnet"))


def _written(result: RenderResult, kind: str) -> list[dict[str, object]]:
    documents = []
    for path in result.files:
        body = yaml.safe_load(path.read_text())
        if body["kind"] == kind:
            documents.append(body)
    return documents


def test_staging_renders_one_statefulset_of_1000_replicas_with_a_real_genesis(
    staging: tuple[RenderResult, float],
) -> None:
    result, _ = staging
    statefulsets = _written(result, "StatefulSet")
    assert len(statefulsets) == 1
    assert statefulsets[0]["spec"]["replicas"] == 1000  # type: ignore[index]
    assert statefulsets[0]["spec"]["podManagementPolicy"] == "Parallel"  # type: ignore[index]
    configmaps = [c for c in _written(result, "ConfigMap") if "genesis.json" in c["data"]]  # type: ignore[operator]
    assert len(configmaps) == 1
    genesis = Genesis.model_validate(json.loads(configmaps[0]["data"]["genesis.json"]))  # type: ignore[index]
    assert len(genesis.validators) == 1000
    assert genesis.authority_count == 21
    assert genesis.consensus.mode == "secure"
    assert genesis.key_seed == "6"  # plan.network.genesis_seed of the kubernetes platform
    node_yaml = configmaps[0]["data"]["node.yaml"]  # type: ignore[index]
    assert f'chain_id: "{genesis.chain_id}"' in node_yaml
    assert 'seed: "6"' in node_yaml
    stakes = [validator.stake for validator in genesis.validators]
    assert stakes[0] > stakes[-1]  # zipf
    scheme = BlsScheme()  # real BLS keys: every 50th proof of possession verifies
    for validator in genesis.validators[::50]:
        assert scheme.pop_verify(validator.bls_public_key_bytes, validator.pop_bytes)


def test_staging_output_is_valid_for_every_kubernetes_version(
    staging: tuple[RenderResult, float],
) -> None:
    result, _ = staging
    assert result.kubernetes_versions == DEFAULT_KUBERNETES_VERSIONS
    assert result.validated == len(result.manifests) * len(DEFAULT_KUBERNETES_VERSIONS)
    report = check_manifests(result.manifests)
    assert report.ok, report.errors
    assert all(message.startswith(("info", "warning")) for message in result.lint_messages)


def test_staging_render_figures(staging: tuple[RenderResult, float]) -> None:
    result, _ = staging  # how long it takes is a `make bench` figure (bench_orchestrator.py)
    assert result.figures.genesis_validators == 1000
    assert result.figures.genesis_bytes > 300_000


def test_written_files_are_plain_manifests(staging: tuple[RenderResult, float]) -> None:
    result, _ = staging
    names = sorted(path.name for path in result.files)
    assert not any("notes" in name.lower() for name in names)
    for path in result.files:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert len(documents) == 1, path
        annotations = documents[0]["metadata"].get("annotations") or {}
        assert "helm.sh/hook" not in annotations, path


def test_devnet_renders_100_validators_and_the_load_generator(devnet: RenderResult) -> None:
    kinds = {manifest.kind for manifest in devnet.manifests}
    assert {"StatefulSet", "ConfigMap", "Secret", "Service", "PodDisruptionBudget"} <= kinds
    assert "Job" in kinds  # Locust master and (indexed) workers
    statefulset = _written(devnet, "StatefulSet")[0]
    assert statefulset["spec"]["replicas"] == 100  # type: ignore[index]
    pdb = _written(devnet, "PodDisruptionBudget")[0]
    assert pdb["spec"]["maxUnavailable"] == 6  # type: ignore[index]  # < 21/3 authorities
    job = next(j for j in _written(devnet, "Job") if "--master" in str(j["spec"]))
    env = {
        item["name"]: item.get("value")
        for item in job["spec"]["template"]["spec"]["containers"][0]["env"]  # type: ignore[index]
    }
    assert env["AITBC_TPS"] == "10"  # the devnet is sized for a 2-core host
    assert env["AITBC_ENTRY_VALIDATORS"] == "10"
    assert env["AITBC_BATCH_SIZE"] == "25"
    assert env["AITBC_RUN_ID"] == "devnet"
    assert len(env["AITBC_TARGETS"].split(",")) == 100
    resources = statefulset["spec"]["template"]["spec"]["containers"][0]["resources"]  # type: ignore[index]
    assert resources["requests"] == {"cpu": "500m", "memory": "512Mi"}


def test_rendering_twice_gives_identical_files(tmp_path: Path) -> None:
    first = render_scenario("devnet-smoke", tmp_path / "a")
    second = render_scenario("devnet-smoke", tmp_path / "b")
    assert [p.name for p in first.files] == [p.name for p in second.files]
    for a, b in zip(first.files, second.files, strict=True):
        assert a.read_text() == b.read_text()


def test_cli_render_prints_files_and_figures(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        _app(),
        [
            "render",
            "devnet-smoke",
            "--out",
            str(tmp_path / "m"),
            "--namespace",
            "gitops",
            "--release",
            "smoke",
            "--image-tag",
            "1.2.3",
            "--chart-set",
            "podMonitor.enabled=true",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "statefulset-smoke-aitbc-testnet.yaml" in result.stdout
    assert "time: genesis" in result.stdout and "total" in result.stdout
    assert "Kubernetes 1.29, 1.30, 1.31, 1.32, 1.33: no errors" in result.stdout
    assert "skipped: PodMonitor/smoke-aitbc-testnet" in result.stdout  # a CRD: noted, not failed
    statefulset = yaml.safe_load(
        (tmp_path / "m" / "statefulset-smoke-aitbc-testnet.yaml").read_text()
    )
    assert statefulset["metadata"]["namespace"] == "gitops"
    image = statefulset["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "aitbc-testnet-node:1.2.3"


def test_cli_render_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        _app(), ["render", "devnet-smoke", "--out", str(tmp_path), "--json", "--no-loadgen"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert not any(name.startswith("Job/") for name in document["objects"])
    assert document["figures"]["validators"] == 4


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["render", "no-such-scenario", "--out", "X"], "no-such-scenario"),
        (["render", "devnet", "--out", "X", "--set", "network.validators=0"], "validators"),
        (["render", "devnet", "--out", "X", "--chart-set", "validators=1001"], "validators"),
        (["render", "devnet", "--out", "X", "--chart-set", "mode=turbo"], "mode"),
        (["render", "devnet", "--out", "X", "--chart-set", "oops"], "KEY=VALUE"),
        (["render", "devnet", "--out", "X", "--release", "Bad_Name"], "release name"),
        (["render", "devnet", "--out", "X", "--set", "network.epoch_length=3"], "epoch_length"),
        (["render", "devnet", "--out", "X", "--kubernetes-version", "0.1"], "no schemas"),
    ],
)
def test_bad_input_exits_2(arguments: list[str], expected: str, tmp_path: Path) -> None:
    arguments = [str(tmp_path / "X") if item == "X" else item for item in arguments]
    result = CliRunner().invoke(_app(), arguments)
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output


def test_chart_engine_failure_exits_3(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    shutil.copytree(render_scenario.__globals__["CHART_DIR"], chart)
    (chart / "templates" / "broken.yaml").write_text('{{ include "no-such-template" . }}\n')
    with pytest.raises(Exception) as caught:
        render_scenario("devnet-smoke", tmp_path / "out", chart_dir=chart)
    assert getattr(caught.value, "exit_code", None) == 3
    assert "broken.yaml" in str(caught.value)


def test_missing_helm_binary_exits_3(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        _app(),
        [
            "render",
            "devnet-smoke",
            "--out",
            str(tmp_path),
            "--helm-binary",
            str(tmp_path / "helm"),
        ],
    )
    assert result.exit_code == 3, result.output
    assert "helm binary" in result.output


def test_render_is_registered_on_the_main_cli() -> None:
    try:
        import orchestrator.commands as commands_package
    except ImportError:  # pragma: no cover - the package lands with the other stages
        pytest.skip("orchestrator.commands is not a package yet")
    if Path(commands_package.__file__ or "").name != "__init__.py":
        pytest.skip("orchestrator.commands has no __init__.py yet")
    from orchestrator.cli import app

    result = CliRunner().invoke(app, ["render", "--help"])
    assert result.exit_code == 0
    assert "Example: aitbc-testnet render" in result.stdout
