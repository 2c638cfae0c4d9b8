"""Process-wide state of the Locust load generator: settings, metrics, the pacing controller,
the account pool and the signer that every user of the process shares, the exact-latency
tracker (when ``AITBC_SUMMARY`` is set, its samples go beside the summary) and the CPU meter of
the self check.

No Locust or gevent import here: the users (``loadgen.users``) drive it.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Collection, Sequence

from loadgen.accounts import AccountPool, load_accounts
from loadgen.batches import TransferSigner, padding_memo
from loadgen.config import LoadgenSettings
from loadgen.latency import LatencyCounts, LatencyTracker
from loadgen.latency_file import LatencyFileHeader, LatencySampleWriter, samples_path_for
from loadgen.metrics import LoadgenMetrics, MetricsServer
from loadgen.pacing import PacingController
from loadgen.routing import TARGET_DOWN_S
from loadgen.selfcheck import CpuMeter, check_saturation
from loadgen.summary import LoadgenSummary, write_summary

#: Seconds of a user's share of the peak rate kept signed ahead.
PRESIGN_SECONDS = 2.0
#: Upper bound of one user's pre-signed transactions (memory: ~0.3 KiB each).
MAX_PRESIGNED_PER_USER = 50_000
#: A batch slot more than this late is missed (offered, never sent).
MAX_LATENESS_S = 1.0


class LoadgenRuntime:
    """What the users of one load-generator process share."""

    def __init__(
        self,
        settings: LoadgenSettings,
        *,
        metrics: LoadgenMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.cpu_clock = cpu_clock
        self.metrics = metrics if metrics is not None else LoadgenMetrics()
        self.metrics.describe_run(settings.describe())
        self.pacer = self._new_pacer()
        self.pool = AccountPool(load_accounts(settings.genesis, settings.worker_accounts))
        memo = padding_memo(settings.chain_id, settings.tx_size, settings.memo_tag)
        self.signer = TransferSigner(settings.chain_id, memo)
        self._user_numbers = itertools.count()
        #: Accounts moved off a failed target (account index -> target), for later users.
        self.route_overrides: dict[int, str] = {}
        #: Seconds of failures after which a target's accounts move (routing.TARGET_DOWN_S).
        self.target_down_s = TARGET_DOWN_S
        self._published_offered = 0
        self._published_missed = 0
        self._test_started_at: float | None = None
        self.metrics_server: MetricsServer | None = None
        self.cpu = CpuMeter()
        self.latency: LatencyTracker | None = None
        self._samples: LatencySampleWriter | None = None

    def _new_pacer(self) -> PacingController:
        return PacingController(
            self.settings.shape,
            self.settings.batch_size,
            rate_share=self.settings.rate_share,
            max_lateness_s=MAX_LATENESS_S,
        )

    def start_test(self) -> None:
        """A new test in this process (Locust's test_start): the schedule starts again at the
        first claim, the CPU meter and the exact-latency tracking start afresh (the samples
        file is truncated). Counters keep counting (Prometheus counters never go back)."""
        if self.pacer.started:
            self.pacer = self._new_pacer()
            self._published_offered = 0
            self._published_missed = 0
        self._test_started_at = self.clock()
        self.cpu = CpuMeter()
        self._close_samples()
        if self.settings.summary_path is not None:
            header = LatencyFileHeader(
                run_id=self.settings.run_id,
                worker_index=self.settings.worker_index,
                epoch_unix=time.time(),
                epoch_mono=self.clock(),
            )
            self._samples = LatencySampleWriter(
                samples_path_for(self.settings.summary_path), header
            )
            self.latency = LatencyTracker(self._samples, timeout_s=self.settings.probe_timeout_s)

    # -- exact latency -----------------------------------------------------------------------
    def track_sending(self, tx_ids: Sequence[bytes]) -> None:
        if self.latency is not None:
            self.latency.sending(tx_ids, self.clock())

    def track_answer(self, tx_ids: Sequence[bytes], accepted_ids: Collection[bytes]) -> None:
        if self.latency is not None:
            self.latency.answered(tx_ids, accepted_ids)

    def on_commit(self, height: int, tx_ids: Sequence[bytes], mono: float) -> None:
        """A committed block from the process's commit follower (``CommitListener``)."""
        if self.latency is not None:
            self.latency.on_commit(height, tx_ids, mono)

    def awaiting(self) -> bool:
        """Acknowledged transactions of this process still wait for their commit."""
        return self.latency is not None and self.latency.awaiting()

    def tick(self) -> None:
        """Periodic upkeep: the schedule's counters, a CPU sample, expired transactions."""
        self.publish_schedule()
        now = self.clock()
        self.cpu.sample(now, self.cpu_clock())
        if self.latency is not None:
            self.latency.expire(now)

    def _close_samples(self) -> LatencyCounts | None:
        if self.latency is None or self._samples is None:
            return None
        self.latency.finish()
        self._samples.close()
        counts = self.latency.counts(samples_file=self._samples.path.name)
        self.latency, self._samples = None, None
        return counts

    # -- users -----------------------------------------------------------------------------
    def next_user_number(self) -> int:
        """0, 1, 2, ... for the users of this process (spreads their first targets)."""
        return next(self._user_numbers)

    def targets_for(self, user_number: int) -> list[str]:
        """All targets, rotated so that user ``n`` starts at target ``n`` (the order in which
        a user takes its lanes; which target an account uses is ``loadgen.routing``'s)."""
        targets = list(self.settings.targets)
        shift = (user_number + self.settings.worker_index) % len(targets)
        return targets[shift:] + targets[:shift]

    def presign_depth(self, expected_users: int) -> int:
        """How many batches one user keeps signed ahead."""
        settings = self.settings
        user_rate = settings.shape.peak_tps * settings.rate_share / max(1, expected_users)
        wanted = min(math.ceil(user_rate * PRESIGN_SECONDS), MAX_PRESIGNED_PER_USER)
        return max(2, math.ceil(wanted / settings.batch_size))

    # -- schedule --------------------------------------------------------------------------
    def publish_schedule(self) -> None:
        """Bring the offered and missed counters and the target rate up to now."""
        now = self.clock()
        offered = self.pacer.offered_txs(now)
        if offered > self._published_offered:
            self.metrics.offered.inc(offered - self._published_offered)
            self._published_offered = offered
        missed = self.pacer.missed_slots * self.settings.batch_size
        if missed > self._published_missed:
            self.metrics.missed.inc(missed - self._published_missed)
            self._published_missed = missed
        self.metrics.target_tps.set(self.pacer.target_tps(now))

    def write_summary(self) -> LoadgenSummary:
        """At the end of a test: slots that came due but were never sent count as missed,
        transactions still awaiting their commit count as uncommitted and the samples file is
        closed; the final counters, the latency books and the self check are returned and
        written to ``AITBC_SUMMARY`` when it is set.

        The schedule starts at the first claim, so that the users' preparation (reading
        nonces, signing ahead) is not counted against them. A test that stopped before any
        user claimed a slot (on a busy machine, still preparing) gets its schedule started at
        the test's start here: its whole schedule counts as offered and missed, and the self
        check says it fell behind rather than "n/a"."""
        now = self.clock()
        if not self.pacer.started and self._test_started_at is not None:
            self.pacer.start(self._test_started_at)
        self.pacer.abandon_unclaimed(now)
        self.tick()
        totals = self.metrics.totals()
        summary = LoadgenSummary(
            run_id=self.settings.run_id,
            written_at=time.time(),
            settings=self.settings.describe(),
            totals=totals,
            latency=self._close_samples(),
            self_check=check_saturation(totals, self.cpu),
        )
        if self.settings.summary_path is not None:
            write_summary(self.settings.summary_path, summary)
        return summary

    # -- metrics endpoint ------------------------------------------------------------------
    def start_metrics_server(self) -> None:
        if self.settings.metrics_port and self.metrics_server is None:
            self.metrics_server = self.metrics.serve(self.settings.metrics_port)

    def stop_metrics_server(self) -> None:
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server = None
