"""What the validators cost: CPU and resident memory per validator over the measured window,
and CPU per committed block, from the node's process metrics in Prometheus (every validator
registers prometheus_client's process collector), so the same figures come from any platform
that runs Prometheus."""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.external.prometheus import PromQuery
from orchestrator.measure import promql as pq
from orchestrator.report.model import ResourceUsage

MIB = 1024 * 1024


def resource_usage(
    cpu_cores: Mapping[str, float],
    rss_mean: Mapping[str, float],
    rss_peak: Mapping[str, float],
    *,
    window_s: float,
    blocks: float | None,
) -> ResourceUsage | None:
    """The report's figures from per-validator samples (label -> value); None when no
    validator exported process metrics. CPU per block: the mean validator's CPU seconds over
    the window divided by the blocks committed in it."""
    if not cpu_cores and not rss_mean:
        return None
    cores = list(cpu_cores.values())
    mean_cores = sum(cores) / len(cores) if cores else None
    per_block = mean_cores * window_s * 1000 / blocks if mean_cores is not None and blocks else None
    rss = list(rss_mean.values())
    return ResourceUsage(
        validators=len(set(cpu_cores) | set(rss_mean)),
        cpu_cores_mean=mean_cores,
        cpu_cores_max=max(cores) if cores else None,
        cpu_cores_total=sum(cores) if cores else None,
        cpu_ms_per_block=per_block,
        rss_mib_mean=sum(rss) / len(rss) / MIB if rss else None,
        rss_mib_max=max(rss_peak.values()) / MIB if rss_peak else None,
    )


def measure_resources(
    prom: PromQuery, at: float, window_s: float, blocks: float | None
) -> ResourceUsage | None:
    """CPU and memory of every validator over the ``window_s`` seconds before ``at``."""
    label = pq.VALIDATOR_LABEL
    return resource_usage(
        prom.by_label(pq.cpu_cores_by_validator(window_s), at, label),
        prom.by_label(pq.rss_bytes_by_validator(window_s), at, label),
        prom.by_label(pq.rss_bytes_by_validator(window_s, peak=True), at, label),
        window_s=window_s,
        blocks=blocks,
    )
