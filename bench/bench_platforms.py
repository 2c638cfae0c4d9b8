"""devnet-smoke on ``--platform local`` and ``--platform docker``, side by side (issue 11): the
same campaign (validators as processes, then as containers of the node image of this checkout;
Prometheus and Locust on this machine both times), through the library the CLI runs.

Per platform: committed TPS and finality p50/p99 (the report's measurements), ready time (from
the start of the campaign to its load: deploy, every validator ready, heights rising, every
validator scraped) and wall time (the whole campaign, down included). Quick runs shorten the
load to 20 s without the fault.

``python bench/run.py --only platforms`` runs this section alone (about 3 minutes).
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for folder in (BENCH_DIR, REPO / "tests" / "node", REPO / "tests" / "containers"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from container_network import build_node_image  # noqa: E402
from figures import Figure  # noqa: E402

from orchestrator.platforms import get_platform  # noqa: E402
from orchestrator.scenario.loader import load_scenario  # noqa: E402
from orchestrator.scenario.plan import resolve_plan  # noqa: E402
from orchestrator.stages.campaign import Campaign  # noqa: E402
from orchestrator.stages.events import ProgressEvent  # noqa: E402

SCENARIO = "devnet-smoke"
QUICK_SETS = ("load.duration=20s", "load.warmup=5s", "load.cooldown=2s", "faults=[]")


def _campaign(platform: str, workdir: Path, quick: bool, **options: Any) -> list[Figure]:
    run_id = f"bench-{platform}-{uuid.uuid4().hex[:6]}"
    sets = QUICK_SETS if quick else ()
    plan = resolve_plan(load_scenario(SCENARIO, sets), platform=platform, run_id=run_id)
    target = get_platform(platform, workdir / run_id, **options)
    events: list[ProgressEvent] = []
    began = time.monotonic()
    result = Campaign(plan, target, workdir / f"{run_id}-report", on_progress=events.append).run()
    wall_s = time.monotonic() - began
    ready_s = next(event.elapsed_s for event in events if event.stage == "load")
    measured = result.report.measurements
    name = f"{SCENARIO} {platform}"
    verdict = "passed" if result.report.passed else "FAILED"
    return [
        Figure(f"{name}: committed TPS", round(measured.tps.mean or 0.0, 1), "tx/s", verdict),
        Figure(f"{name}: finality p50", round(measured.finality_ms.p50 or 0.0), "ms"),
        Figure(f"{name}: finality p99", round(measured.finality_ms.p99 or 0.0), "ms"),
        Figure(f"{name}: ready", round(ready_s, 1), "s", "deploy to load start"),
        Figure(f"{name}: wall", round(wall_s, 1), "s", "the whole campaign"),
    ]


def run(quick: bool) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="aitbc-bench-platforms-") as tmp:
        workdir = Path(tmp)
        image = build_node_image(workdir)
        figures = _campaign("local", workdir, quick)
        figures += _campaign("docker", workdir, quick, image=image)
    return figures


if __name__ == "__main__":
    for figure in run("--quick" in sys.argv[1:]):
        print(figure)
