"""What every platform must agree on, defined once and checked where it lands: the scrape jobs
(the chart rendered by the real Helm engine, the local Prometheus config, the queries of
``status``), the testnet genesis (the local platform's network files and the chart's values),
the load generator's environment, and the fault kinds (scenario files and the ``fault``
command)."""

from __future__ import annotations

import typing
from pathlib import Path

import yaml
from aitbc_node.commands.genesis_cmd import make_local_testnet
from orchestrator_support import write_run_state

from orchestrator.commands.fault import FaultKindName
from orchestrator.external.helm import RenderedManifest, render_chart
from orchestrator.external.prometheus_server import PrometheusLayout
from orchestrator.faults.kinds import KINDS, cli_kinds, kind_names
from orchestrator.measure.promql import LOADGEN_JOB, VALIDATOR_JOB, committed_tps_now
from orchestrator.platforms.genesis import genesis_settings, make_genesis
from orchestrator.platforms.kubernetes.chart_values import (
    CHART_DIR,
    GENESIS_MOUNT_PATH,
    ChartSettings,
    apply_chart_sets,
    chart_values,
)
from orchestrator.platforms.local.load import local_loadgen_environment
from orchestrator.platforms.local.prometheus import prepare_prometheus
from orchestrator.scenario.loader import load_scenario
from orchestrator.scenario.model import FaultSpec
from orchestrator.scenario.plan import Plan, resolve_plan

RELEASE = "one"
NAMESPACE = "aitbc-one"


def plan_of(*sets: str, platform: str = "kubernetes") -> Plan:
    return resolve_plan(load_scenario("devnet-smoke", sets), platform=platform, run_id="one-1")


def rendered(plan: Plan, *sets: str) -> list[RenderedManifest]:
    genesis = make_genesis(genesis_settings(plan))
    settings = ChartSettings(release=RELEASE, namespace=NAMESPACE, bundled_prometheus=True)
    values = apply_chart_sets(chart_values(plan, genesis, settings), sets)
    return render_chart(CHART_DIR, values, release=RELEASE, namespace=NAMESPACE)


def one(manifests: list[RenderedManifest], kind: str, part: str = "") -> dict[str, typing.Any]:
    (body,) = [m.body for m in manifests if m.kind == kind and part in m.name]
    return body


def test_the_charts_scrape_jobs_are_the_ones_status_queries(tmp_path: Path) -> None:
    manifests = rendered(plan_of(), "podMonitor.enabled=true")
    config_map = one(manifests, "ConfigMap", "prometheus")
    config = yaml.safe_load(config_map["data"]["prometheus.yml"])
    assert [job["job_name"] for job in config["scrape_configs"]] == [VALIDATOR_JOB, LOADGEN_JOB]
    monitor = one(manifests, "PodMonitor")
    validators, loadgen = monitor["spec"]["podMetricsEndpoints"]
    assert {"targetLabel": "job", "replacement": VALIDATOR_JOB, "action": "replace"} in (
        validators["relabelings"]
    )
    assert {"targetLabel": "job", "replacement": LOADGEN_JOB, "action": "replace"} in (
        loadgen["relabelings"]
    )
    assert f'job="{VALIDATOR_JOB}"' in committed_tps_now()
    prepare_prometheus(
        tmp_path,
        run_id="one-1",
        validators=[(0, "127.0.0.1:1")],
        loadgen="127.0.0.1:2",
        listen="127.0.0.1:3",
        binary="prometheus",
    )
    local = yaml.safe_load(PrometheusLayout(tmp_path).config.read_text())
    assert [job["job_name"] for job in local["scrape_configs"]] == [VALIDATOR_JOB, LOADGEN_JOB]


def test_the_local_network_and_the_chart_run_the_same_genesis(tmp_path: Path) -> None:
    for sets in ((), ("network.block_interval_ms=250",)):
        plan = plan_of(*sets, platform="local")
        written = make_local_testnet(
            tmp_path / str(len(sets)), **genesis_settings(plan).as_kwargs(), host="127.0.0.1"
        )
        assert written.genesis == make_genesis(genesis_settings(plan))
        values = chart_values(
            plan, written.genesis, ChartSettings(release=RELEASE, namespace=NAMESPACE)
        )
        assert values["chainId"] == written.genesis.chain_id
        assert values["keySeed"] == plan.network.genesis_seed


def test_the_local_and_chart_load_generators_get_the_same_load(tmp_path: Path) -> None:
    plan = plan_of("load.shape=step", "load.steps=[{tps: 10, duration: 20s}]", platform="local")
    state = write_run_state(tmp_path / "one-1")
    local = local_loadgen_environment(state, plan.load)
    chart = chart_values(
        plan,
        make_genesis(genesis_settings(plan)),
        ChartSettings(release=RELEASE, namespace=NAMESPACE, loadgen_workers=3),
    )["loadgen"]["env"]
    where = {"AITBC_GENESIS", "AITBC_TARGETS", "AITBC_PROBE_LOG", "AITBC_SUMMARY"}
    where |= {"AITBC_LOADGEN_METRICS_PORT", "AITBC_WORKERS"}
    assert {k: v for k, v in local.items() if k not in where} == {
        k: v for k, v in chart.items() if k not in where
    }
    assert chart["AITBC_GENESIS"] == GENESIS_MOUNT_PATH and chart["AITBC_WORKERS"] == "3"


def test_fault_kinds_are_defined_once() -> None:
    scenario_kinds = typing.get_args(FaultSpec.model_fields["kind"].annotation)
    assert scenario_kinds == kind_names() == tuple(kind.name for kind in KINDS)
    assert tuple(choice.value for choice in FaultKindName) == cli_kinds()
    assert "churn" not in cli_kinds()
