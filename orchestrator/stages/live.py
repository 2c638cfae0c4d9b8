"""Live figures of a running testnet for progress lines: the committed TPS from its
Prometheus and the highest committed height any validator reports. Best effort: None when the
platform cannot say or nothing answers."""

from __future__ import annotations

from orchestrator.errors import PlatformError
from orchestrator.external.prometheus import PromQuery
from orchestrator.measure.promql import committed_tps_now
from orchestrator.platforms.capabilities import KillRestart, NodeAccess, PrometheusAccess

__all__ = ["committed_tps", "committed_tps_at", "max_height"]

QUERY_TIMEOUT_S = 5.0


def committed_tps(platform: object) -> float | None:
    """Committed transactions per second now (None: no Prometheus, no answer or no data)."""
    if not isinstance(platform, PrometheusAccess):
        return None
    try:
        url = platform.prometheus_url()
    except PlatformError:
        return None
    return committed_tps_at(url)


def committed_tps_at(url: str | None) -> float | None:
    """Committed transactions per second now, from the Prometheus at ``url``."""
    if url is None:
        return None
    try:
        with PromQuery(url, timeout_s=QUERY_TIMEOUT_S, retries=0) as prom:
            samples = prom.instant(committed_tps_now())
    except PlatformError:
        return None
    values = [sample.value for sample in samples if sample.value is not None]
    return max(values) if values else None


def max_height(platform: object) -> int | None:
    """The highest committed height any running validator reports (None: none answers, or
    the platform has no live validators)."""
    if not isinstance(platform, NodeAccess):
        return None
    best: int | None = None
    for endpoint in platform.endpoints():
        if isinstance(platform, KillRestart) and not platform.is_running(endpoint.index):
            continue
        try:
            height = platform.client(endpoint.index).status().height
        except PlatformError:
            continue
        best = height if best is None else max(best, height)
    return best
