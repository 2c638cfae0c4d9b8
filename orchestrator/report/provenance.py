"""Where a report comes from: the git commit of the source tree this orchestrator runs from."""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["git_commit"]

GIT_TIMEOUT_S = 60.0
"""A bound on one git command (it answers in milliseconds; a hung one must not hang a run)."""


def git_commit(start: Path | None = None) -> str | None:
    """The commit of the source tree this orchestrator runs from (``+dirty`` when tracked
    files differ from it); None outside a git checkout."""
    where = start or Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(where), "diff", "--quiet", "HEAD", "--"],
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
        ).returncode
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty == 1 else head or None
