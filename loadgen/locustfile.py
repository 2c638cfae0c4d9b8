"""AITBC load generator: Locust users sending pre-signed transfer batches to the validators'
gRPC API at a paced rate, plus a low-rate latency probe.

    AITBC_TARGETS=127.0.0.1:50051,127.0.0.1:50052 AITBC_GENESIS=genesis.json AITBC_TPS=400 \\
        locust -f loadgen/locustfile.py --headless -u 4 -r 4 --run-time 60s

Users stay constant; the rate follows the shape (a pure function of elapsed time shared by
every user of the process). Configuration (environment variables; a bad value stops Locust
with exit code 2 and a message naming the variable, before any load is sent):

    AITBC_TARGETS               (required) comma-separated host:port of the validators' gRPC;
                                account i always sends to target i mod N (loadgen/routing.py)
    AITBC_ENTRY_VALIDATORS      all: how many targets (evenly spaced) receive the transactions
                                (few make full batches; the others still take over the
                                accounts of a failed one)
    AITBC_GENESIS               (required) path to genesis.json (its key_seed gives the keys)
    AITBC_TPS                   100: offered tx/s of all users together (constant; spike base);
                                with AITBC_WORKERS > 1 each worker offers 1/AITBC_WORKERS of it
    AITBC_BATCH_SIZE            50: transactions per SubmitTransactions call
    AITBC_TX_SIZE               0: wire bytes per transaction (padded with the memo); 0 smallest
    AITBC_ACCOUNTS              all: genesis accounts the load uses (each user owns a disjoint
                                subset; the last genesis account is the probe's, never used)
    AITBC_FIRST_ACCOUNT         0: first genesis account of the load
    AITBC_WORKERS               1: worker processes sharing the load and the accounts
    AITBC_WORKER_INDEX          0: this worker, 0..AITBC_WORKERS-1
    AITBC_SHAPE                 constant | step | ramp | spike
    AITBC_SHAPE_PARAMS          JSON: step {"steps":[{"tps":..,"duration_s":..}, ...]},
                                ramp {"from_tps":..,"to_tps":..,"duration_s":..},
                                spike {"at_s":..,"duration_s":..,"tps":..}
    AITBC_PROBE_INTERVAL_S      1: seconds between latency probes; 0 = no probe user
    AITBC_PROBE_TIMEOUT_S       30: a probe (or any acknowledged transaction) not committed
                                within this is a failure (counted as uncommitted)
    AITBC_PROBE_LOG             path of the probe log (JSON lines: tx id, submitted_at,
                                committed_at, height, latency_s, outcome)
    AITBC_SUMMARY               path of a JSON summary (offered, sent, acked, rejected, missed,
                                probes, latency books, self check) written when the test stops;
                                the exact submit-to-commit latency of every acknowledged
                                transaction goes beside it (<name>.latency.bin)
    AITBC_LOADGEN_METRICS_PORT  9646: Prometheus /metrics of this process; 0 = off
    AITBC_RPC_TIMEOUT_S         5: timeout of every gRPC call
    AITBC_RUN_ID                adhoc: run id in the metrics' info and the probe log
"""

from __future__ import annotations

import locust  # noqa: F401  (first: gevent's monkey-patching must precede grpc)
from grpc.experimental import gevent as grpc_gevent

grpc_gevent.init_gevent()  # before any gRPC object exists

import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from gevent.greenlet import Greenlet  # noqa: E402
from locust import events  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.runners import MasterRunner  # noqa: E402

try:
    import loadgen.config  # noqa: F401
except ImportError:  # run from a checkout that is not installed: the package is our parent
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadgen.commit_follower import CommitFollower  # noqa: E402
from loadgen.config import load_settings  # noqa: E402
from loadgen.errors import LoadgenConfigError, LoadgenError  # noqa: E402
from loadgen.runtime import LoadgenRuntime  # noqa: E402
from loadgen.users import LatencyProbeUser, TransactionLoadUser  # noqa: E402

#: How often the offered/missed counters and the target-rate gauge are brought up to date.
SCHEDULE_PUBLISH_INTERVAL_S = 0.25

try:
    RUNTIME = LoadgenRuntime(load_settings(os.environ))
except LoadgenConfigError as error:
    sys.stderr.write(f"aitbc loadgen: configuration error: {error}\n")
    raise SystemExit(2) from None


#: One commit stream for the process: the exact-latency tracker and the probe listen to it.
FOLLOWER = CommitFollower(
    RUNTIME.settings.targets,
    RUNTIME.settings.worker_index,
    clock=RUNTIME.clock,
    silence_s=RUNTIME.settings.probe_timeout_s,
)
FOLLOWER.listeners.append(RUNTIME)
#: Poll interval while the last acknowledged transactions commit after the load stopped.
DRAIN_POLL_S = 0.1

# gevent timers count from the event loop's cached "now", which went stale during the blocking
# work above (imports, genesis, keys): refresh it, or Locust's --run-time timer, armed next,
# fires early by however long this import took.
gevent.get_hub().loop.update_now()


class LoadUser(TransactionLoadUser):
    runtime = RUNTIME


class ProbeUser(LatencyProbeUser):
    runtime = RUNTIME
    follower = FOLLOWER
    abstract = not RUNTIME.settings.probe_enabled


_publisher: Greenlet | None = None


def _publish_forever() -> None:
    while True:
        RUNTIME.tick()
        gevent.sleep(SCHEDULE_PUBLISH_INTERVAL_S)


def _drain_commits() -> None:
    """Give the last acknowledged transactions up to ``AITBC_PROBE_TIMEOUT_S`` to commit."""
    deadline = RUNTIME.clock() + RUNTIME.settings.probe_timeout_s
    while FOLLOWER.running and RUNTIME.awaiting() and RUNTIME.clock() < deadline:
        gevent.sleep(DRAIN_POLL_S)
        RUNTIME.tick()


@events.init.add_listener
def _on_init(environment: Environment, **_kwargs: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        return  # the master sends no load: its workers serve the metrics
    try:
        RUNTIME.start_metrics_server()
    except LoadgenError as error:  # e.g. the port is taken: stop before any load is sent
        sys.stderr.write(f"aitbc loadgen: configuration error: {error}\n")
        raise SystemExit(2) from None


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_kwargs: Any) -> None:
    global _publisher
    if isinstance(environment.runner, MasterRunner) or _publisher is not None:
        return
    RUNTIME.start_test()
    if RUNTIME.latency is not None:
        FOLLOWER.start()
    _publisher = gevent.spawn(_publish_forever)


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_kwargs: Any) -> None:
    global _publisher
    if isinstance(environment.runner, MasterRunner):
        return
    if _publisher is not None:
        _publisher.kill(block=True)
        _publisher = None
    _drain_commits()
    FOLLOWER.stop()
    RUNTIME.write_summary()  # publishes the schedule one last time


@events.quit.add_listener
def _on_quit(**_kwargs: Any) -> None:
    FOLLOWER.stop()
    RUNTIME.stop_metrics_server()
