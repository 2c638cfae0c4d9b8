"""Node image figures (issue 11): size, build times and container start to ready.

- image size: what the engine reports for ``aitbc-testnet-node:<version>``;
- warm build: ``make image`` again with no change (every layer from the engine's cache);
- cold build: ``make image BUILD_OPTS=--no-cache`` with the base image and the wheelhouse
  present (so: no registry, no download), tagged ``aitbc-bench-cold`` and removed afterwards with
  the layers it made (skipped in quick runs: it takes about a minute of both cores);
- start to ready: one validator (a 1-validator network) from "run the container" to its ops
  ``/readyz`` answering 200, and the same for a plain ``aitbc-node run`` process on the host,
  for comparison.

``python bench/run.py --only image`` runs this section alone.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for folder in (BENCH_DIR, REPO / "tests" / "node", REPO / "tests" / "containers"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from container_network import ContainerNetwork, build_node_image  # noqa: E402
from figures import Figure, at_most  # noqa: E402
from testnet import LocalNetwork  # noqa: E402

from orchestrator.external.container_engine import RUN_LABEL, ContainerEngine  # noqa: E402

VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"aitbc-testnet-node:{VERSION}"
COLD_IMAGE_NAME = "aitbc-bench-cold"
#: Targets: a build without a change must not cost the test suite much; a validator container
#: must be ready about as fast as a process.
MAX_WARM_BUILD_S = 30.0
MAX_START_TO_READY_S = 15.0
#: Bound on a start (the figure is the time it took; the bound only stops a broken node).
READY_TIMEOUT_S = 180.0


def _timed(action: Callable[[], object]) -> float:
    began = time.monotonic()
    action()
    return time.monotonic() - began


def _start_to_ready(network: LocalNetwork) -> float:
    """Seconds from starting validator 0 of ``network`` to its ``/readyz`` answering 200."""
    url = f"http://{network.nodes[0].ops}/readyz"
    began = time.monotonic()
    network.start(0)
    while True:
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(url, timeout=2) as reply,
        ):
            if reply.status == 200:
                return time.monotonic() - began
        network.require_alive([0])
        if time.monotonic() - began > READY_TIMEOUT_S:
            raise TimeoutError(f"validator 0 not ready at {url} after {READY_TIMEOUT_S:g} s")
        time.sleep(0.05)


def _cold_build_s(engine: ContainerEngine, workdir: Path) -> float:
    """A build without the engine's cache, under its own tag; its image and the intermediate
    images it made (those that did not exist before it) are removed afterwards."""
    before = engine.image_ids()
    began = time.monotonic()
    try:
        build_node_image(workdir, "BUILD_OPTS=--no-cache", f"IMAGE_NAME={COLD_IMAGE_NAME}")
        return time.monotonic() - began
    finally:
        with contextlib.suppress(Exception):
            engine.remove_image(f"{COLD_IMAGE_NAME}:{VERSION}")
        for image_id in engine.image_ids() - before:
            with contextlib.suppress(Exception):  # in use by another build: not ours to force
                engine.remove_image(image_id)


def run(quick: bool) -> list[Figure]:
    name = f"aitbc-bench-{uuid.uuid4().hex[:8]}"
    with ContainerEngine.connect() as engine, tempfile.TemporaryDirectory(prefix=name) as tmp:
        workdir = Path(tmp)
        image_id = build_node_image(workdir)  # up to date before the timed builds
        warm_s = _timed(lambda: build_node_image(workdir))
        size_mb = engine.image(IMAGE).size_bytes / 1e6
        cold_s = None if quick else _cold_build_s(engine, workdir)
        options = {"validators": 1, "accounts": 1, "seed": "bench-image"}
        container = ContainerNetwork(
            workdir / "container", engine, image_id, name, {RUN_LABEL: name}, **options
        )
        try:
            container_s = _start_to_ready(container)
        finally:
            container.close()
        process = LocalNetwork(workdir / "process", **options)
        try:
            process_s = _start_to_ready(process)
        finally:
            process.close()
        engine_name = engine.describe().split(" at ")[0]
    figures = [
        Figure("node image size", round(size_mb), "MB", f"{IMAGE} on {engine_name}"),
        at_most("image build, warm (no change)", warm_s, "s", MAX_WARM_BUILD_S, quick=quick),
    ]
    if cold_s is None:
        figures.append(Figure("image build, cold (no cache, base present)", "skipped", "", "quick"))
    else:
        figures.append(Figure("image build, cold (no cache, base present)", cold_s, "s"))
    figures += [
        at_most(
            "validator container: start to ready", container_s, "s", MAX_START_TO_READY_S,
            quick=quick,
        ),
        Figure("validator process: start to ready", process_s, "s", "(the same, no container)"),
    ]  # fmt: skip
    return figures


if __name__ == "__main__":
    for figure in run("--quick" in sys.argv[1:]):
        print(figure)
