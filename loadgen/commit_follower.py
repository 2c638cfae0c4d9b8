"""One commit stream per load-generator process, shared by everyone who awaits commits.

``CommitFollower`` follows one validator's ``StreamCommits`` (with tx ids) in a greenlet and
hands every committed block to its listeners: the exact-latency tracker of the process
(``loadgen.latency``) and the latency probe user. It re-opens the stream from the block after
the last one seen, moves to the next validator after ``FAILURES_BEFORE_SWITCH`` failures in a
row (telling its switch listeners, so the probe sends to the validator it watches), and
cancels a stream that stayed silent for ``silence_s`` while a listener still awaits commits
(a stream to a dead peer can hang without an error).

Import after ``grpc.experimental.gevent.init_gevent()`` (as ``loadgen.users``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import gevent
import grpc
from gevent.greenlet import Greenlet

from loadgen.errors import CommitStreamError
from loadgen.rpc import commit_stream, node_stub, open_channel

logger = logging.getLogger("loadgen")

#: The stream is re-opened after this long (every call has a deadline).
STREAM_DEADLINE_S = 3600.0
#: Consecutive stream failures after which the follower moves to the next validator.
FAILURES_BEFORE_SWITCH = 3


class CommitListener(Protocol):
    def on_commit(self, height: int, tx_ids: Sequence[bytes], mono: float) -> None: ...

    def awaiting(self) -> bool:
        """True while it waits for commits (the silence watchdog only acts then)."""
        ...


class CommitFollower:
    """Follows ``targets[start_index]``'s commit stream, then the next target's on failures."""

    def __init__(
        self,
        targets: Sequence[str],
        start_index: int,
        *,
        clock: Callable[[], float],
        silence_s: float,
    ) -> None:
        self.targets = list(targets)
        self.index = start_index % len(self.targets)
        self.clock = clock
        self.silence_s = silence_s
        self.listeners: list[CommitListener] = []
        self.switch_listeners: list[Callable[[str], None]] = []
        self.last_height = 0
        self.failures = 0
        self._channel: grpc.Channel | None = None
        self._stream: Any = None
        self._reader: Greenlet | None = None
        self._watchdog: Greenlet | None = None
        self._last_event = 0.0
        self._stopping = False

    @property
    def target(self) -> str:
        return self.targets[self.index]

    @property
    def running(self) -> bool:
        return self._reader is not None

    def start(self) -> None:
        """Start following (only new blocks at first); a second call does nothing."""
        if self._reader is not None:
            return
        self._stopping = False
        self._connect()
        self._reader = gevent.spawn(self._read_loop, self._open_stream())
        self._watchdog = gevent.spawn(self._watch_loop)

    def stop(self) -> None:
        self._stopping = True
        for greenlet in (self._reader, self._watchdog):
            if greenlet is not None:
                greenlet.kill(block=True)
        self._reader = self._watchdog = None
        if self._stream is not None:
            self._stream.cancel()
            self._stream = None
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def awaiting(self) -> bool:
        return any(listener.awaiting() for listener in self.listeners)

    # -- the stream --------------------------------------------------------------------------
    def _connect(self) -> None:
        previous = self._channel
        self._channel = open_channel(self.target)
        if previous is not None:
            previous.close()

    def _open_stream(self) -> Any:
        """The current target's stream from the block after the last one seen (0 at first:
        only new blocks)."""
        from_height = self.last_height + 1 if self.last_height else 0
        self._last_event = self.clock()
        assert self._channel is not None
        self._stream = commit_stream(
            node_stub(self._channel),
            from_height=from_height,
            include_tx_ids=True,
            timeout_s=STREAM_DEADLINE_S,
        )
        return self._stream

    def _read_loop(self, first_stream: Any) -> None:
        stream = first_stream
        while not self._stopping:
            try:
                for event in stream:
                    self._deliver(event.height, [bytes(tx_id) for tx_id in event.tx_ids])
                gevent.sleep(0.1)  # the validator closed the stream: open the next one
            except grpc.RpcError as error:
                if self._stopping:
                    return
                self._on_error(error)
            stream = self._open_stream()

    def _deliver(self, height: int, tx_ids: list[bytes]) -> None:
        now = self.clock()
        self.last_height = max(self.last_height, height)
        self._last_event = now
        self.failures = 0
        for listener in list(self.listeners):
            listener.on_commit(height, tx_ids, now)

    def _on_error(self, error: grpc.RpcError) -> None:
        code = error.code() if isinstance(error, grpc.Call) else None
        self.failures += 1
        logger.warning(
            "%s",
            CommitStreamError(
                f"commit stream of {self.target} ended with "
                f"{code.name if code is not None else 'UNKNOWN'} (failure {self.failures}); "
                "reconnecting"
            ),
        )
        if self.failures >= FAILURES_BEFORE_SWITCH and len(self.targets) > 1:
            self.index = (self.index + 1) % len(self.targets)
            self.failures = 0
            self._connect()
            for listener in list(self.switch_listeners):
                listener(self.target)
        gevent.sleep(min(0.25 * max(1, self.failures), 2.0))

    def _watch_loop(self) -> None:
        while True:
            gevent.sleep(min(1.0, self.silence_s / 4))
            silent_for = self.clock() - self._last_event
            if silent_for > self.silence_s and self.awaiting() and self._stream is not None:
                # No commit for a whole timeout: the stream may hang on a dead peer.
                self.failures = FAILURES_BEFORE_SWITCH - 1
                self._last_event = self.clock()
                self._stream.cancel()
