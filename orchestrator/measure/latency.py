"""Exact end-to-end latency of a measured window, and the validators' histograms beside it.

Each load-generator process writes a samples file (``loadgen.latency_file``: the submit time
and the submit-to-commit latency of every acknowledged transaction, ``*.latency.bin``) beside
its summary. ``exact_window_latency`` reads every one in a folder through ``loadgen.quantiles``
for the transactions submitted in the window. ``node_buckets`` asks Prometheus for the
validators' finality histogram over the same window (buckets pooled over validators), and
``compare_latency`` puts each quantile side by side: the exact value, the node estimate with
the bucket that holds its rank, whether the exact value lies in that bucket, and why the two
differ. Pure but for reading the files and the one query.

The two measure different spans, so they need not agree:

* node finality (``aitbc_tx_finality_seconds``) runs from the earliest arrival in the
  transaction's batch at its validator to the commit at each validator (every validator
  observes every committed transaction), for the transactions committed in the window;
* end to end runs from the start of the submit call to the moment the commit reached the load
  generator's commit stream, for the transactions submitted in the window, each once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loadgen.errors import LoadgenError
from loadgen.latency_file import SUFFIX
from loadgen.quantiles import QUANTILES, exact_latency, histogram_quantile
from loadgen.summary import read_summary
from orchestrator.external.prometheus import PromQuery
from orchestrator.measure import promql as pq
from orchestrator.report.model import (
    ExactLatencyMs,
    LatencyComparison,
    NodeQuantileMs,
    QuantileComparison,
)

__all__ = [
    "NODE_SOURCE",
    "ExactWindow",
    "compare_latency",
    "exact_window_latency",
    "milliseconds",
    "node_buckets",
    "samples_files",
]

NODE_SOURCE = (
    "aitbc_tx_finality_seconds over the window, every validator's observations pooled "
    "(arrival of the batch at its validator to the commit at each validator)"
)
NO_SAMPLES = (
    "no exact-latency samples files (*{suffix}) in {folder}: the local platform's load "
    "generator writes them; the kubernetes platform does not collect them from its Locust "
    "worker pods"
)


@dataclass(frozen=True)
class ExactWindow:
    """The exact latency of a window, or why there is none."""

    exact: ExactLatencyMs | None
    unavailable: str | None


def samples_files(folder: Path) -> list[Path]:
    """The samples files of every load process in ``folder`` (sorted)."""
    return sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []


def _uncommitted(samples: Sequence[Path]) -> int | None:
    """Acknowledged-but-never-committed transactions over the summaries beside ``samples``
    (``summary.latency.bin`` -> ``summary.json``); None when a summary lacks the books."""
    total = 0
    for path in samples:
        summary = path.with_name(path.name[: -len(SUFFIX)] + ".json")
        try:
            books = read_summary(summary).latency
        except LoadgenError:
            return None
        if books is None:
            return None
        total += books.uncommitted
    return total


def milliseconds(seconds: float | None) -> float | None:
    """Seconds as milliseconds (None stays None)."""
    return None if seconds is None else seconds * 1000.0


def exact_window_latency(folder: Path, start: float, end: float) -> ExactWindow:
    """Exact quantiles of the transactions submitted in ``[start, end]`` (unix seconds) over
    every samples file in ``folder``."""
    files = samples_files(folder)
    if not files:
        return ExactWindow(None, NO_SAMPLES.format(suffix=SUFFIX, folder=folder))
    try:
        found = exact_latency(files, window=(start, end))
    except LoadgenError as error:
        return ExactWindow(None, f"the samples cannot be read: {error}")
    if found.count == 0:
        return ExactWindow(
            None,
            f"no transaction submitted in the measured window was seen committed ({len(files)} "
            "samples file(s))",
        )
    p50, p90, p99 = (milliseconds(found.quantile(q)) for q in QUANTILES)
    return ExactWindow(
        ExactLatencyMs(
            count=found.count,
            p50=p50,
            p90=p90,
            p99=p99,
            max=milliseconds(found.max_s),
            mean=milliseconds(found.mean_s),
            files=len(files),
            uncommitted=_uncommitted(files),
        ),
        None,
    )


def node_buckets(prom: PromQuery, window_s: float, at: float) -> list[tuple[float, float]]:
    """The validators' cumulative finality buckets ``(le seconds, count)`` over the window
    ending at ``at`` (empty: no observation)."""
    buckets = []
    for sample in prom.instant(pq.finality_buckets(window_s), at):
        bound, count = sample.labels.get("le"), sample.value
        if bound is None or count is None:
            continue
        try:
            buckets.append((float(bound), count))
        except ValueError:
            continue
    return buckets


def _bucket_text(node: NodeQuantileMs) -> str:
    if node.bucket_upper is None:
        return f"above {node.bucket_lower:g} ms (past the last bucket)"
    return f"({node.bucket_lower:g}, {node.bucket_upper:g}] ms"


def _explain(
    q: float,
    exact_ms: float | None,
    node: NodeQuantileMs | None,
    unavailable: str | None,
    faults: bool,
) -> tuple[bool | None, str]:
    label = f"p{q * 100:g}"
    if exact_ms is None:
        return None, f"{label}: no exact value ({unavailable or 'no samples'})"
    if node is None or node.estimate is None:
        return None, f"{label}: exact {exact_ms:.1f} ms; the validators observed no finality"
    bucket = _bucket_text(node)
    upper = math.inf if node.bucket_upper is None else node.bucket_upper
    if node.bucket_lower < exact_ms <= upper:
        return True, (
            f"{label}: exact {exact_ms:.1f} ms lies in the node histogram's bucket {bucket}; the "
            f"node figure {node.estimate:.1f} ms is interpolated inside that bucket, so they "
            f"differ by the interpolation ({node.estimate - exact_ms:+.1f} ms), not the network"
        )
    if exact_ms > upper:
        why = (
            "end to end also counts the submit call until the validator holds the transaction "
            "and the commit's way to the load generator's commit stream"
        )
        if faults:
            why += (
                ", and a transaction acknowledged by a validator that a fault cut off waits for "
                "the heal (the node figures leave that to the validator's recovery)"
            )
        return False, f"{label}: exact {exact_ms:.1f} ms is above the node bucket {bucket}: {why}"
    why = (
        "the node figure counts every validator's commit of each transaction (a lagging "
        "validator's late commits raise it) and the transactions committed in the window "
        "whatever their arrival, the exact samples each transaction submitted in the window once"
    )
    if faults:
        why += "; here faults cut validators off, which commit late when they catch up"
    return False, f"{label}: exact {exact_ms:.1f} ms is below the node bucket {bucket}: {why}"


def compare_latency(
    exact: ExactWindow, buckets: Sequence[tuple[float, float]], *, faults: bool
) -> LatencyComparison:
    """Each quantile exact beside the node histogram, explained (``faults``: the window had
    faults, which only end to end feels as waiting for the heal)."""
    rows = []
    values = exact.exact
    exact_values = (None, None, None) if values is None else (values.p50, values.p90, values.p99)
    for q, exact_ms in zip(QUANTILES, exact_values, strict=True):
        found = histogram_quantile(q, buckets) if buckets else None
        node = None
        if found is not None:
            node = NodeQuantileMs(
                estimate=milliseconds(found.estimate),
                bucket_lower=found.lower * 1000.0,
                bucket_upper=None if math.isinf(found.upper) else found.upper * 1000.0,
            )
        within, explanation = _explain(q, exact_ms, node, exact.unavailable, faults)
        rows.append(
            QuantileComparison(
                q=q, exact_ms=exact_ms, node=node, within_bucket=within, explanation=explanation
            )
        )
    return LatencyComparison(
        exact=values,
        exact_unavailable=exact.unavailable,
        node_source=NODE_SOURCE,
        quantiles=rows,
    )
