"""The local platform: validator processes on this machine (``runner.ProcessRunner``), a real
Prometheus server and a real Locust, all started by pid from one run directory (the run on
this host: ``host.HostPlatform``)."""

from __future__ import annotations

from orchestrator.platforms.capabilities import ValidatorProcesses
from orchestrator.platforms.local.host import HostPlatform
from orchestrator.platforms.local.runner import ProcessRunner, ValidatorRunner

__all__ = ["LocalPlatform"]


class LocalPlatform(HostPlatform, ValidatorProcesses):
    """Validators, Prometheus and Locust as local processes of one run directory."""

    name = "local"

    def _make_runner(self) -> ValidatorRunner:
        return ProcessRunner(self._state_file, self._processes, self.python, self.net_dir)

    def image_tag(self) -> str:
        """``local``: the validators run this checkout's code."""
        return "local"

    def validator_pids(self) -> dict[int, int | None]:
        """Validator index -> pid of its running process (None: not running)."""
        return {
            v.index: v.process.pid
            if v.process is not None and self._processes.running(v.process)
            else None
            for v in self.state.validators
        }
