"""The one module that runs the ``prometheus`` binary (the local platform's Prometheus server).

Layout of its folder (``<run>/prometheus/``)::

    prometheus.yml        scrape and evaluate every 1 s; file-based service discovery
    targets/validators.json   [{targets: [host:port], labels: {validator: "i", job: ...}}]
    targets/loadgen.json      the Locust process's metrics port (job aitbc-loadgen)
    data/                 the TSDB (small retention)

Prometheus re-reads the target files on change (and every second), so the platform rewrites
them instead of reloading the server. ``--web.enable-lifecycle`` allows ``/-/reload`` and
``/-/quit``. ``query_instant`` is a tiny stdlib client for one instant PromQL query (the
campaign's measurement has its own module over prometheus-api-client).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.platforms.base import PlatformError

__all__ = [
    "INSTALL_HINT",
    "LOADGEN_JOB",
    "SCRAPE_INTERVAL_S",
    "VALIDATOR_JOB",
    "PromSample",
    "PrometheusLayout",
    "ScrapeTarget",
    "find_prometheus",
    "query_instant",
    "start_prometheus",
    "write_config",
    "write_targets",
]

VALIDATOR_JOB = "aitbc-validator"
LOADGEN_JOB = "aitbc-loadgen"
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


@dataclass(frozen=True)
class PromSample:
    """One series of an instant query: its labels and value (NaN kept as float('nan'))."""

    labels: Mapping[str, str]
    value: float


def find_prometheus(path: str | None = None) -> str:
    """The ``prometheus`` executable on ``PATH`` (or ``path``'s PATH). Raises PlatformError
    with the install hint when it is missing."""
    found = shutil.which("prometheus", path=path)
    if found is None:
        raise PlatformError(f"the prometheus binary is not on PATH: {INSTALL_HINT}")
    return found


def write_config(layout: PrometheusLayout, *, run_id: str) -> Path:
    """Write ``prometheus.yml`` (scrape and evaluation every second, two file-SD jobs) and
    empty target files. Returns the config path."""
    layout.targets_dir.mkdir(parents=True, exist_ok=True)
    layout.data.mkdir(parents=True, exist_ok=True)
    jobs = ((VALIDATOR_JOB, layout.validators_file), (LOADGEN_JOB, layout.loadgen_file))
    lines = [
        "# Written by aitbc-testnet (orchestrator/prometheus_server.py) for this run only.",
        "global:",
        f"  scrape_interval: {SCRAPE_INTERVAL_S}s",
        f"  scrape_timeout: {SCRAPE_INTERVAL_S}s",
        f"  evaluation_interval: {SCRAPE_INTERVAL_S}s",
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


def start_prometheus(
    layout: PrometheusLayout,
    listen: str,
    log_path: Path,
    *,
    binary: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start Prometheus on ``listen`` (``host:port``) in its own process group, output to
    ``log_path``. Raises PlatformError when the binary is missing or does not start."""
    executable = binary if binary is not None else find_prometheus()
    argv = [
        executable,
        f"--config.file={layout.config}",
        f"--storage.tsdb.path={layout.data}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--storage.tsdb.retention.size={RETENTION_SIZE}",
        f"--web.listen-address={listen}",
        "--web.enable-lifecycle",
        "--log.level=warn",
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        try:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=layout.root,
                start_new_session=True,
            )
        except OSError as error:
            raise PlatformError(
                f"cannot start prometheus ({executable}): {error.strerror}: {INSTALL_HINT}"
            ) from None


def is_ready(url: str, timeout_s: float = 1.0) -> bool:
    """Whether ``url``/-/ready answers 200 now."""
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=timeout_s) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, TimeoutError):
        return False


def query_instant(url: str, promql: str, timeout_s: float = 5.0) -> list[PromSample]:
    """Run one instant query at ``url``/api/v1/query. Raises PlatformError when Prometheus does
    not answer or rejects the query."""
    query = urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=timeout_s) as response:
            document: Any = json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            detail = error.read().decode("utf-8", "replace")[:200]
        raise PlatformError(
            f"prometheus at {url} rejected {promql!r} ({error.code}): {detail}"
        ) from None
    except (urllib.error.URLError, OSError, TimeoutError, ValueError) as error:
        raise PlatformError(
            f"prometheus at {url} did not answer {promql!r} ({error}): check it runs "
            "(aitbc-testnet status)"
        ) from None
    if document.get("status") != "success":
        raise PlatformError(f"prometheus at {url}: {promql!r} failed: {document.get('error')}")
    data = document.get("data", {})
    if data.get("resultType") == "scalar":
        return [PromSample({}, float(data["result"][1]))]
    return [
        PromSample(dict(item.get("metric", {})), float(item["value"][1]))
        for item in data.get("result", [])
    ]


def _tail(path: Path | None, lines: int = 5) -> str:
    if path is None or not path.exists():
        return "no log"
    text = path.read_text(errors="replace").strip().splitlines()[-lines:]
    return " | ".join(text) or "empty log"
