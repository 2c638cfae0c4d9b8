"""Validators of a local testnet as containers of the node image, for tests/containers and the
image bench (bench/bench_image.py).

``build_node_image`` runs ``make image`` (cached by the engine: seconds when nothing changed; on
a fresh machine it makes the base image and the wheelhouse first) and returns the image id it
built, so a run uses exactly that image even if another build re-tags the name meanwhile.

``ContainerNetwork`` is a ``LocalNetwork`` (tests/node/testnet.py: genesis and configs from the
library behind ``aitbc-node genesis``, 127.0.0.1 ports, gRPC and ops clients) whose validators
run as containers through ``orchestrator.external.container_engine``: the network folder mounted
read-only at /etc/aitbc, the data dir in a named volume at /data, uid 10001 (the image's USER and
the chart's runAsUser), host networking. Its containers and volumes are named after the network
and carry the caller's labels plus ``NETWORK_LABEL``; ``close()`` removes them all.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from orchestrator.external.container_engine import (
    ContainerEngine,
    ContainerNotFoundError,
    ContainerSpec,
    Mount,
)

REPO = Path(__file__).resolve().parents[2]
NODE_TESTS = REPO / "tests" / "node"
if str(NODE_TESTS) not in sys.path:
    sys.path.insert(0, str(NODE_TESTS))

from testnet import LocalNetwork, TestnetError  # noqa: E402  (tests/node is not a package)

#: Upper bound of ``make image`` on a fresh machine (base image, wheelhouse, image: ~3 min here).
IMAGE_BUILD_TIMEOUT_S = 1800.0
#: The image's USER and the chart's runAsUser / runAsGroup.
CONTAINER_USER = "10001:10001"
CONFIG_DIR = "/etc/aitbc"
DATA_DIR = "/data"
#: Names the network its containers and volumes belong to.
NETWORK_LABEL = "aitbc.io/test-network"
#: ``alive()`` asks the engine at most this often per validator (``wait_until`` polls every
#: 0.1 s); a kill or start through this class forgets the cached answer at once.
ALIVE_CACHE_S = 0.5


def build_node_image(workdir: Path, *make_variables: str) -> str:
    """``make image`` (plus ``make_variables``, e.g. ``BUILD_OPTS=--no-cache``); returns the id
    of the image it built. Raises ``TestnetError`` with the end of make's output on failure."""
    iidfile = workdir / "image.iid"
    iidfile.unlink(missing_ok=True)
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "image", f"IIDFILE={iidfile}",
         *make_variables],
        stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=IMAGE_BUILD_TIMEOUT_S, check=False,
    )  # fmt: skip
    if result.returncode != 0 or not iidfile.exists():
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        raise TestnetError(f"make image failed (exit {result.returncode}); it ended with:\n{tail}")
    return iidfile.read_text().strip()


class ContainerNetwork(LocalNetwork):
    """A ``LocalNetwork`` whose validators are containers of ``image``; see the module
    docstring. ``name`` prefixes its containers and volumes; ``labels`` (e.g. a run label) go
    on each of them."""

    def __init__(
        self,
        root: Path,
        engine: ContainerEngine,
        image: str,
        name: str,
        labels: Mapping[str, str],
        **options: Any,
    ) -> None:
        super().__init__(root, **options)
        self.engine = engine
        self.image = image
        self.name = name
        self.labels = {**labels, NETWORK_LABEL: name}
        self._alive: dict[int, tuple[float, bool]] = {}
        # Mounted read-only for uid 10001: pytest makes its folders private to root.
        root.chmod(0o755)
        for path in root.iterdir():
            if path.is_file():
                path.chmod(0o644)

    def container_name(self, index: int) -> str:
        return f"{self.name}-validator-{index}"

    def volume_name(self, index: int) -> str:
        return f"{self.name}-data-{index}"

    def spec(self, index: int) -> ContainerSpec:
        config = self.nodes[index].config
        return ContainerSpec(
            name=self.container_name(index),
            image=self.image,
            command=("run", "--config", f"{CONFIG_DIR}/{config.name}"),
            env={"AITBC_DATA_DIR": DATA_DIR},
            mounts=(
                Mount(str(self.root), CONFIG_DIR, read_only=True),
                Mount(self.volume_name(index), DATA_DIR, kind="volume"),
            ),
            user=CONTAINER_USER,
            labels=self.labels,
        )

    # ------------------------------------------------------------------ LocalNetwork's processes

    def start(self, index: int) -> int:
        """Start validator ``index``: its container is created on the first start and started
        again (same file system, same volume) after a kill. Returns its pid on the host."""
        name = self.container_name(index)
        self._alive.pop(index, None)
        try:
            state = self.engine.state(name)
        except ContainerNotFoundError:
            state = self.engine.run(self.spec(index))
        else:
            if state.running:
                raise TestnetError(f"validator {index} already runs as container {name}")
            self.engine.start(name)
            state = self.engine.state(name)
        return state.pid or 0

    def pid(self, index: int) -> int:
        return self.engine.state(self.container_name(index)).pid or 0

    def alive(self, index: int) -> bool:
        now = time.monotonic()
        cached = self._alive.get(index)
        if cached is not None and now - cached[0] < ALIVE_CACHE_S:
            return cached[1]
        try:
            running = self.engine.state(self.container_name(index)).running
        except ContainerNotFoundError:
            running = False
        self._alive[index] = (now, running)
        return running

    def kill(self, index: int) -> None:
        """SIGKILL validator ``index``'s container and wait until the engine saw it exit."""
        name = self.container_name(index)
        self.engine.kill(name)
        self.engine.wait_exit(name, timeout_s=60)
        self._alive.pop(index, None)
        self._drop_channel(index)

    def terminate(self, index: int, timeout: float = 15.0) -> tuple[int, float]:
        """Stop validator ``index``'s container (SIGTERM, SIGKILL after ``timeout``); returns
        (exit code, seconds it took)."""
        name = self.container_name(index)
        began = time.monotonic()
        self.engine.stop(name, timeout_s=max(1, round(timeout)))
        code = self.engine.wait_exit(name, timeout_s=60)
        self._alive.pop(index, None)
        self._drop_channel(index)
        return code, time.monotonic() - began

    def log_text(self, index: int) -> str:
        try:
            return self.engine.logs(self.container_name(index))
        except ContainerNotFoundError:
            return ""

    def close(self) -> None:
        """Remove every container and volume of this network (running or not)."""
        for index in range(len(self)):
            self._drop_channel(index)
        self.engine.remove_labelled(self.labels)


#: ``make_container_network(**LocalNetwork options)`` (the conftest fixture).
ContainerNetworkFactory = Callable[..., ContainerNetwork]
