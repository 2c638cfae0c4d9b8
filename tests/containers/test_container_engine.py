"""orchestrator.external.container_engine against the real engine of this machine (Docker, or
Podman's service that the module starts): connection and its errors, the podman service's
lifetime, and a container's life: run, SIGKILL, start again with its volume, logs, labels,
removal."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from container_network import CONTAINER_USER, IMAGE_BUILD_TIMEOUT_S

from orchestrator.external.container_engine import (
    RUN_LABEL,
    ContainerEngine,
    ContainerEngineError,
    ContainerNotFoundError,
    ContainerSpec,
    ImageMissingError,
    Mount,
    NoContainerEngineError,
)

pytestmark = pytest.mark.timeout(IMAGE_BUILD_TIMEOUT_S + 120)

#: Bound on waiting for a container's output (it takes well under a second unless the machine
#: is very busy).
OUTPUT_S = 60.0

#: Runs in the container: who it is, whether it can write the read-only mount, and a counter in
#: the volume that survives restarts; then it waits to be killed.
PROBE = """
import os, pathlib, time
counter = pathlib.Path('/data/starts')
starts = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(starts))
try:
    open('/etc/aitbc/x', 'w')
    config = 'writable'
except OSError:
    config = 'read-only'
env = os.environ['PROBE_ENV']
print(f"uid={os.getuid()} config={config} starts={starts} env={env}", flush=True)
time.sleep(600)
"""


def _wait_for_output(engine: ContainerEngine, name: str, text: str) -> str:
    deadline = time.monotonic() + OUTPUT_S
    while True:
        logs = engine.logs(name)
        if text in logs:
            return logs
        assert time.monotonic() < deadline, f"{name} never printed {text!r}; logs: {logs!r}"
        time.sleep(0.2)


def test_a_container_is_killed_started_again_with_its_volume_and_removed_by_label(
    engine: ContainerEngine, node_image: str, run_labels: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.mkdir(mode=0o755)
    name = f"{run_labels[RUN_LABEL]}-probe"
    spec = ContainerSpec(
        name=name,
        image=node_image,
        entrypoint=("python", "-c", PROBE),
        env={"PROBE_ENV": "seen"},
        mounts=(
            Mount(str(config), "/etc/aitbc", read_only=True),
            Mount(f"{name}-data", "/data", kind="volume"),
        ),
        user=CONTAINER_USER,
        labels=run_labels,
    )
    state = engine.run(spec)
    assert state.running and state.exit_code is None and state.pid
    _wait_for_output(engine, name, "uid=10001 config=read-only starts=1 env=seen")

    engine.kill(name)
    assert engine.wait_exit(name, timeout_s=OUTPUT_S) == 137
    killed = engine.state(name)
    assert (killed.status, killed.exit_code, killed.pid) == ("exited", 137, None)

    engine.start(name)
    _wait_for_output(engine, name, "starts=2")  # the volume kept the first run's counter
    assert [s.name for s in engine.containers(run_labels)] == [name]
    assert engine.volumes(run_labels) == [f"{name}-data"]

    assert engine.remove_labelled(run_labels) == ([name], [f"{name}-data"])
    with pytest.raises(ContainerNotFoundError, match=name):
        engine.state(name)
    assert engine.volumes(run_labels) == []


def test_a_missing_image_says_to_build_it(
    engine: ContainerEngine, run_labels: dict[str, str]
) -> None:
    spec = ContainerSpec(name="never-created", image="aitbc-no-such-image:0", labels=run_labels)
    with pytest.raises(ImageMissingError, match=r"aitbc-no-such-image:0 .*`make image`"):
        engine.run(spec)
    assert not engine.has_image("aitbc-no-such-image:0")
    with pytest.raises(ContainerNotFoundError, match="never-created"):
        engine.state("never-created")


@pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")
def test_the_podman_service_started_for_a_connection_stops_with_it() -> None:
    engine = ContainerEngine.connect(env={"PATH": os.environ["PATH"]}, sockets=())
    pid = engine.started_service_pid
    assert pid is not None
    socket = Path(engine.base_url.removeprefix("unix://"))
    try:
        assert socket.exists()
        assert engine.describe().startswith("Podman Engine ")
    finally:
        engine.close()
    assert not socket.parent.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped: no zombie, no survivor
    engine.close()  # twice is harmless


def test_no_engine_at_all_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(NoContainerEngineError, match=r"run `make install` as root"):
        ContainerEngine.connect(env={"PATH": str(tmp_path)}, sockets=(tmp_path / "none.sock",))


def test_a_docker_host_that_does_not_answer_is_not_replaced_behind_the_users_back(
    tmp_path: Path,
) -> None:
    url = f"unix://{tmp_path / 'docker.sock'}"
    with pytest.raises(ContainerEngineError, match=rf"DOCKER_HOST={url} does not answer"):
        ContainerEngine.connect(env={"DOCKER_HOST": url, "PATH": os.environ["PATH"]})
