"""Processes of a local run, by pid: started each in its own process group with its output in
a log file, recorded with the kernel's start time (``/proc/<pid>/stat`` field 22), and only
ever signalled while they still are the process the run started (the same start time), so a
reused pid is left alone. Stopping is SIGTERM, then SIGKILL after a grace period.

Also the small helpers of local ports (free, taken, from an address).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from orchestrator.errors import PlatformError
from orchestrator.platforms.capabilities import Stopped
from orchestrator.platforms.local.state import ProcessRecord

__all__ = [
    "KILL_CONFIRM_S",
    "LAUNCH_TIMEOUT_S",
    "STOP_GRACE_S",
    "ProcessSupervisor",
    "free_port",
    "port_free",
    "port_of",
    "process_alive",
    "start_ticks",
    "tail",
    "tail_text",
]

LAUNCH_TIMEOUT_S = 300.0
"""Seconds a launcher (``fork_many``) may take to import and fork all its children."""
STOP_GRACE_S = 10.0
"""Seconds between SIGTERM and SIGKILL when stopping a process."""
KILL_CONFIRM_S = 30.0
"""Seconds a SIGKILLed process may take to disappear before it counts as not stopped."""
POLL_S = 0.1


def start_ticks(pid: int) -> int | None:
    """The kernel start time of ``pid``, or None when it does not exist or is a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    if not fields or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def process_alive(record: ProcessRecord | None) -> bool:
    """Whether the process of ``record`` still runs and is the one we started."""
    return record is not None and start_ticks(record.pid) == record.start_ticks


def tail(path: str | Path, lines: int = 6) -> str:
    """The last ``lines`` lines of a log file, on one line (for error messages)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "no log"
    return tail_text(text, lines)


def tail_text(text: str, lines: int = 6) -> str:
    """The last ``lines`` lines of ``text``, on one line (for error messages)."""
    last = text.strip().splitlines()[-lines:]
    return " | ".join(line.strip() for line in last) or "empty log"


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str, avoid: set[int]) -> int:
    """A port the OS reports free on ``host``, not in ``avoid``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        if port not in avoid:
            return port
    raise PlatformError(f"cannot find a free port on {host}: pass --base-port")


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def _record(pid: int, argv: Sequence[str], log_path: Path) -> ProcessRecord:
    ticks = start_ticks(pid)
    return ProcessRecord(
        pid=pid,
        start_ticks=ticks if ticks is not None else -1,
        argv=list(argv),
        log=str(log_path),
        started_at=time.time(),
    )


def _launched_pids(out: bytes) -> list[int]:
    """The pids of a launcher's ``{"config", "pid"}`` answer lines, in order."""
    pids = []
    for line in out.decode(errors="replace").splitlines():
        with contextlib.suppress(ValueError, TypeError, KeyError):
            pids.append(int(json.loads(line)["pid"]))
    return pids


class ProcessSupervisor:
    """Starts and stops the processes of one run. Children this object started are reaped
    through their ``Popen``; processes of other invocations are checked through /proc."""

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def spawn(
        self, argv: Sequence[str], log_path: Path, *, cwd: Path, env: dict[str, str] | None
    ) -> ProcessRecord:
        """Start ``argv`` in its own process group, stdin closed, output appended to
        ``log_path``. Raises PlatformError when it cannot start."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            try:
                child = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=cwd,
                    env=env,
                    start_new_session=True,
                )
            except OSError as error:
                raise PlatformError(f"cannot start {argv[0]}: {error.strerror}") from None
        with self._lock:
            self._children[child.pid] = child
        return _record(child.pid, argv, log_path)

    def fork_many(
        self,
        launcher: Sequence[str],
        jobs: Sequence[tuple[Sequence[str], Path, str]],
        *,
        cwd: Path,
        timeout_s: float = LAUNCH_TIMEOUT_S,
    ) -> list[ProcessRecord]:
        """Start many processes through one launcher that imports their program once and
        forks them (``aitbc-node launch``): ``jobs`` are (argv recorded for the child, its log,
        its config); the launcher reads ``{"config", "log"}`` lines and answers ``{"config",
        "pid"}`` lines, each child in its own session. The children are not ours to reap
        (the launcher exits once they run): they are watched and stopped by pid like the
        processes of another invocation. Raises PlatformError (after killing what was
        forked) when the launcher fails or answers for fewer children than asked."""
        for _argv, log_path, _config in jobs:
            log_path.parent.mkdir(parents=True, exist_ok=True)
        request = "".join(
            json.dumps({"config": config, "log": str(log_path)}) + "\n"
            for _argv, log_path, config in jobs
        )
        try:
            launcher_process = subprocess.Popen(
                list(launcher),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as error:
            raise PlatformError(f"cannot start {launcher[0]}: {error.strerror}") from None
        try:
            out, err = launcher_process.communicate(request.encode(), timeout=timeout_s)
            code = launcher_process.returncode
            failure = None if code == 0 else f"exited {code}"
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(launcher_process.pid, signal.SIGKILL)
            out, err = launcher_process.communicate()
            failure = f"did not finish within {timeout_s:.0f} s"
        pids = _launched_pids(out)
        records = [
            _record(pid, argv, log_path)
            for pid, (argv, log_path, _config) in zip(pids, jobs, strict=False)
        ]
        if failure is None and len(records) != len(jobs):
            failure = f"started {len(records)} of {len(jobs)} processes"
        if failure is not None:
            for record in records:
                self.kill(record)
            raise PlatformError(
                f"{' '.join(launcher)} {failure}: {tail_text(err.decode(errors='replace'))}"
            )
        return records

    def running(self, record: ProcessRecord | None) -> bool:
        """Whether the process of ``record`` runs and is still the one the run started."""
        if record is None:
            return False
        with self._lock:
            child = self._children.get(record.pid)
        if child is not None and child.poll() is not None:
            return False
        return process_alive(record)

    def wait_gone(self, record: ProcessRecord, timeout_s: float) -> bool:
        """Wait until the process of ``record`` is gone (True) or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            child = self._children.get(record.pid)
        while True:
            if child is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=POLL_S)
                if child.returncode is not None:
                    with self._lock:
                        self._children.pop(record.pid, None)
                    return True
            elif not process_alive(record):
                return True
            else:
                time.sleep(POLL_S)
            if time.monotonic() >= deadline:
                return not process_alive(record)

    def kill(self, record: ProcessRecord) -> bool:
        """SIGKILL the process group of ``record`` (if it still is ours); True once it is
        gone (within ``KILL_CONFIRM_S``)."""
        if not self.running(record):
            return True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pid, signal.SIGKILL)
        return self.wait_gone(record, KILL_CONFIRM_S)

    def stop(self, name: str, record: ProcessRecord, grace_s: float = STOP_GRACE_S) -> Stopped:
        """SIGTERM, then SIGKILL after ``grace_s``: what was done (see ``stop_all``)."""
        return self.stop_all([(name, record)], grace_s)[0]

    def stop_all(
        self, named: Sequence[tuple[str, ProcessRecord]], grace_s: float = STOP_GRACE_S
    ) -> list[Stopped]:
        """SIGTERM every process of ``named`` that still is ours, wait up to ``grace_s`` for
        all of them together, SIGKILL what remains. ``how`` of each: ``SIGTERM``,
        ``SIGKILL``, ``already exited`` or ``not ours`` (the pid belongs to another program
        now: left alone)."""
        results: list[Stopped] = []
        signalled: list[tuple[str, ProcessRecord]] = []
        for name, record in named:
            if not self.running(record):
                how = "already exited" if start_ticks(record.pid) is None else "not ours"
                results.append(Stopped(name, record.pid, how))
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(record.pid, signal.SIGTERM)
            signalled.append((name, record))
        deadline = time.monotonic() + grace_s
        for name, record in signalled:
            if self.wait_gone(record, max(0.0, deadline - time.monotonic())):
                results.append(Stopped(name, record.pid, "SIGTERM"))
                continue
            self.kill(record)
            results.append(Stopped(name, record.pid, "SIGKILL"))
        return results
