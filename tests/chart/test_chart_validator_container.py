"""The validator container is one definition (``orchestrator.platforms.validator_container``):
the chart rendered by the real Helm engine (with the values ``aitbc-testnet`` gives it, and
with the chart's own defaults, as a plain ``helm install`` gets them) runs the same container
the docker platform runs: command, environment, mounts, user and hardening, probes and image,
addresses aside (a pod listens on the chart's ports, a container on the host's network on
ports of its own). That the engine runs exactly the docker platform's spec is checked against
the engine: tests/containers/test_docker_platform.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chart_support import FULLNAME, NAMESPACE, RELEASE, Render, one

from orchestrator.external.container_engine import ContainerSpec
from orchestrator.platforms.docker.spec import ContainerPlace, validator_container_spec
from orchestrator.platforms.kubernetes.chart_values import ChartSettings, chart_values, make_genesis
from orchestrator.platforms.validator_container import (
    EnvSource,
    default_image_reference,
    validator_container,
)
from orchestrator.scenario.loader import load_scenario
from orchestrator.scenario.plan import resolve_plan

#: Where each environment source comes from in a pod.
POD_SOURCES = {
    EnvSource.POD_NAME: {"fieldRef": {"fieldPath": "metadata.name"}},
    EnvSource.NAMESPACE: {"fieldRef": {"fieldPath": "metadata.namespace"}},
    EnvSource.ADMIN_TOKEN: {"secretKeyRef": {"name": f"{FULLNAME}-admin", "key": "admin-token"}},
}
#: A docker validator's own ports (any: addresses are aside).
HOST_GRPC, HOST_OPS = 31002, 31006


def docker_spec(tmp_path: Path) -> ContainerSpec:
    """What the docker platform runs for a validator (its runner's one spec function)."""
    place = ContainerPlace("aitbc-r-validator-2", "aitbc-r-data-2", tmp_path / "node-2")
    return validator_container_spec(
        validator_container(grpc_port=HOST_GRPC, ops_port=HOST_OPS),
        place,
        image=default_image_reference({}),
        env={source: f"<{source}>" for source in EnvSource},
        labels={},
    )


def smoke_values() -> dict[str, Any]:
    plan = resolve_plan(load_scenario("devnet-smoke"), platform="kubernetes", run_id="r")
    return chart_values(plan, make_genesis(plan), ChartSettings(RELEASE, NAMESPACE))


def mount_kinds_in_pod(container: dict[str, Any], pod: dict[str, Any], sts: dict[str, Any]) -> Any:
    """mount path -> (what is mounted, read-only) of the pod's validator container."""
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    claims = {claim["metadata"]["name"] for claim in sts["spec"].get("volumeClaimTemplates", [])}
    kinds = {}
    for mount in container["volumeMounts"]:
        volume = volumes.get(mount["name"], {})
        kind = (
            "persistent" if mount["name"] in claims
            else "config" if "configMap" in volume
            else "scratch" if "emptyDir" in volume
            else f"unknown {volume}"
        )  # fmt: skip
        kinds[mount["mountPath"]] = (kind, bool(mount.get("readOnly", False)))
    return kinds


def mount_kinds_in_container(spec: ContainerSpec) -> Any:
    kinds = {
        mount.target: ("persistent" if mount.kind == "volume" else "config", mount.read_only)
        for mount in spec.mounts
    }
    kinds.update({path: ("scratch", False) for path in spec.tmpfs})
    return kinds


@pytest.mark.parametrize("values", ["aitbc-testnet's", "the chart's defaults"])
def test_the_chart_runs_the_container_the_docker_platform_runs(
    render: Render, tmp_path: Path, values: str
) -> None:
    manifests = render(smoke_values() if values == "aitbc-testnet's" else None)
    sts = one(manifests, "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    spec = docker_spec(tmp_path)
    shared = validator_container()

    assert container["image"] == spec.image  # aitbc-testnet-node:<version>
    assert "command" not in container and spec.entrypoint is None  # the image's: aitbc-node
    assert tuple(container["args"]) == spec.command
    assert [variable["name"] for variable in container["env"]] == list(spec.env)
    for variable, source in zip(container["env"], [v.source for v in shared.env], strict=True):
        assert variable["valueFrom"] == POD_SOURCES[source]
        assert spec.env[variable["name"]] == f"<{source}>"
    mounts = {
        "/etc/aitbc": ("config", True),
        "/data": ("persistent", False),
        "/tmp": ("scratch", False),
    }
    assert mount_kinds_in_pod(container, pod, sts) == mounts
    assert mount_kinds_in_container(spec) == mounts

    security = container["securityContext"]
    assert f"{security['runAsUser']}:{security['runAsGroup']}" == spec.user == "10001:10001"
    assert pod["securityContext"]["runAsUser"] == security["runAsUser"]
    assert security["readOnlyRootFilesystem"] is spec.read_only_root is True
    assert tuple(security["capabilities"]["drop"]) == spec.cap_drop == ("ALL",)
    assert security["allowPrivilegeEscalation"] is (not spec.no_new_privileges) is False

    # probes: the liveness probe is the container's health check, on the validator's ops port
    liveness, startup = container["livenessProbe"], container["startupProbe"]
    check = spec.healthcheck
    assert check is not None
    assert liveness["httpGet"] == {"path": "/healthz", "port": "ops"}
    assert f"http://127.0.0.1:{HOST_OPS}{liveness['httpGet']['path']}" in check.test[-1]
    assert (liveness["periodSeconds"], liveness["timeoutSeconds"]) == (
        check.interval_s,
        check.timeout_s,
    )
    assert liveness["failureThreshold"] == check.retries
    assert startup["httpGet"] == liveness["httpGet"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == check.start_period_s
    # readiness (the platform's wait on a docker run) and every timing: the shared definition
    assert container["readinessProbe"]["grpc"] == {"port": shared.ports["grpc"]}
    for name, probe in shared.probes().items():
        rendered = container[f"{name}Probe"]
        assert {key: rendered[key] for key in probe.timings()} == probe.timings(), name
        assert rendered.get("initialDelaySeconds", 0) == probe.initial_delay_s, name

    # addresses aside: the pod's ports are the shared default ones
    assert {port["name"]: port["containerPort"] for port in container["ports"]} == dict(
        shared.ports
    )
