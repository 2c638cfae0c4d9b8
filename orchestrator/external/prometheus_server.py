"""The one module that runs the ``prometheus`` binary (the local platform's Prometheus server).

Layout of its folder (``<run>/prometheus/``)::

    prometheus.yml        scrape and evaluate every 1 s; file-based service discovery
    targets/validators.json   [{targets: [host:port], labels: {validator: "i", job: ...}}]
    targets/loadgen.json      the Locust process's metrics port (job aitbc-loadgen)
    data/                 the TSDB (small retention)

Prometheus re-reads the target files on change (and every second), so the platform rewrites
them instead of reloading the server. ``--web.enable-lifecycle`` allows ``/-/reload`` and
``/-/quit``. ``prometheus_argv`` is the server's command line (the caller runs it as its own
process); queries go through ``orchestrator.external.prometheus``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import PlatformError

__all__ = [
    "INSTALL_HINT",
    "SCRAPE_INTERVAL_S",
    "PrometheusLayout",
    "ScrapeTarget",
    "find_prometheus",
    "prometheus_argv",
    "write_config",
    "write_targets",
]

SCRAPE_INTERVAL_S = 1
RETENTION = "2d"
RETENTION_SIZE = "512MB"
INSTALL_HINT = (
    "install it: `make install` (Debian package prometheus) or apt-get install -y prometheus"
)


@dataclass(frozen=True)
class ScrapeTarget:
    """One ``host:port`` to scrape, with its labels (``validator`` for a validator)."""

    address: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class PrometheusLayout:
    """Paths of a Prometheus folder."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "prometheus.yml"

    @property
    def targets_dir(self) -> Path:
        return self.root / "targets"

    @property
    def validators_file(self) -> Path:
        return self.targets_dir / "validators.json"

    @property
    def loadgen_file(self) -> Path:
        return self.targets_dir / "loadgen.json"

    @property
    def data(self) -> Path:
        return self.root / "data"


def find_prometheus(path: str | None = None) -> str:
    """The ``prometheus`` executable on ``PATH`` (or ``path``'s PATH). Raises PlatformError
    with the install hint when it is missing."""
    found = shutil.which("prometheus", path=path)
    if found is None:
        raise PlatformError(f"the prometheus binary is not on PATH: {INSTALL_HINT}")
    return found


def write_config(
    layout: PrometheusLayout,
    *,
    run_id: str,
    validator_job: str,
    loadgen_job: str,
    scrape_interval_s: float = SCRAPE_INTERVAL_S,
) -> Path:
    """Write ``prometheus.yml`` (scrape and evaluation every ``scrape_interval_s``, a file-SD
    job for the validators and one for the load generator) and empty target files. Returns its
    path."""
    layout.targets_dir.mkdir(parents=True, exist_ok=True)
    layout.data.mkdir(parents=True, exist_ok=True)
    jobs = ((validator_job, layout.validators_file), (loadgen_job, layout.loadgen_file))
    lines = [
        "# Written by aitbc-testnet (orchestrator/external/prometheus_server.py) for this run.",
        "global:",
        f"  scrape_interval: {scrape_interval_s:g}s",
        f"  scrape_timeout: {scrape_interval_s:g}s",
        f"  evaluation_interval: {scrape_interval_s:g}s",
        "  external_labels:",
        f"    aitbc_run: {json.dumps(run_id)}",
        "scrape_configs:",
    ]
    for job, target_file in jobs:
        lines += [
            f"  - job_name: {job}",
            "    file_sd_configs:",
            f"      - files: [{json.dumps(str(target_file))}]",
            "        refresh_interval: 1s",
        ]
    layout.config.write_text("\n".join(lines) + "\n")
    for _, target_file in jobs:
        if not target_file.exists():
            write_targets(target_file, ())
    return layout.config


def write_targets(path: Path, targets: Sequence[ScrapeTarget]) -> None:
    """Write a file-SD target file atomically (Prometheus may read it at any moment)."""
    document = [{"targets": [target.address], "labels": dict(target.labels)} for target in targets]
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    temporary.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(temporary, path)


def prometheus_argv(layout: PrometheusLayout, listen: str, binary: str) -> list[str]:
    """The server's command line: ``layout``'s config and TSDB, listening on ``listen``
    (``host:port``); run it with ``layout.root`` as working directory."""
    return [
        binary,
        f"--config.file={layout.config}",
        f"--storage.tsdb.path={layout.data}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--storage.tsdb.retention.size={RETENTION_SIZE}",
        f"--web.listen-address={listen}",
        "--web.enable-lifecycle",
        "--log.level=warn",
    ]
