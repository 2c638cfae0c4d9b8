"""scripts/with-image-build.sh (``make test``): the node image built in the background while a
command runs, with a fake ``make`` standing in for the real build (tests/containers builds the
real image): the command's exit status, the build's log printed when the build failed, a build
still running when the command ends waited for, and one interrupted or past its time stopped
with its whole process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "with-image-build.sh"
#: Upper bound of one run of the script (it takes well under a second here).
RUN_TIMEOUT_S = 120.0

#: The fake `make image`: records its pid, starts a child in its process group, then finishes
#: as FAKE_BUILD says: ok, fail, hang (until killed) or slow (once the file `release` exists).
FAKE_MAKE = """#!/bin/sh
echo "$$" > make.pid
echo "fake make $*"
sleep 600 &
echo "$!" > child.pid
case "$FAKE_BUILD" in
  ok) kill "$!"; echo "image built"; exit 0 ;;
  fail) kill "$!"; echo "boom: the build failed"; exit 3 ;;
  hang) wait ;;
  slow) i=0; while [ ! -e release ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i + 1)); done
        kill "$!"; echo "image built"; exit 0 ;;
esac
"""

#: The command under the build: waits until the fake build has started (argv[1] "started"),
#: has ended ("ended": its process exited), or has started and then is released ("release") or
#: interrupts the script ("interrupt": SIGINT to its parent, as Ctrl-C would); exits argv[2].
COMMAND = """
import os, pathlib, signal, sys, time
def ended(pid):
    stat = pathlib.Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
for _ in range(6000):
    pids = [pathlib.Path(n).read_text().strip() for n in ("make.pid", "child.pid")
            if pathlib.Path(n).exists()]
    if len(pids) == 2 and all(pids) and (sys.argv[1] != "ended" or ended(pids[0])):
        break
    time.sleep(0.02)
else:
    sys.exit("the fake build never got there")
if sys.argv[1] == "release":
    pathlib.Path("release").touch()
if sys.argv[1] == "interrupt":
    os.kill(os.getppid(), signal.SIGINT)
sys.exit(int(sys.argv[2]))
"""


def run_with_build(
    tmp_path: Path,
    build: str,
    wait_for: str,
    exit_code: int,
    *,
    status: int | None = None,
    build_wait_s: str = "600",
) -> str:
    fake = tmp_path / "fake-make"
    fake.write_text(FAKE_MAKE)
    fake.chmod(0o755)
    env = {**os.environ, "MAKE": str(fake), "FAKE_BUILD": build, "BUILD_WAIT_S": build_wait_s}
    result = subprocess.run(
        [str(SCRIPT), sys.executable, "-c", COMMAND, wait_for, str(exit_code)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
        check=False, preexec_fn=default_sigint,
    )  # fmt: skip
    expected = exit_code if status is None else status
    assert result.returncode == expected, result.stdout + result.stderr
    assert not (tmp_path / "build" / "image-build.pid").exists()
    assert not alive(tmp_path / "make.pid")
    assert not alive(tmp_path / "child.pid")  # nothing of the build outlives the script
    return result.stdout


def default_sigint() -> None:
    """The script starts as from a terminal, with SIGINT's default action: a pytest-xdist worker
    runs with SIGINT ignored, and a shell started with a signal ignored cannot trap it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def alive(pid_file: Path) -> bool:
    stat = Path(f"/proc/{pid_file.read_text().strip()}/stat")
    try:
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_finished_build_is_waited_for_and_its_log_kept(tmp_path: Path) -> None:
    output = run_with_build(tmp_path, "ok", wait_for="ended", exit_code=0)
    assert "make image runs in the background" in output
    assert "stopping" not in output and "failed" not in output
    log = (tmp_path / "build" / "image-build.log").read_text()
    assert log == "fake make --no-print-directory image\nimage built\n"


def test_a_failed_build_prints_its_log_and_the_status_is_the_commands(tmp_path: Path) -> None:
    output = run_with_build(tmp_path, "fail", wait_for="ended", exit_code=0)
    assert "the background make image failed (exit 3)" in output
    assert "boom: the build failed" in output


def test_a_build_still_running_when_the_command_ends_is_waited_for(tmp_path: Path) -> None:
    output = run_with_build(tmp_path, "slow", wait_for="release", exit_code=4)
    assert "stopping" not in output and "failed" not in output
    assert (tmp_path / "build" / "image-build.log").read_text().endswith("image built\n")


def test_a_build_past_its_time_is_stopped_with_its_process_group(tmp_path: Path) -> None:
    output = run_with_build(tmp_path, "hang", wait_for="started", exit_code=5, build_wait_s="0")
    assert "stopping the image build (not finished after 0 s" in output
    assert "failed" not in output  # stopped on purpose: not reported as a build failure


def test_an_interrupted_run_stops_the_build(tmp_path: Path) -> None:
    output = run_with_build(tmp_path, "hang", wait_for="interrupt", exit_code=0, status=130)
    assert "stopping the image build (interrupted" in output
