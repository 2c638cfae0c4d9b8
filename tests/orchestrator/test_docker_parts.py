"""The docker platform's parts that need no container engine: the registry entry, the image it
runs, each container's config folder, the container spec made from the shared validator
container, the CLI flags, and the refusals before anything is created. Containers for real:
tests/containers/test_docker_platform.py."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest
from aitbc_node.commands.genesis_cmd import make_local_testnet
from aitbc_node.config import load_node_config
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.external.container_engine import ContainerEngineError, Mount
from orchestrator.platforms import PLATFORMS, get_platform
from orchestrator.platforms.capabilities import LIVE_CAPABILITIES, capabilities_of
from orchestrator.platforms.docker import DockerPlatform
from orchestrator.platforms.docker.config import write_container_configs
from orchestrator.platforms.docker.image import image_reference
from orchestrator.platforms.docker.spec import ContainerPlace, validator_container_spec
from orchestrator.platforms.validator_container import (
    EnvSource,
    default_image_reference,
    validator_container,
)
from orchestrator.scenario.loader import load_scenario
from orchestrator.scenario.plan import resolve_plan

REPO = Path(__file__).resolve().parents[2]


def test_docker_is_registered_with_every_live_capability(tmp_path: Path) -> None:
    platform = get_platform("docker", tmp_path / "r")  # no engine is asked yet
    assert isinstance(platform, DockerPlatform) and platform.name == "docker"
    assert set(capabilities_of(platform)) == set(PLATFORMS["docker"].capabilities)
    assert set(PLATFORMS["docker"].capabilities) == set(LIVE_CAPABILITIES)


def test_the_image_is_the_version_tag_unless_flag_or_environment_say_otherwise() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert default_image_reference({}) == f"aitbc-testnet-node:{version}"  # what make image tags
    assert image_reference(None, {"AITBC_IMAGE_TAG": "nightly"}) == "aitbc-testnet-node:nightly"
    assert image_reference("sha256:abc", {"AITBC_IMAGE_TAG": "nightly"}) == "sha256:abc"
    assert DockerPlatform(Path("r"), image="mine:1").image_tag() == "mine:1"


def test_each_container_gets_a_config_folder_without_secrets(tmp_path: Path) -> None:
    testnet = make_local_testnet(tmp_path / "net", validators=4, authorities=4, seed="7")
    folders = write_container_configs(testnet, tmp_path / "net" / "containers")
    assert sorted(folders) == [0, 1, 2, 3]
    for node in testnet.nodes:
        folder = folders[node.index]
        assert sorted(path.name for path in folder.iterdir()) == ["genesis.json", "node.yaml"]
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755  # uid 10001 reads it
        for path in folder.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o644
        assert (folder / "genesis.json").read_bytes() == testnet.genesis_path.read_bytes()
        local, container = load_node_config(node.config), load_node_config(folder / "node.yaml")
        assert local.admin_token and container.admin_token is None
        assert container.genesis == "/etc/aitbc/genesis.json" and container.data_dir == "/data"
        assert container.key is not None and local.key is not None
        assert (container.key.seed, container.key.index) == (local.key.seed, "auto")
        # the same network as the local processes': addresses, peers, chain, era
        same = ("chain_id", "listen", "peers", "era", "log_level", "mempool")
        assert container.model_dump(include=set(same)) == local.model_dump(include=set(same))
        assert local.admin_token not in (folder / "node.yaml").read_text()


def test_the_container_spec_is_the_shared_validator_container_on_host_ports(
    tmp_path: Path,
) -> None:
    container = validator_container(grpc_port=31002, ops_port=31006)
    place = ContainerPlace("aitbc-r1-validator-2", "aitbc-r1-data-2", tmp_path / "node-2")
    spec = validator_container_spec(
        container,
        place,
        image="sha256:feed",
        env={
            EnvSource.POD_NAME: place.name,
            EnvSource.NAMESPACE: "r1",
            EnvSource.ADMIN_TOKEN: "secret",
        },
        labels={"aitbc.io/run-id": "r1"},
    )
    assert spec.name == place.name and spec.image == "sha256:feed"
    assert spec.entrypoint is None  # the image's: aitbc-node
    assert spec.command == ("run", "--config", "/etc/aitbc/node.yaml")
    assert spec.env == {
        "POD_NAME": "aitbc-r1-validator-2",
        "POD_NAMESPACE": "r1",
        "AITBC_ADMIN_TOKEN": "secret",
    }
    assert spec.mounts == (
        Mount(str(tmp_path / "node-2"), "/etc/aitbc", read_only=True),
        Mount("aitbc-r1-data-2", "/data", kind="volume"),
    )
    assert spec.tmpfs == ("/tmp",) and spec.read_only_root and spec.network_mode == "host"
    assert spec.user == "10001:10001" and spec.cap_drop == ("ALL",) and spec.no_new_privileges
    assert spec.labels == {"aitbc.io/run-id": "r1"}
    check = spec.healthcheck
    assert check is not None and check.test[:2] == ("python", "-c")
    assert "http://127.0.0.1:31006/healthz" in check.test[2]  # this validator's ops port
    liveness, startup = container.liveness, container.startup
    assert (check.interval_s, check.timeout_s, check.retries) == (
        liveness.period_s,
        liveness.timeout_s,
        liveness.failure_threshold,
    )
    assert check.start_period_s == startup.period_s * startup.failure_threshold


def test_flags_for_another_platform_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    cases = {
        ("up", "--image", "x:1"): "--image applies to --platform docker only",
        ("run", "--image", "x:1", "--platform", "sim"): "--image applies to --platform docker",
        ("run", "--base-port", "20000", "--platform", "kubernetes"): (
            "--base-port applies to --platform local or docker only"
        ),
    }
    for (command, *flags), message in cases.items():
        result = runner.invoke(app, [command, "devnet-smoke", *flags, "--run-dir", str(tmp_path)])
        assert result.exit_code == 2, result.output
        assert message in result.stderr and "Traceback" not in result.output
    assert not any(tmp_path.iterdir())


def test_no_engine_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    platform = DockerPlatform(
        tmp_path / "run", engine_env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock", "PATH": ""}
    )
    plan = resolve_plan(load_scenario("devnet-smoke"), platform="docker", run_id="run")
    with pytest.raises(ContainerEngineError, match="does not answer the Docker Engine API") as info:
        platform.deploy(plan)
    assert info.value.exit_code == 3
    assert not (tmp_path / "run").exists()
    assert platform.destroy() == []
