"""Faults as Chaos Mesh objects (``AITBC_CHAOS=chaos-mesh``): NetworkChaos for partition,
delay and loss (a partition cuts the target validators from the rest, both ways), PodChaos
``pod-failure`` for pause. Kinds without an equivalent here (equivocation) still go through
the node fault API. Each object is verified (Chaos Mesh reports ``AllInjected``) and its
deletion waited for (Chaos Mesh's finalizer)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from orchestrator.errors import FaultNotVerified, PlatformError
from orchestrator.external.kubernetes import KubeApi
from orchestrator.faults.node_faults import FAULT_BACKSTOP_S
from orchestrator.platforms.kubernetes.state import (
    KubernetesState,
    ObjectRef,
    label_value,
    ref_of_body,
)
from orchestrator.scenario.plan import PlannedFault

__all__ = ["CHAOS_API_VERSION", "CHAOS_KINDS", "ChaosMesh", "chaos_objects"]

CHAOS_API_VERSION = "chaos-mesh.org/v1alpha1"
CHAOS_KINDS = ("partition", "delay", "loss", "pause")
"""The fault kinds Chaos Mesh applies; the others go through the node fault API."""
CHAOS_WAIT_S = 60.0
"""How long Chaos Mesh may take to inject an object or to finish deleting it."""


def chaos_objects(fault: PlannedFault, state: KubernetesState) -> list[dict[str, Any]]:
    """The Chaos Mesh objects of ``fault``: NetworkChaos for partition / delay / loss (the
    validators ``ids`` against the rest for a partition), PodChaos ``pod-failure`` for pause."""
    name = f"{state.release}-fault-{fault.index}-{fault.kind}"[:63].rstrip("-")
    selector_labels = {
        "app.kubernetes.io/instance": state.release,
        "app.kubernetes.io/component": "validator",
    }

    def selector(ids: Sequence[int]) -> dict[str, Any]:
        return {
            "namespaces": [state.namespace],
            "labelSelectors": dict(selector_labels),
            "expressionSelectors": [
                {
                    "key": "apps.kubernetes.io/pod-index",
                    "operator": "In",
                    "values": [str(i) for i in ids],
                }
            ],
        }

    metadata = {
        "name": name,
        "namespace": state.namespace,
        "labels": {
            "aitbc.io/run-id": label_value(state.run_id),
            "aitbc.io/fault": str(fault.index),
        },
    }
    duration = (
        {"duration": f"{int(fault.duration_s + FAULT_BACKSTOP_S)}s"}
        if fault.duration_s is not None
        else {}
    )
    ids = sorted(set(fault.ids))
    if fault.kind == "pause":
        return [
            {
                "apiVersion": CHAOS_API_VERSION,
                "kind": "PodChaos",
                "metadata": metadata,
                "spec": {"action": "pod-failure", "mode": "all", "selector": selector(ids)}
                | duration,
            }
        ]
    spec: dict[str, Any] = {"mode": "all", "selector": selector(ids)} | duration
    if fault.kind == "partition":
        outside = [i for i in range(state.validators) if i not in ids]
        spec |= {
            "action": "partition",
            "direction": "both",
            "target": {"mode": "all", "selector": selector(outside)},
        }
    elif fault.kind == "delay":
        spec |= {
            "action": "delay",
            "direction": "to",
            "delay": {
                "latency": f"{float(fault.params.get('delay_ms', 0)):g}ms",
                "jitter": f"{float(fault.params.get('jitter_ms', 0)):g}ms",
            },
        }
    elif fault.kind == "loss":
        spec |= {
            "action": "loss",
            "direction": "to",
            "loss": {"loss": f"{float(fault.params['rate']) * 100:g}"},
        }
    else:
        raise PlatformError(f"fault {fault.index}: {fault.kind} has no Chaos Mesh equivalent")
    return [
        {
            "apiVersion": CHAOS_API_VERSION,
            "kind": "NetworkChaos",
            "metadata": metadata,
            "spec": spec,
        }
    ]


def _injected(body: dict[str, Any]) -> bool:
    for condition in (body.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "AllInjected" and str(condition.get("status")) == "True":
            return True
    return False


class ChaosMesh:
    """Creates and deletes the Chaos Mesh objects of faults in one namespace, each waited for
    (polling every ``poll_s`` on ``clock``, up to ``CHAOS_WAIT_S``)."""

    def __init__(
        self,
        api: Callable[[], KubeApi],
        namespace: str,
        *,
        poll_s: float,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._poll_s = poll_s
        self._clock = clock
        self._sleep = sleep

    def apply(self, fault: PlannedFault, state: KubernetesState, created: list[ObjectRef]) -> None:
        """Create the objects of ``fault`` (each appended to ``created`` as it is, so a failure
        leaves nothing unknown behind) and wait until Chaos Mesh injected them all."""
        api = self._api()
        refs: list[ObjectRef] = []
        for body in chaos_objects(fault, state):
            api.apply(body, self._namespace)
            refs.append(ref_of_body(body))
            created.append(refs[-1])
        deadline = self._clock() + CHAOS_WAIT_S
        for ref in refs:
            while True:
                current = api.get(ref.api_version, ref.kind, ref.name, self._namespace)
                if current is not None and _injected(current):
                    break
                if self._clock() >= deadline:
                    raise FaultNotVerified(
                        f"fault {fault.index}: {ref.kind}/{ref.name} was created but Chaos Mesh "
                        f"did not report AllInjected within {CHAOS_WAIT_S:g} s; is Chaos Mesh "
                        "running?"
                    )
                self._sleep(min(1.0, self._poll_s))

    def delete(self, ref: ObjectRef) -> None:
        """Delete one object and wait until it is gone."""
        api = self._api()
        api.delete(ref.api_version, ref.kind, ref.name, self._namespace)
        deadline = self._clock() + CHAOS_WAIT_S
        while api.get(ref.api_version, ref.kind, ref.name, self._namespace) is not None:
            if self._clock() >= deadline:
                raise FaultNotVerified(
                    f"{ref.kind}/{ref.name} still exists {CHAOS_WAIT_S:g} s after its deletion "
                    "(a finalizer of Chaos Mesh did not finish)"
                )
            self._sleep(min(1.0, self._poll_s))

    def refs_of(self, fault: PlannedFault, state: KubernetesState) -> list[ObjectRef]:
        """The objects ``fault`` would have (to delete what another invocation created)."""
        return [ref_of_body(body) for body in chaos_objects(fault, state)]
