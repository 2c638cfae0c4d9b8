"""The campaign's sequence and teardown, on the in-memory platform (``memory_platform.py``): a
platform without what the plan needs is refused before anything is deployed; when a stage
fails or Ctrl-C lands in the middle of the load, every fault is cleared, the load stopped, the
artifacts kept and the testnet destroyed (unless ``keep``). What happens is decided by the
platform's state (a fault active), not by timing. The whole campaign with real processes and
a real Prometheus: tests/e2e/test_campaign.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from memory_platform import MemoryPlatform

from orchestrator.errors import CapabilityError, PlatformError
from orchestrator.platforms.capabilities import Stopped
from orchestrator.scenario.loader import parse_scenario_text
from orchestrator.scenario.plan import Plan, resolve_plan
from orchestrator.stages.campaign import Campaign, campaign_capabilities
from orchestrator.stages.events import ProgressEvent

SCENARIO = """\
name: teardown
network: {validators: 4, authorities: 4}
load: {tps: 50, duration: 60s, warmup: 5s, cooldown: 5s}
faults:
  - {at: 100ms, kind: partition, target: [1], duration: 50s}
"""


def plan_of(text: str = SCENARIO) -> Plan:
    return resolve_plan(parse_scenario_text(text), platform="local", run_id="memory-1")


def campaign(platform: Any, tmp_path: Path, **kwargs: Any) -> tuple[Campaign, list[str]]:
    stages: list[str] = []

    def progress(event: ProgressEvent) -> None:
        stages.append(event.stage)

    runner = Campaign(
        plan_of(),
        platform,
        tmp_path / "out",
        on_progress=progress,
        progress_every_s=0.05,
        **kwargs,
    )
    return runner, stages


def test_the_campaign_needs_the_live_capabilities_and_those_of_its_faults() -> None:
    names = [capability.__name__ for capability in campaign_capabilities(plan_of())]
    assert names == [
        "Deployer",
        "Teardown",
        "NodeAccess",
        "LoadRunner",
        "PrometheusAccess",
        "Artifacts",
        "NodeFaults",
    ]


def test_a_platform_without_a_needed_capability_is_refused_before_deploy(
    tmp_path: Path,
) -> None:
    class NoFaults:
        """Everything a campaign needs but node faults."""

        name = "no-faults"

        def __init__(self) -> None:
            self.calls: list[str] = []

        def image_tag(self) -> str:
            return "t"

        def deploy(self, plan: Plan) -> None:
            self.calls.append("deploy")

        def wait_ready(self, timeout_s: float, on_progress: Any = None) -> None: ...

        def destroy(self) -> list[Stopped]:
            self.calls.append("destroy")
            return []

        def endpoints(self) -> list[Any]:
            return []

        def client(self, index: int) -> Any: ...

        def start_load(self, plan: Plan) -> None: ...

        def stop_load(self) -> None: ...

        def load_running(self) -> bool:
            return False

        def wait_load(self, timeout_s: float) -> bool:
            return True

        def load_files(self) -> Any: ...

        def prometheus_url(self) -> str | None:
            return None

        def collect_artifacts(self, dest: Path) -> None: ...

    platform = NoFaults()
    with pytest.raises(CapabilityError) as caught:
        campaign(platform, tmp_path)
    message = str(caught.value)
    assert "platform no-faults cannot run the campaign of teardown" in message
    assert "no NodeFaults capability" in message and caught.value.exit_code == 2
    assert platform.calls == []


def test_a_failed_deploy_is_torn_down(tmp_path: Path) -> None:
    platform = MemoryPlatform(fail={("deploy", "memory-1")})
    runner, _ = campaign(platform, tmp_path)
    with pytest.raises(PlatformError, match="deploy memory-1 failed on purpose"):
        runner.run()
    assert platform.calls() == [
        ("deploy", "memory-1"),
        ("collect_artifacts", None),
        ("destroy", None),
    ]


def test_a_platform_without_prometheus_is_torn_down_before_any_load(tmp_path: Path) -> None:
    platform = MemoryPlatform(prometheus=None)
    runner, stages = campaign(platform, tmp_path)
    with pytest.raises(PlatformError, match="runs no Prometheus"):
        runner.run()
    assert platform.calls("start_load", "inject") == []
    assert platform.calls()[-1] == ("destroy", None)
    assert stages[0] == "up" and stages[-1] == "down" and "load" not in stages


def test_a_load_generator_that_dies_clears_the_faults_and_tears_down(tmp_path: Path) -> None:
    platform = MemoryPlatform(load_exits_when=lambda memory: bool(memory.active))
    runner, stages = campaign(platform, tmp_path)
    with pytest.raises(PlatformError, match="the load generator exited"):
        runner.run()
    assert platform.calls("inject", "remove", "stop_load", "collect_artifacts", "destroy") == [
        ("inject", 0),
        ("remove", 0),
        ("stop_load", None),
        ("collect_artifacts", None),
        ("destroy", None),
    ]
    assert not platform.active and not platform.load_on and not platform.deployed
    assert stages[-1] == "down"


def test_ctrl_c_during_the_load_clears_the_faults_stops_the_load_and_tears_down(
    tmp_path: Path,
) -> None:
    platform = MemoryPlatform(interrupt=lambda memory: bool(memory.active))
    runner, _ = campaign(platform, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    after = platform.calls()[platform.calls().index(("ctrl-c", None)) :]
    assert after == [
        ("ctrl-c", None),
        ("remove", 0),
        ("stop_load", None),
        ("collect_artifacts", None),
        ("destroy", None),
    ]
    assert not platform.active and not platform.load_on and not platform.deployed


def test_keep_clears_the_faults_and_stops_the_load_but_leaves_the_testnet(
    tmp_path: Path,
) -> None:
    platform = MemoryPlatform(interrupt=lambda memory: bool(memory.active))
    runner, stages = campaign(platform, tmp_path, keep=True)
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    assert ("destroy", None) not in platform.calls()
    assert not platform.active and not platform.load_on and platform.deployed
    assert "down" not in stages
