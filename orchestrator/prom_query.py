"""The one module over prometheus-api-client: PromQL builders (pure functions) and a small
query client that returns floats.

PromQL rules the builders follow (see FIELD-NOTES):

* committed TPS is the same on every validator, so it is ``max`` (never ``sum``) over
  validators of ``rate(aitbc_txs_committed_total[w])``;
* quantiles are ``histogram_quantile(q, sum by (le) (increase(..._bucket[w])))``;
* a rate window is at least 4x the scrape interval (``rate_window_s``): the local Prometheus
  scrapes every second, so local windows are 5 s, a cluster's 15 s scrape gives 1 m;
* durations are written in whole milliseconds (``45000ms``), which every Prometheus >= 2.x
  parses.

Client pitfalls handled here: both ``start_time`` and ``end_time`` are always passed as
timezone-aware UTC datetimes, values arrive as strings (``NaN``/``+Inf`` become None), and the
retry policy is explicit (tests pass ``retries=0``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestrator.platforms.base import PlatformError

VALIDATOR_LABEL = "validator"
"""Every validator series carries ``validator="<index>"`` (the local platform's file-SD labels,
the chart's relabelling of the pod ordinal); the load generator's carry none."""
VALIDATOR_JOB = "aitbc-validator"
"""The local platform's job name of the validators (the chart's is ``aitbc-validators``): the
queries select validators by their ``validator`` label, not by job, so both work."""
LOADGEN_JOB = "aitbc-loadgen"

LOCAL_SCRAPE_INTERVAL_S = 1.0
CLUSTER_SCRAPE_INTERVAL_S = 10.0
"""The chart's ``prometheus.scrapeInterval`` default."""
MIN_LOCAL_RATE_WINDOW_S = 5.0


class PrometheusQueryError(PlatformError):
    """Prometheus did not answer a query (or answered an error). Exit 3."""


# ----------------------------------------------------------------------------- windows


def scrape_interval_s(platform: str) -> float:
    """The scrape interval of the Prometheus a platform runs (local: 1 s; cluster: 15 s)."""
    return LOCAL_SCRAPE_INTERVAL_S if platform == "local" else CLUSTER_SCRAPE_INTERVAL_S


def rate_window_s(platform: str) -> float:
    """The window of rates plotted over time: 4x the scrape interval, at least 5 s locally
    (5 s local, 60 s on a cluster)."""
    return max(4 * scrape_interval_s(platform), MIN_LOCAL_RATE_WINDOW_S)


def duration(seconds: float) -> str:
    """A PromQL duration in whole milliseconds (at least 1 ms): 45 -> ``45000ms``."""
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"PromQL duration {seconds!r} s: use a positive number of seconds")
    return f"{max(1, round(seconds * 1000))}ms"


def _validator(index: int | None = None) -> str:
    """Validator series (all, or validator ``index``)."""
    if index is None:
        return f'{{{VALIDATOR_LABEL}!=""}}'
    return f'{{{VALIDATOR_LABEL}="{index}"}}'


# ----------------------------------------------------------------------------- builders


def committed_tps(window_s: float) -> str:
    """Committed transactions per second: max over validators of the rate over ``window_s``.
    Evaluated at the end of the measured window with ``window_s`` = its length, this is the
    mean committed TPS of the window."""
    return f"max(rate(aitbc_txs_committed_total{_validator()}[{duration(window_s)}]))"


def committed_tps_by_validator(window_s: float) -> str:
    return (
        f"max by ({VALIDATOR_LABEL}) "
        f"(rate(aitbc_txs_committed_total{_validator()}[{duration(window_s)}]))"
    )


def quantile(q: float, histogram: str, window_s: float, selector: str = "") -> str:
    """``histogram_quantile(q, sum by (le) (increase(<histogram>_bucket<selector>[w])))``."""
    if not 0 < q < 1:
        raise ValueError(f"quantile {q!r}: use a number between 0 and 1 such as 0.99")
    return (
        f"histogram_quantile({q:g}, sum by (le) "
        f"(increase({histogram}_bucket{selector}[{duration(window_s)}])))"
    )


def finality_quantile(q: float, window_s: float) -> str:
    """Finality quantile (seconds) over ``window_s``: each validator's own quantile, then the
    median across validators. A validator that was cut off commits the blocks it missed only
    when it catches up; those late commits are its recovery (measured per fault), not the
    network's finality, and the median keeps one laggard from setting the figure."""
    if not 0 < q < 1:
        raise ValueError(f"quantile {q!r}: use a number between 0 and 1 such as 0.99")
    return (
        f"quantile(0.5, histogram_quantile({q:g}, sum by (le, validator) "
        f"(increase(aitbc_tx_finality_seconds_bucket{_validator()}[{duration(window_s)}]))))"
    )


def e2e_quantile(q: float, window_s: float) -> str:
    """Probe submit-to-commit quantile (seconds) over ``window_s``, all load processes (the
    ``aitbc_loadgen_`` names are the load generator's only, whatever its job is called)."""
    return quantile(q, "aitbc_loadgen_e2e_latency_seconds", window_s)


def e2e_samples(window_s: float) -> str:
    return f"sum(increase(aitbc_loadgen_e2e_latency_seconds_count[{duration(window_s)}]))"


def loadgen_increase(counter: str, window_s: float) -> str:
    """Total of a load-generator counter over the window, summed over load processes (each
    process offers its own share, so here ``sum`` is right)."""
    return f"sum(increase({counter}[{duration(window_s)}]))"


def loadgen_rate(counter: str, window_s: float) -> str:
    return f"sum(rate({counter}[{duration(window_s)}]))"


def blocks_committed(window_s: float) -> str:
    """Blocks committed over the window (max validator)."""
    return f"max(increase(aitbc_blocks_committed_total{_validator()}[{duration(window_s)}]))"


def timeouts(window_s: float) -> str:
    """Rounds timed out over the window (the validator that timed out most)."""
    return f"max(increase(aitbc_timeouts_total{_validator()}[{duration(window_s)}]))"


def slashing_events(window_s: float) -> str:
    """Slashings committed (a validator's counter counts every evidence it committed since it
    started, so the highest value seen over the run)."""
    return f"max(max_over_time(aitbc_slashing_events_total{_validator()}[{duration(window_s)}]))"


def consensus_mode() -> str:
    """0 fast, 1 balanced, 2 secure (the most conservative mode any validator reports)."""
    return f"max(aitbc_consensus_mode{_validator()})"


def height_by_validator() -> str:
    return f"max by ({VALIDATOR_LABEL}) (aitbc_block_height{_validator()})"


def height_of(index: int) -> str:
    return f"aitbc_block_height{_validator(index)}"


def height_sample_time(index: int) -> str:
    """The scrape time of the height sample an instant query at ``t`` uses."""
    return f"timestamp(aitbc_block_height{_validator(index)})"


def txs_committed_by_validator(window_s: float) -> str:
    return (
        f"max by ({VALIDATOR_LABEL}) "
        f"(increase(aitbc_txs_committed_total{_validator()}[{duration(window_s)}]))"
    )


def process_restarts(window_s: float) -> str:
    """Times each validator's process start time changed over the window (one per restart)."""
    return (
        f"max by ({VALIDATOR_LABEL}) "
        f"(changes(process_start_time_seconds{_validator()}[{duration(window_s)}]))"
    )


def fault_active() -> str:
    """Injected node faults active, by validator and kind (the node's fault API)."""
    return f"max by ({VALIDATOR_LABEL}, kind) (aitbc_fault_active{_validator()})"


def validators_up() -> str:
    return f"max by ({VALIDATOR_LABEL}) (up{_validator()})"


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Sample:
    labels: Mapping[str, str]
    value: float | None
    timestamp: float


@dataclass(frozen=True)
class RangeSeries:
    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]
    """(unix seconds, value); NaN and infinite values are dropped."""


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def parse_vector(result: Sequence[Mapping[str, Any]]) -> list[Sample]:
    """The ``data.result`` of an instant query (a vector) as samples."""
    samples = []
    for item in result:
        stamp, text = item["value"]
        samples.append(
            Sample(labels=dict(item.get("metric", {})), value=_number(text), timestamp=float(stamp))
        )
    return samples


def parse_matrix(result: Sequence[Mapping[str, Any]]) -> list[RangeSeries]:
    """The ``data.result`` of a range query (a matrix) as series."""
    series = []
    for item in result:
        points = []
        for stamp, text in item.get("values", []):
            value = _number(text)
            if value is not None:
                points.append((float(stamp), value))
        series.append(RangeSeries(labels=dict(item.get("metric", {})), points=tuple(points)))
    return series


# ----------------------------------------------------------------------------- client


class PromQuery:
    """Queries one Prometheus server. ``retries`` is the HTTP retry count (0 in tests: the
    library's default retries make a dead server slow to report)."""

    def __init__(self, url: str, *, timeout_s: float = 15.0, retries: int = 2) -> None:
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        self.url = url.rstrip("/")
        retry = Retry(
            total=retries,
            backoff_factor=0.2,
            status_forcelist=(502, 503, 504),
            allowed_methods=("GET", "POST"),
        )
        self._client = PrometheusConnect(
            url=self.url, disable_ssl=True, retry=retry, timeout=timeout_s
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PromQuery:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _fail(self, what: str, query: str, exc: Exception) -> PrometheusQueryError:
        return PrometheusQueryError(
            f"Prometheus at {self.url}: {what} {query!r} failed ({type(exc).__name__}: "
            f"{str(exc)[:300]}): check that the run's Prometheus is up (aitbc-testnet status) "
            "and the query is valid"
        )

    def instant(self, query: str, at: float) -> list[Sample]:
        """Evaluate ``query`` at unix time ``at``."""
        try:
            result = self._client.custom_query(query, params={"time": f"{at:.3f}"})
        except Exception as exc:  # requests / client exceptions: all infrastructure
            raise self._fail("instant query", query, exc) from None
        return parse_vector(result)

    def scalar(self, query: str, at: float) -> float | None:
        """The value of a query that returns at most one series (None: no data or NaN)."""
        samples = self.instant(query, at)
        values = [sample.value for sample in samples if sample.value is not None]
        return values[0] if values else None

    def by_label(self, query: str, at: float, label: str = VALIDATOR_LABEL) -> dict[str, float]:
        """``{label value: value}`` of an instant query (series without the label or with a NaN
        value are left out)."""
        return {
            sample.labels[label]: sample.value
            for sample in self.instant(query, at)
            if label in sample.labels and sample.value is not None
        }

    def range(self, query: str, start: float, end: float, step_s: float) -> list[RangeSeries]:
        """Evaluate ``query`` every ``step_s`` seconds from ``start`` to ``end`` (unix)."""
        if end <= start:
            return []
        try:
            result = self._client.custom_query_range(
                query,
                start_time=datetime.fromtimestamp(start, tz=UTC),
                end_time=datetime.fromtimestamp(end, tz=UTC),
                step=f"{step_s:g}s",
            )
        except Exception as exc:
            raise self._fail("range query", query, exc) from None
        return parse_matrix(result)

    def ready(self) -> bool:
        """True when the server answers its root page."""
        try:
            return bool(self._client.check_prometheus_connection())
        except Exception:
            return False
