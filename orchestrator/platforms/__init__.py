"""Platforms that run a plan, and the registry that picks one by name.

Implementations register here by module path (imported only when chosen, so ``--help`` and
``validate`` never import the Kubernetes client). To add one: write a class with the
``Platform`` methods whose constructor takes the run directory, and add its ``module:Class``
to ``_IMPLEMENTATIONS``."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import cast

from orchestrator.errors import UsageError
from orchestrator.platforms.base import Endpoint, Platform, PlatformError

__all__ = [
    "PLATFORM_NAMES",
    "Endpoint",
    "Platform",
    "PlatformError",
    "get_platform",
    "implemented_platforms",
]

PLATFORM_NAMES = ("local", "kubernetes", "sim")
"""Every platform the CLI accepts (``--platform``)."""

_IMPLEMENTATIONS: dict[str, str] = {
    "local": "orchestrator.platforms.local:LocalPlatform",
    "kubernetes": "orchestrator.platforms.kubernetes:KubernetesPlatform",
    "sim": "orchestrator.platforms.sim:SimPlatform",
}


def implemented_platforms() -> tuple[str, ...]:
    return tuple(name for name in PLATFORM_NAMES if name in _IMPLEMENTATIONS)


def get_platform(name: str, run_dir: Path) -> Platform:
    """The platform called ``name`` for the run whose files live in ``run_dir``
    (``<--run-dir>/<run_id>``).

    Raises UsageError for an unknown name, PlatformError for one not implemented yet."""
    if name not in PLATFORM_NAMES:
        raise UsageError(f"unknown platform {name!r}: use one of {', '.join(PLATFORM_NAMES)}")
    target = _IMPLEMENTATIONS.get(name)
    if target is None:
        available = ", ".join(implemented_platforms())
        raise PlatformError(
            f"platform {name!r} is not implemented yet in this build; available now: "
            f"{available} (e.g. --platform sim)"
        )
    module_name, _, class_name = target.partition(":")
    factory = getattr(importlib.import_module(module_name), class_name)
    return cast(Platform, factory(Path(run_dir)))
