"""The node image carries the Helm chart: the in-cluster nightly CronJob runs
``aitbc-testnet run --platform kubernetes`` in it. ``aitbc-testnet render`` inside the image
(no source tree there) writes exactly the manifests the checkout renders."""

from __future__ import annotations

from pathlib import Path

import pytest
from container_network import CONTAINER_USER, IMAGE_BUILD_TIMEOUT_S

from orchestrator.external.container_engine import RUN_LABEL, ContainerEngine, ContainerSpec, Mount

pytestmark = pytest.mark.timeout(IMAGE_BUILD_TIMEOUT_S + 300)

#: Bound on the render in the container (a few seconds unless the machine is very busy).
RENDER_TIMEOUT_S = 240.0


def test_the_image_renders_the_chart_it_ships(
    engine: ContainerEngine,
    node_image: str,
    run_labels: dict[str, str],
    tmp_path: Path,
    checkout_manifests: dict[str, bytes],
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)  # written by the image's user, uid 10001
    name = f"{run_labels[RUN_LABEL]}-render"
    spec = ContainerSpec(
        name=name,
        image=node_image,
        entrypoint=("aitbc-testnet",),
        command=("render", "devnet-smoke", "--out", "/tmp/x"),
        mounts=(Mount(str(out), "/tmp/x"),),
        user=CONTAINER_USER,
        labels=run_labels,
    )
    engine.run(spec)
    try:
        exit_code = engine.wait_exit(name, timeout_s=RENDER_TIMEOUT_S)
        logs = engine.logs(name)
    finally:
        engine.remove(name)
    assert exit_code == 0, logs
    assert "no errors" in logs

    assert {path.name: path.read_bytes() for path in out.iterdir()} == checkout_manifests
