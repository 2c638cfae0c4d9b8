"""The one query client of Prometheus, over prometheus-api-client: instant and range queries
that return floats, and readiness. PromQL itself is built in ``orchestrator.measure.promql``.

Client pitfalls handled here: both ``start_time`` and ``end_time`` are always passed as
timezone-aware UTC datetimes, values arrive as strings (``NaN``/``+Inf`` become None), and the
retry policy is explicit (tests and polls pass ``retries=0``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestrator.errors import PlatformError

__all__ = [
    "PromQuery",
    "PrometheusQueryError",
    "RangeSeries",
    "Sample",
    "parse_matrix",
    "parse_vector",
]


class PrometheusQueryError(PlatformError):
    """Prometheus did not answer a query (or answered an error). Exit 3."""


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

    def instant(self, query: str, at: float | None = None) -> list[Sample]:
        """Evaluate ``query`` at unix time ``at`` (None: now)."""
        at = time.time() if at is None else at
        try:
            result = self._client.custom_query(query, params={"time": f"{at:.3f}"})
        except Exception as exc:  # requests / client exceptions: all infrastructure
            raise self._fail("instant query", query, exc) from None
        return parse_vector(result)

    def scalar(self, query: str, at: float | None = None) -> float | None:
        """The value of a query that returns at most one series (None: no data or NaN)."""
        samples = self.instant(query, at)
        values = [sample.value for sample in samples if sample.value is not None]
        return values[0] if values else None

    def by_label(self, query: str, at: float, label: str) -> dict[str, float]:
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
        """True when the server answers a query now (it is up and its storage is ready)."""
        try:
            self._client.custom_query("vector(1)")
        except Exception:  # requests / client exceptions: not ready
            return False
        return True
