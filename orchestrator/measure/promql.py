"""PromQL of the measurements (pure functions) and the names every Prometheus of a testnet
uses: the scrape jobs (``VALIDATOR_JOB``, ``LOADGEN_JOB``: the local platform's Prometheus
config and the chart's, through its values) and the ``validator`` label. The client that sends
the queries is ``orchestrator.external.prometheus``.

PromQL rules the builders follow (see FIELD-NOTES):

* committed TPS is the same on every validator, so it is ``max`` (never ``sum``) over
  validators of ``rate(aitbc_txs_committed_total[w])``;
* quantiles are ``histogram_quantile(q, sum by (le) (increase(..._bucket[w])))``;
* a rate window is at least 4x the scrape interval (``rate_window_s``): the local Prometheus
  scrapes every second up to 20 validators (``scrape_interval_s``), so local windows are 5 s
  there, a cluster's 15 s scrape gives 1 m;
* durations are written in whole milliseconds (``45000ms``), which every Prometheus >= 2.x
  parses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

VALIDATOR_LABEL = "validator"
"""Every validator series carries ``validator="<index>"`` (the local platform's file-SD labels,
the chart's relabelling of the pod ordinal); the load generator's carry none."""
VALIDATOR_JOB = "aitbc-validators"
"""The scrape job of the validators, on every platform: the local Prometheus config and the
chart's (``prometheus.jobs.validators``, set from here by the chart values)."""
LOADGEN_JOB = "aitbc-loadgen"
"""The scrape job of the load generator's metrics, on every platform."""

LOCAL_SCRAPE_INTERVAL_S = 1.0
HOST_PROMETHEUS_PLATFORMS = ("local", "docker")
"""Platforms whose Prometheus is the one the orchestrator runs on this machine (1 s scrapes)."""
CLUSTER_SCRAPE_INTERVAL_S = 10.0
"""The chart's ``prometheus.scrapeInterval`` default."""
MIN_LOCAL_RATE_WINDOW_S = 5.0
LOCAL_SCRAPES_PER_S = 20
"""The local Prometheus scrapes at most about this many validators per second. A scrape costs a
validator about 9 ms of CPU: 16 idle validators used 0.015 cores each scraped every second and
0.006 unscraped, so a 100-validator devnet scraped every second spent ~0.9 of a 2-core host's
cores on being measured."""


# ----------------------------------------------------------------------------- windows


def scrape_interval_s(platform: str, validators: int = 0) -> float:
    """The scrape interval of the Prometheus a platform runs: on this machine (local, docker)
    1 s up to ``LOCAL_SCRAPES_PER_S`` validators and one more second per as many more (5 s at
    100); cluster: the chart's."""
    if platform not in HOST_PROMETHEUS_PLATFORMS:
        return CLUSTER_SCRAPE_INTERVAL_S
    return max(LOCAL_SCRAPE_INTERVAL_S, float(math.ceil(validators / LOCAL_SCRAPES_PER_S)))


def rate_window_s(platform: str, validators: int = 0) -> float:
    """The window of rates plotted over time: 4x the scrape interval, at least 5 s locally
    (5 s local up to 20 validators, 20 s at 100, 40 s on a cluster)."""
    return max(4 * scrape_interval_s(platform, validators), MIN_LOCAL_RATE_WINDOW_S)


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


def finality_buckets(window_s: float) -> str:
    """The validators' finality histogram over ``window_s``: cumulative count per bucket
    (label ``le``, seconds), every validator's observations pooled."""
    return (
        "sum by (le) "
        f"(increase(aitbc_tx_finality_seconds_bucket{_validator()}[{duration(window_s)}]))"
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


def loadgen_total(counter: str) -> str:
    """A load-generator counter now, summed over load processes."""
    return f"sum({counter})"


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


def slashing_events_by_validator() -> str:
    """Each validator's slashing counter (read at one instant, with its height)."""
    return f"max by ({VALIDATOR_LABEL}) (aitbc_slashing_events_total{_validator()})"


def _validators(ids: Sequence[int]) -> str:
    """The series of validators ``ids`` (at least one)."""
    if not ids:
        raise ValueError("a selector of no validator: give at least one validator id")
    return f'{VALIDATOR_LABEL}=~"{"|".join(str(i) for i in sorted(set(ids)))}"'


def byzantine_actions_by_behaviour(ids: Sequence[int]) -> str:
    """What validators ``ids`` did as attackers, by behaviour (summed over them)."""
    return f"sum by (behaviour) (aitbc_byzantine_actions_total{{{_validators(ids)}}})"


def byzantine_rejections(ids: Sequence[int]) -> str:
    """What validators ``ids`` refused as hostile, by reason (summed over them)."""
    return f"sum by (reason) (aitbc_byzantine_rejected_total{{{_validators(ids)}}})"


def consensus_mode() -> str:
    """0 fast, 1 balanced, 2 secure (the most conservative mode any validator reports)."""
    return f"max(aitbc_consensus_mode{_validator()})"


def mempool_txs() -> str:
    """Transactions waiting in every validator's mempool together (each holds the ones it
    received: the sum is the network's backlog)."""
    return f"sum(aitbc_mempool_txs{_validator()})"


def mempool_txs_by_validator() -> str:
    """Each validator's mempool (a validator missing from the answer was not scraped)."""
    return f"max by ({VALIDATOR_LABEL}) (aitbc_mempool_txs{_validator()})"


def height_by_validator() -> str:
    return f"max by ({VALIDATOR_LABEL}) (aitbc_block_height{_validator()})"


def height_of(index: int) -> str:
    return f"aitbc_block_height{_validator(index)}"


def height_sample_times() -> str:
    """The scrape time of every validator's latest height sample."""
    return f"timestamp(aitbc_block_height{_validator()})"


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


def validators_scraped() -> str:
    """The validators Prometheus scraped successfully (one series each)."""
    return f'up{{job="{VALIDATOR_JOB}"}} == 1'


def committed_tps_now() -> str:
    """Committed TPS over the last 10 s, for progress lines and ``status`` (the validators'
    job: the same on every platform)."""
    return f'max(rate(aitbc_txs_committed_total{{job="{VALIDATOR_JOB}"}}[10s]))'


def cpu_cores_by_validator(window_s: float) -> str:
    """CPU cores each validator process used over the window (the node's process collector:
    ``process_cpu_seconds_total``, user + system)."""
    return (
        f"max by ({VALIDATOR_LABEL}) "
        f"(rate(process_cpu_seconds_total{_validator()}[{duration(window_s)}]))"
    )


def rss_bytes_by_validator(window_s: float, peak: bool = False) -> str:
    """Each validator's resident memory over the window: its average, or with ``peak`` its
    highest sample (``process_resident_memory_bytes``)."""
    over_time = "max_over_time" if peak else "avg_over_time"
    return (
        f"max by ({VALIDATOR_LABEL}) "
        f"({over_time}(process_resident_memory_bytes{_validator()}[{duration(window_s)}]))"
    )
