"""Orchestrator benchmark (issue 4): seconds from ``aitbc-testnet up`` to a ready local
testnet, for 4 and for 16 validators (targets: under 10 s and under 30 s on this machine), and
seconds to render the staging chart (1,000 validators, real genesis; target: under 5 s).

Each figure runs the real CLI as a subprocess — ``up devnet-smoke --set network.validators=N``
(genesis, N validator processes, Prometheus, then every /readyz, Prometheus ready, every
height rising and every validator scraped) — and times it until it exits; then ``down`` stops
the run by pid. The run folders live in a temporary directory removed afterwards.

``python bench/bench_orchestrator.py`` runs the section alone.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for folder in (BENCH_DIR, REPO):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from figures import Figure, at_most  # noqa: E402

from orchestrator.commands.render import render_scenario  # noqa: E402
from orchestrator.platforms.local import LocalPlatform  # noqa: E402

CLI_BOOT = "import sys; from orchestrator.cli import main; sys.exit(main(sys.argv[1:]))"
TARGETS_S = {4: 10.0, 16: 30.0}
STAGING_RENDER_TARGET_S = 5.0
UP_TIMEOUT_S = 180.0


def seconds_to_ready(validators: int, run_root: Path) -> float:
    """Wall seconds of ``aitbc-testnet up`` for ``validators`` local validators (the run is
    stopped afterwards, whatever happened)."""
    run_id = f"bench-up-{validators}"
    argv = [
        sys.executable, "-c", CLI_BOOT, "up", "devnet-smoke",
        "--run-dir", str(run_root), "--run-id", run_id, "--timeout", str(UP_TIMEOUT_S),
        "--set", f"network.validators={validators}",
        "--set", f"network.authorities={validators}",
    ]  # fmt: skip
    started = time.perf_counter()
    try:
        completed = subprocess.run(
            argv, capture_output=True, text=True, timeout=UP_TIMEOUT_S + 30, cwd=REPO
        )
        elapsed = time.perf_counter() - started
        if completed.returncode != 0:
            raise RuntimeError(
                f"up of {validators} validators exited {completed.returncode}: "
                f"{completed.stderr.strip()[-600:]}"
            )
        return elapsed
    finally:
        directory = run_root / run_id
        if (directory / "state.json").is_file():
            LocalPlatform.attach(directory).stop_processes()


def seconds_to_render_staging(out: Path) -> float:
    """Wall seconds of rendering the staging scenario's chart into ``out`` (genesis of 1,000
    validators, Helm engine, lint, kubernetes-validate, files)."""
    started = time.perf_counter()
    render_scenario("staging", out)
    return time.perf_counter() - started


def run(quick: bool) -> list[Figure]:
    sizes = (4,) if quick else (4, 16)
    figures = []
    with tempfile.TemporaryDirectory(prefix="aitbc-bench-render-") as folder:
        figures.append(
            at_most(
                "render the staging chart, 1,000 validators",
                round(seconds_to_render_staging(Path(folder)), 2),
                "s",
                STAGING_RENDER_TARGET_S,
                quick=quick,
            )
        )
    with tempfile.TemporaryDirectory(prefix="aitbc-bench-up-") as folder:
        for validators in sizes:
            seconds = seconds_to_ready(validators, Path(folder))
            figures.append(
                at_most(
                    f"up to ready, {validators} local validators",
                    round(seconds, 2),
                    "s",
                    TARGETS_S[validators],
                    quick=quick,
                )
            )
    return figures


if __name__ == "__main__":
    for figure in run(quick="--quick" in sys.argv[1:]):
        print(figure)
