"""Platforms that run a plan, and the registry that names them and states what each can do.

Implementations are imported only when chosen (``--help`` and ``validate`` never import the
Kubernetes client). To add one: a package ``platforms/<name>/`` whose class subclasses the
capability Protocols it implements (``platforms/capabilities.py``) and takes the run directory,
and an entry in ``PLATFORMS`` listing the same capabilities (a test checks they agree).

Runs that later invocations attach to keep a ``state.json`` naming their platform
(``platforms/run_dirs.py``); ``attach_platform`` reads it and asks that platform to attach.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import CapabilityError, PlatformError, UsageError
from orchestrator.platforms.capabilities import (
    LIVE_CAPABILITIES,
    Artifacts,
    Deployer,
    LiveRun,
    Platform,
    Simulator,
    Teardown,
    ValidatorProcesses,
)
from orchestrator.platforms.run_dirs import find_run_dir, run_platform

__all__ = [
    "PLATFORMS",
    "PLATFORM_NAMES",
    "PlatformSpec",
    "attach_platform",
    "attach_run",
    "get_platform",
    "platform_spec",
]


@dataclass(frozen=True)
class PlatformSpec:
    """A platform of the registry: its name, where its class is (``module:Class``, imported
    when chosen) and the capabilities it has."""

    name: str
    target: str
    capabilities: tuple[type, ...]
    summary: str


PLATFORMS: dict[str, PlatformSpec] = {
    "local": PlatformSpec(
        "local",
        "orchestrator.platforms.local:LocalPlatform",
        (*LIVE_CAPABILITIES, ValidatorProcesses),
        "validator processes, a real Prometheus and a real Locust on this machine",
    ),
    "kubernetes": PlatformSpec(
        "kubernetes",
        "orchestrator.platforms.kubernetes:KubernetesPlatform",
        LIVE_CAPABILITIES,
        "the bundled Helm chart on a cluster, one namespace per run",
    ),
    "sim": PlatformSpec(
        "sim",
        "orchestrator.platforms.sim:SimPlatform",
        (Deployer, Teardown, Artifacts, Simulator),
        "the consensus core under the node's deterministic network simulator",
    ),
}
"""Every platform, by the name ``--platform`` takes."""

PLATFORM_NAMES = tuple(PLATFORMS)


def platform_spec(name: str) -> PlatformSpec:
    """The registry entry of ``name``; UsageError (exit 2) for an unknown one."""
    spec = PLATFORMS.get(name)
    if spec is None:
        raise UsageError(f"unknown platform {name!r}: use one of {', '.join(PLATFORM_NAMES)}")
    return spec


def _platform_class(spec: PlatformSpec) -> Any:
    module_name, _, class_name = spec.target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def get_platform(name: str, run_dir: Path, **options: Any) -> Platform:
    """A new platform ``name`` for the run whose files live in ``run_dir``
    (``<--run-dir>/<run_id>``); ``options`` go to its constructor (e.g. ``base_port``)."""
    platform: Platform = _platform_class(platform_spec(name))(Path(run_dir), **options)
    return platform


def attach_platform(run_dir: Path) -> LiveRun:
    """The platform of the live run in ``run_dir`` (its state.json names the platform).
    Raises CapabilityError for a platform that cannot attach, PlatformError for a damaged
    run directory."""
    name = run_platform(run_dir)
    if name not in PLATFORMS:
        raise PlatformError(
            f"run {run_dir.name} is a {name!r} run, which this version does not know: stop it "
            "with the version that started it"
        )
    spec = PLATFORMS[name]
    if LiveRun not in spec.capabilities:
        raise CapabilityError(
            f"run {run_dir.name} is a {name} run: platform {name} has no LiveRun capability, so "
            "no command can act on it after it started; use --platform local or kubernetes"
        )
    attached: LiveRun = _platform_class(spec).attach(Path(run_dir))
    return attached


def attach_run(run_root: Path, run_id: str | None) -> LiveRun:
    """The platform of run ``run_id`` under ``run_root`` (the newest run without a run id).
    Raises UsageError when there is no such run."""
    return attach_platform(find_run_dir(run_root, run_id))
