"""The kubernetes platform on a real kind cluster (Docker needed): skipped unless
AITBC_E2E_KIND=1. ``make e2e-kind`` creates the cluster (kind), builds the node image, loads it
into the cluster and runs these tests with AITBC_KUBE_CONTEXT=kind-aitbc-e2e and
AITBC_IMAGE_TAG set.

1. The platform stage by stage: deploy, ready, endpoints (port-forward), a partition through
   the fault API, kill and restart of one pod, the bundled Prometheus answering, teardown.
2. The whole campaign: ``aitbc-testnet run devnet --platform kubernetes`` with small sizes
   exits 0 and writes a passing report.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from orchestrator.faults.driver import apply_fault, clear_fault
from orchestrator.platforms.kubernetes import KubernetesOptions, KubernetesPlatform
from orchestrator.scenario.loader import load_scenario
from orchestrator.scenario.plan import resolve_plan

pytestmark = [
    pytest.mark.e2e_kind,
    pytest.mark.skipif(
        os.environ.get("AITBC_E2E_KIND") != "1",
        reason="needs a kind cluster and Docker: run `make e2e-kind` (sets AITBC_E2E_KIND=1)",
    ),
]

SMALL_DEVNET = [
    "network.validators=4",
    "network.authorities=4",
    "resources.cpu=100m",
    "resources.memory=256Mi",
    "load.tps=50",
    "load.batch_size=10",
    "load.users=2",
    "load.accounts=16",
    "load.duration=90s",
    "load.warmup=15s",
    "load.cooldown=10s",
    "faults.0.at=30s",
    "faults.0.duration=15s",
    "criteria.min_tps=5",
    "criteria.max_recovery_s=120",
]
READY_TIMEOUT_S = 600.0


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return int(reply.status)


def test_platform_stages_on_kind(tmp_path: Path) -> None:
    plan = resolve_plan(
        load_scenario("devnet", SMALL_DEVNET), platform="kubernetes", run_id="kind-stages"
    )
    platform = KubernetesPlatform(tmp_path / "kind-stages", KubernetesOptions.from_env())
    try:
        platform.deploy(plan)
        platform.wait_ready(READY_TIMEOUT_S)
        endpoints = platform.endpoints()
        assert len(endpoints) == 4
        assert _get(f"http://{endpoints[0].ops}/readyz") == 200

        partition = plan.faults[0]
        apply_fault(platform, partition)
        assert any(faults for faults in platform.active_faults().values())
        clear_fault(platform, partition)
        assert not any(platform.active_faults().values())

        platform.kill(1)
        platform.restart(1)

        url = platform.prometheus_url()
        assert url is not None and _get(f"{url}/-/ready") == 200
    finally:
        platform.destroy()
    api = KubernetesPlatform.attach(tmp_path / "kind-stages").api()
    namespace = api.namespace(platform.namespace)
    assert namespace is None or namespace["status"]["phase"] == "Terminating"


def test_whole_campaign_on_kind(tmp_path: Path) -> None:
    out = tmp_path / "report"
    sets = [item for value in SMALL_DEVNET for item in ("--set", value)]
    command = [
        sys.executable,
        "-c",
        "import sys; from orchestrator.cli import main; sys.exit(main())",
        "run",
        "devnet",
        "--platform",
        "kubernetes",
        "--run-dir",
        str(tmp_path / "runs"),
        "--out",
        str(out),
        *sets,
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] is True
    assert report["platform"] == "kubernetes"
