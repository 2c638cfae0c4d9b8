"""Plan -> values of the Helm chart ``helm/aitbc-testnet`` (genesis included).

The chart runs the same testnet the local platform runs: the genesis is
``platforms.genesis`` (the plan's seed: keys, stake and accounts derive from it), ``keySeed`` is
that same seed (each pod derives its own keys from it and its ordinal), ``chainId`` is the
genesis' chain id, and the Locust pods get ``platforms.loadgen_env``'s variables. One function
per job:

* ``make_genesis(plan)`` -> the real genesis (GenesisError, exit 2, when the plan cannot make
  one),
* ``chart_values(plan, genesis, settings)`` -> the values dict the Helm engine renders (the
  Prometheus scrape job names included: ``measure.promql``'s, as on the local platform),
* ``apply_chart_sets(values, ["podMonitor.enabled=true", ...])`` -> ``helm --set`` style
  overrides (values parsed as YAML, ``\\.`` for a literal dot as in ``genesis\\.json``).
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aitbc_node.errors import AitbcError
from aitbc_node.genesis import Genesis

from orchestrator.errors import UsageError
from orchestrator.external.locust import run_time
from orchestrator.measure.promql import LOADGEN_JOB, VALIDATOR_JOB
from orchestrator.platforms.genesis import genesis_settings
from orchestrator.platforms.genesis import make_genesis as make_testnet_genesis
from orchestrator.platforms.loadgen_env import loadgen_environment
from orchestrator.scenario.plan import Plan

__all__ = [
    "CHART_DIR",
    "DEFAULT_LOADGEN_WORKERS",
    "GENESIS_MOUNT_PATH",
    "RESOURCE_MODES",
    "ChartSettings",
    "GenesisError",
    "apply_chart_sets",
    "bundled_chart_dir",
    "chart_values",
    "genesis_json",
    "make_genesis",
]


def bundled_chart_dir() -> Path:
    """The chart ``helm/aitbc-testnet`` that comes with this orchestrator: the copy inside the
    installed package (``orchestrator/chart/aitbc-testnet``, put there by ``setup.py`` when a
    wheel is built: the image, any ``pip install``), else the source checkout's (an editable
    install, or tests run from the repository)."""
    package = Path(str(importlib.resources.files("orchestrator"))).resolve()
    packaged = package / "chart" / "aitbc-testnet"
    if (packaged / "Chart.yaml").is_file():
        return packaged
    return package.parent / "helm" / "aitbc-testnet"


CHART_DIR = bundled_chart_dir()
"""The bundled chart (see ``bundled_chart_dir``)."""

GENESIS_MOUNT_PATH = "/etc/aitbc/genesis.json"
"""Where the chart mounts the genesis in a validator pod (the config ConfigMap)."""

DEFAULT_LOADGEN_WORKERS = 2
"""Locust worker pods when the load generator runs in the cluster."""

RESOURCE_MODES = ("default", "fast", "balanced", "secure")
"""The chart's per-mode resource entries; the scenario's resources apply to every one."""

_SET_ITEM = re.compile(r"^(?P<key>[^=]+)=(?P<value>.*)$", re.DOTALL)
_ERA = re.compile(r"^[A-Za-z0-9._-]{1,63}$")


class GenesisError(UsageError):
    """The plan cannot make a valid genesis (e.g. epoch_length below the node's minimum).
    Exit 2: the scenario must change."""


@dataclass(frozen=True)
class ChartSettings:
    """What a chart install needs beyond the plan. Defaults suit ``render``."""

    release: str
    """Helm release name: names the objects (``<release>-aitbc-testnet``)."""
    namespace: str
    """Namespace the objects are rendered into."""
    image_tag: str | None = None
    """Validator (and Locust) image tag; None keeps the chart's default."""
    image_repository: str | None = None
    """Image repository; None keeps the chart's default (aitbc-testnet-node)."""
    loadgen: bool = True
    """Render the Locust master Job and worker Deployment with the plan's load."""
    loadgen_workers: int = DEFAULT_LOADGEN_WORKERS
    bundled_prometheus: bool = False
    """Render the chart's own Prometheus (clusters without one)."""
    admin_token: str | None = None
    """Bearer token of the node fault API; None lets the chart derive one."""
    era: str | None = None
    """Data era (a change wipes every node's data); None keeps the chart's default."""
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    """Labels added to every object (``commonLabels``), e.g. the run id."""


def make_genesis(plan: Plan) -> Genesis:
    """The testnet genesis of ``plan`` (``platforms.genesis``). Raises GenesisError (exit 2)."""
    try:
        return make_testnet_genesis(genesis_settings(plan))
    except (AitbcError, ValueError) as error:
        network = plan.network
        raise GenesisError(
            f"scenario {plan.name}: cannot make its genesis ({network.validators} validators, "
            f"epoch_length {network.epoch_length}): {error}; fix the network section"
        ) from error


def genesis_json(genesis: Genesis) -> str:
    """The genesis as compact JSON (the chart's ``genesis.json`` value; a ConfigMap holds at
    most 1 MiB, so no indentation)."""
    return json.dumps(genesis.model_dump(mode="json"), separators=(",", ":"))


def chart_values(plan: Plan, genesis: Genesis, settings: ChartSettings) -> dict[str, Any]:
    """The chart values for ``plan``. Only keys the chart's values.schema.json knows."""
    network = plan.network
    requests = {"cpu": plan.resources.cpu, "memory": plan.resources.memory}
    resources = {
        mode: {"requests": dict(requests), "limits": {"memory": plan.resources.memory}}
        for mode in RESOURCE_MODES
    }
    values: dict[str, Any] = {
        "chainId": genesis.chain_id,
        "validators": network.validators,
        "authorities": network.authorities,
        "mode": network.mode,
        "keySeed": network.genesis_seed,
        "genesis.json": genesis_json(genesis),
        "resources": resources,
        "commonLabels": {
            "aitbc.io/scenario": plan.name,
            **dict(settings.extra_labels),
        },
    }
    if settings.era is not None:
        if not _ERA.match(settings.era):
            raise UsageError(f"era {settings.era!r} must be 1-63 letters, digits, '.', '_' or '-'")
        values["era"] = settings.era
    image: dict[str, Any] = {}
    if settings.image_repository:
        image["repository"] = settings.image_repository
    if settings.image_tag:
        image["tag"] = settings.image_tag
    if image:
        values["image"] = image  # Helm merges it over the chart's image defaults
    if settings.admin_token:
        values["admin"] = {"token": settings.admin_token}
    values["scrapeJobs"] = {"validators": VALIDATOR_JOB, "loadgen": LOADGEN_JOB}
    if settings.bundled_prometheus:
        values["prometheus"] = {"enabled": True}
    if settings.loadgen:
        values["loadgen"] = _loadgen_values(plan, settings.loadgen_workers)
    return values


def apply_chart_sets(values: Mapping[str, Any], sets: Sequence[str]) -> dict[str, Any]:
    """``values`` with each ``KEY=VALUE`` applied (dotted path, ``\\.`` for a literal dot, list
    items by number, VALUE parsed as YAML). Raises UsageError naming the bad item."""
    result = copy.deepcopy(dict(values))
    for item in sets:
        match = _SET_ITEM.match(item)
        if match is None or not match["key"].strip():
            raise UsageError(
                f"--chart-set {item!r} is not KEY=VALUE; write e.g. --chart-set "
                "podMonitor.enabled=true"
            )
        path = _split_key(match["key"].strip())
        try:
            value = yaml.safe_load(match["value"]) if match["value"] else ""
        except yaml.YAMLError as error:
            raise UsageError(f"--chart-set {item!r}: the value is not YAML: {error}") from None
        _assign(result, path, value, item)
    return result


# --- helpers ----------------------------------------------------------------------------------


def _loadgen_values(plan: Plan, workers: int) -> dict[str, Any]:
    load = plan.load
    users = load.users + (1 if load.probe_enabled else 0)
    return {
        "enabled": True,
        "workers": workers,
        "users": users,
        "spawnRate": users,
        "runTime": run_time(load.duration_s),
        "env": loadgen_environment(load, plan.run_id, genesis=GENESIS_MOUNT_PATH, workers=workers),
    }


def _split_key(key: str) -> list[str]:
    parts: list[str] = []
    current = ""
    index = 0
    while index < len(key):
        char = key[index]
        if char == "\\" and index + 1 < len(key) and key[index + 1] == ".":
            current += "."
            index += 2
            continue
        if char == ".":
            parts.append(current)
            current = ""
        else:
            current += char
        index += 1
    parts.append(current)
    return parts


def _assign(target: dict[str, Any], path: list[str], value: Any, item: str) -> None:
    node: Any = target
    for position, part in enumerate(path):
        last = position == len(path) - 1
        if not part:
            raise UsageError(f"--chart-set {item!r}: the key has an empty part; e.g. a.b=1")
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise UsageError(
                    f"--chart-set {item!r}: {part!r} is not an index of a list of {len(node)}"
                )
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise UsageError(
                f"--chart-set {item!r}: {'.'.join(path[:position])} is a value, not a map"
            )
        if last:
            node[part] = value
        else:
            node = node.setdefault(part, {})
