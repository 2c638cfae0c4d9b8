"""Typed errors of the orchestrator. Library code raises them; only the CLI turns them into
messages on stderr and exit codes (``exit_code`` on each class: 2 bad input, 3 infrastructure).

Every message says which object failed, with which value, and what to do next."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class AitbcTestnetError(Exception):
    """Base of every error the orchestrator raises on purpose. Exit code 3 unless a subclass
    says otherwise (an error we did not classify is treated as an infrastructure failure)."""

    exit_code: int = 3


class UsageError(AitbcTestnetError):
    """A command-line flag or argument is wrong (not the scenario file itself). Exit 2."""

    exit_code = 2


class CapabilityError(UsageError):
    """A platform was asked for something it cannot do (a fault on the simulator, a load on a
    platform without a load generator). Exit 2: the choice of platform or command is wrong;
    the message names the platform, the capability and what to use instead."""


class PlatformError(AitbcTestnetError):
    """The infrastructure failed or cannot do what was asked (a binary missing, a port taken,
    a cluster unreachable, a validator not answering). Exit 3."""

    exit_code = 3


class FaultNotVerified(PlatformError):
    """A fault was sent but the check that it took effect (or is gone) failed. Exit 3."""


@dataclass(frozen=True)
class ScenarioIssue:
    """One problem in a scenario: where it is and what is wrong.

    ``file`` is the scenario path (or the name the user gave), ``line`` is 1-based (None when
    the problem has no line, e.g. a missing file), ``field`` is the dotted path with list
    indices (``faults[1].target``), ``flag`` is the ``--set key=value`` text when the value came
    from an override rather than from the file.
    """

    file: str
    line: int | None
    field: str | None
    message: str
    flag: str | None = None

    def __str__(self) -> str:
        where = f"--set {self.flag}" if self.flag is not None else self.file
        if self.flag is None and self.line is not None:
            where = f"{where}:{self.line}"
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"


class ScenarioError(AitbcTestnetError):
    """The scenario (file, built-in name or ``--set`` override) is invalid. Exit 2.

    Carries every problem found (``issues``), reported together, one per line. ``file``,
    ``line``, ``field`` and ``message`` are those of the first issue.
    """

    exit_code = 2

    def __init__(self, issues: Iterable[ScenarioIssue]) -> None:
        self.issues: tuple[ScenarioIssue, ...] = tuple(issues)
        if not self.issues:
            raise ValueError("ScenarioError needs at least one issue")
        super().__init__("\n".join(str(issue) for issue in self.issues))

    @classmethod
    def single(
        cls,
        file: str,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
        flag: str | None = None,
    ) -> ScenarioError:
        return cls([ScenarioIssue(file=file, line=line, field=field, message=message, flag=flag)])

    @property
    def file(self) -> str:
        return self.issues[0].file

    @property
    def line(self) -> int | None:
        return self.issues[0].line

    @property
    def field(self) -> str | None:
        return self.issues[0].field

    @property
    def message(self) -> str:
        return self.issues[0].message
