"""Validators forked from one ``aitbc-node launch`` (``ProcessSupervisor.fork_many``): real
validators, each in its own session, watched and stopped by pid; a failing launcher leaves no
process behind; bad launcher input is exit 2 naming the line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from aitbc_node.commands.genesis_cmd import make_local_testnet

from orchestrator.errors import PlatformError
from orchestrator.platforms.local.network import launcher_argv, validator_argv
from orchestrator.platforms.local.processes import (
    ProcessSupervisor,
    process_alive,
    start_ticks,
)

READY_WITHIN_S = 180.0


def _parent_of(pid: int) -> int:
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text[text.rfind(")") + 2 :].split()[1])


def _ready(ops: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{ops}/readyz", timeout=2) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def test_launched_validators_run_in_their_own_sessions_and_stop_by_pid(tmp_path: Path) -> None:
    net = tmp_path / "net"
    testnet = make_local_testnet(net, validators=4, authorities=4, seed="launch")
    configs = sorted(str(path) for path in net.glob("node-*.yaml"))
    assert len(configs) == 4
    jobs = [
        (validator_argv(sys.executable, config), tmp_path / "logs" / f"v{i}.log", config)
        for i, config in enumerate(configs)
    ]
    supervisor = ProcessSupervisor()
    records = supervisor.fork_many(launcher_argv(sys.executable), jobs, cwd=net)
    try:
        assert [record.argv for record in records] == [list(job[0]) for job in jobs]
        for record, config in zip(records, configs, strict=True):
            assert process_alive(record)
            assert Path(f"/proc/{record.pid}/comm").read_text().strip() == Path(config).stem
            assert os.getsid(record.pid) == record.pid
            assert _parent_of(record.pid) != os.getpid()
        deadline = time.monotonic() + READY_WITHIN_S
        waiting = {node.ops for node in testnet.nodes}
        while waiting and time.monotonic() < deadline:
            waiting = {ops for ops in waiting if not _ready(ops)}
            time.sleep(0.5)
        assert not waiting, f"not ready within {READY_WITHIN_S} s: {sorted(waiting)}"
        stopped = supervisor.stop_all([(f"v{i}", r) for i, r in enumerate(records)])
        assert {s.how for s in stopped} == {"SIGTERM"}
        for record in records:
            assert not process_alive(record)
            assert "stopped cleanly" in Path(record.log).read_text()
    finally:
        for record in records:
            supervisor.kill(record)


FAILING_LAUNCHER = textwrap.dedent(
    """
    import json, subprocess, sys
    sys.stdin.read()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                             start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # as a forked validator drops them
    open("forked.pid", "w").write(str(child.pid))
    print(json.dumps({"config": "a.yaml", "pid": child.pid}), flush=True)
    print("cannot import the node", file=sys.stderr)
    sys.exit(3)
    """
)


def test_a_failing_launcher_is_an_error_and_leaves_nothing_running(tmp_path: Path) -> None:
    supervisor = ProcessSupervisor()
    jobs = [(["v"], tmp_path / f"v{i}.log", f"{i}.yaml") for i in range(2)]
    with pytest.raises(PlatformError) as failure:
        supervisor.fork_many([sys.executable, "-c", FAILING_LAUNCHER], jobs, cwd=tmp_path)
    message = str(failure.value)
    assert "exited 3" in message and "cannot import the node" in message
    forked = int((tmp_path / "forked.pid").read_text())
    assert start_ticks(forked) is None  # killed (and reaped by init) or a zombie


def test_a_launcher_that_answers_for_fewer_children_is_an_error(tmp_path: Path) -> None:
    supervisor = ProcessSupervisor()
    jobs = [(["v"], tmp_path / f"v{i}.log", f"{i}.yaml") for i in range(2)]
    with pytest.raises(PlatformError, match="started 0 of 2 processes"):
        supervisor.fork_many(
            [sys.executable, "-c", "import sys; sys.stdin.read()"], jobs, cwd=tmp_path
        )


@pytest.mark.parametrize(
    ("stdin", "expected"),
    [
        ('{"config": "a.yaml", "log": "a.log"}\nnot json\n', "stdin line 2: not JSON"),
        ('{"config": "a.yaml"}\n', 'stdin line 1: expected {"config": PATH, "log": PATH}'),
        ('{"config": "", "log": "a.log"}\n', "stdin line 1: config and log must be paths"),
    ],
)
def test_bad_launcher_input_is_exit_2_naming_the_line(
    tmp_path: Path, stdin: str, expected: str
) -> None:
    result = subprocess.run(
        launcher_argv(sys.executable),
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
