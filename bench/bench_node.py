"""Validator node benchmark (issue 3): a 4-validator network of real processes on this machine.

Figures, all from one run:

- committed TPS at a saturating offered load: client processes (one per validator, sticky
  routing: account i -> validator i % 4) send pre-signed batches back to back, holding off
  while their validator's mempool is above ``BACKLOG_CAP``;
- the raw gRPC ingest ceiling: the same clients and the same SubmitRequest messages against
  four trivial ``grpc.aio`` handlers (same server options, one result per transaction);
- finality p50/p99 at that load and p99 at half of the committed maximum (open-loop, paced):
  end-to-end, from the client's send time to the commit time on the commit stream of
  validator 0 (``StreamCommits`` with transaction ids);
- peak RSS per validator (VmHWM from /proc; psutil's RSS where /proc is missing).

``python bench/bench_node.py`` runs the section alone; the ``client`` and ``raw-server``
subcommands are the helper processes it starts (by pid, killed when the section ends).
Set ``AITBC_NODE_PROFILE=/path/prefix`` to have every validator write cProfile stats
(``prefix.<index>.prof``) when it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for folder in (BENCH_DIR, REPO / "tests" / "node"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from aitbc_node.crypto.keys import testnet_account_keypair  # noqa: E402
from aitbc_node.ledger.tx import sign_transfer  # noqa: E402
from aitbc_node.proto.aitbc.v1 import node_pb2, node_pb2_grpc  # noqa: E402
from figures import Figure, at_least, at_most  # noqa: E402
from testnet import LocalNetwork  # noqa: E402

VALIDATORS = 4
ACCOUNTS = 256
#: Transactions per SubmitRequest at saturation, and in the paced (open-loop) half-load phase
#: (smaller there, so that arrivals spread over the block schedule).
BATCH = 250
PACED_BATCH = 100
#: A client holds off while its validator's mempool holds more than this (bounded backlog).
BACKLOG_CAP = 3_000
#: Seconds of each load phase (full run / quick run), and the warm-up cut from its start.
PHASE_S = {False: 20.0, True: 6.0}
WARMUP_S = {False: 4.0, True: 1.5}
#: Targets (issue 3).
MIN_TPS = 2_000.0
MIN_SHARE_OF_CEILING = 0.25
MAX_P99_BLOCK_INTERVALS = 3.0
MAX_RSS_MB = 150.0
CALL_TIMEOUT_S = 10.0


# ---------------------------------------------------------------- helper processes


def _client_main(args: argparse.Namespace) -> int:
    """Pre-sign transfers of this client's accounts, print ``ready``, wait for ``go`` on
    stdin, send for ``--duration`` seconds, write what was sent to ``--out`` (JSON)."""
    accounts = [int(a) for a in args.accounts.split(",")]
    keys = {a: testnet_account_keypair(args.seed, a) for a in accounts}
    channel = grpc.insecure_channel(args.target)
    stub = node_pb2_grpc.NodeStub(channel)
    nonces = {a: 0 for a in accounts}
    if not args.raw:
        for a in accounts:
            state = stub.GetAccount(
                node_pb2.AccountRequest(address=bytes(keys[a].public)), timeout=CALL_TIMEOUT_S
            )
            nonces[a] = int(state.nonce)
    recipient = bytes(testnet_account_keypair(args.seed, accounts[0]).public)
    batches: list[tuple[list[bytes], list[bytes]]] = []
    for _ in range(args.max_batches):
        raws: list[bytes] = []
        ids: list[bytes] = []
        while len(raws) < args.batch:
            for a in accounts:
                tx = sign_transfer(keys[a], args.chain_id, recipient, 1, nonces[a])
                nonces[a] += 1
                raws.append(tx.encode())
                ids.append(tx.id)
                if len(raws) == args.batch:
                    break
        batches.append((raws, ids))
    print("ready", flush=True)
    sys.stdin.readline()
    # Open loop at --rate: Poisson arrivals of batches (exponential gaps, the first one too),
    # so that the clients' batches do not land in step with the block schedule.
    arrivals = random.Random(args.target)
    batches_per_s = args.rate / args.batch if args.rate > 0 else 0.0
    began = time.time()
    next_at = time.monotonic()
    sent: list[tuple[float, list[str]]] = []
    rejected: dict[str, int] = {}
    exhausted = 0
    held_s = 0.0
    # A trivial handler does not care about replays: cycle through the pre-signed batches.
    source = itertools.cycle(batches) if args.raw else iter(batches)
    for raws, ids in source:
        if time.time() - began >= args.duration:
            break
        if batches_per_s:
            next_at += arrivals.expovariate(batches_per_s)
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        elif not args.raw:
            hold_began = time.monotonic()
            while (
                stub.GetStatus(node_pb2.StatusRequest(), timeout=CALL_TIMEOUT_S).mempool_txs
                > args.backlog
            ):
                time.sleep(0.01)
            held_s += time.monotonic() - hold_began
        sent_at = time.time()
        while True:
            try:
                reply = stub.SubmitTransactions(
                    node_pb2.SubmitRequest(transactions=raws), timeout=CALL_TIMEOUT_S
                )
                break
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                exhausted += 1
                time.sleep(0.02)
        accepted = []
        for tid, result in zip(ids, reply.results, strict=True):
            if result.status == node_pb2.TX_STATUS_ACCEPTED:
                accepted.append(tid.hex())
            else:
                rejected[result.reason] = rejected.get(result.reason, 0) + 1
        sent.append((sent_at, accepted))
    ended = time.time()
    Path(args.out).write_text(
        json.dumps(
            {
                "began": began,
                "ended": ended,
                "batches": sent,
                "rejected": rejected,
                "exhausted": exhausted,
                "held_s": held_s,
                "ran_out": not args.raw and len(sent) == len(batches),
            }
        )
    )
    channel.close()
    return 0


class _TrivialNode(node_pb2_grpc.NodeServicer):
    """Receives SubmitRequests and answers one accepted result per transaction."""

    async def SubmitTransactions(
        self, request: node_pb2.SubmitRequest, context: grpc.aio.ServicerContext
    ) -> node_pb2.SubmitResponse:
        results = [
            node_pb2.TxResult(
                tx_id=hashlib.sha256(raw).digest(), status=node_pb2.TX_STATUS_ACCEPTED
            )
            for raw in request.transactions
        ]
        return node_pb2.SubmitResponse(results=results, accepted=len(results))

    async def GetStatus(
        self, request: node_pb2.StatusRequest, context: grpc.aio.ServicerContext
    ) -> node_pb2.Status:
        return node_pb2.Status()


async def _raw_server(port_file: Path) -> None:
    from aitbc_node.runtime.node import SERVER_OPTIONS

    server = grpc.aio.server(options=SERVER_OPTIONS, maximum_concurrent_rpcs=512)
    node_pb2_grpc.add_NodeServicer_to_server(_TrivialNode(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    port_file.write_text(str(port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(grace=0.5)


# ---------------------------------------------------------------- the section


@dataclass(frozen=True)
class PhaseResult:
    """What one load phase measured."""

    offered_tps: float
    accepted_tps: float
    committed_tps: float
    finality_s: list[float]
    rejected: dict[str, int]
    exhausted: int
    ran_out: bool


def _spawn(args: Sequence[str], **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *args],
        text=True,
        start_new_session=True,
        **kwargs,
    )


def _stop(procs: Sequence[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


class CommitListener:
    """Commit times (validator-side unix seconds) of every transaction id on one stream."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.committed: dict[bytes, float] = {}
        self._stream: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        stub = node_pb2_grpc.NodeStub(self.channel)
        self._stream = stub.StreamCommits(node_pb2.CommitStreamRequest(include_tx_ids=True))
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(grpc.RpcError):
            for event in self._stream:
                for tid in event.tx_ids:
                    self.committed[bytes(tid)] = event.commit_time

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
        self._thread.join(timeout=5)
        self.channel.close()


def _run_phase(
    targets: Sequence[str],
    network: LocalNetwork | None,
    workdir: Path,
    *,
    name: str,
    duration: float,
    warmup: float,
    total_rate: float,
    raw: bool,
) -> PhaseResult:
    """One load phase: a client per target, each with the accounts it owns (sticky)."""
    chain_id = network.chain_id if network is not None else "raw-ceiling"
    seed = network.seed if network is not None else "raw-ceiling"
    per_client_rate = total_rate / len(targets) if total_rate > 0 else 0.0
    budget = 3_500 if per_client_rate == 0 else per_client_rate * 1.2
    batch = PACED_BATCH if total_rate > 0 else BATCH
    max_batches = 40 if raw else int(budget * duration / batch) + 2
    listener = CommitListener(targets[0]) if network is not None else None
    clients: list[subprocess.Popen[str]] = []
    outs: list[Path] = []
    try:
        for index, target in enumerate(targets):
            owned = [a for a in range(ACCOUNTS) if a % len(targets) == index]
            out = workdir / f"{name}-client-{index}.json"
            outs.append(out)
            args = [
                "client",
                "--target",
                target,
                "--accounts",
                ",".join(map(str, owned)),
                "--seed",
                seed,
                "--chain-id",
                chain_id,
                "--batch",
                str(batch),
                "--max-batches",
                str(max_batches),
                "--duration",
                str(duration),
                "--rate",
                str(per_client_rate),
                "--backlog",
                str(BACKLOG_CAP),
                "--out",
                str(out),
            ]
            if raw:
                args.append("--raw")
            clients.append(_spawn(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        for client in clients:
            assert client.stdout is not None
            if client.stdout.readline().strip() != "ready":
                raise RuntimeError(f"bench client pid {client.pid} did not get ready")
        if listener is not None:
            listener.start()
        for client in clients:
            assert client.stdin is not None
            client.stdin.write("go\n")
            client.stdin.flush()
        for client in clients:
            if client.wait(timeout=duration + 120) != 0:
                raise RuntimeError(f"bench client pid {client.pid} failed")
        if network is not None:
            network.wait_until(
                lambda: all(network.status(i)["mempool_txs"] == 0 for i in range(len(network))),
                timeout=120,
                what="every mempool to drain after the phase",
            )
            time.sleep(1.0)  # the last commits reach the stream
    finally:
        if listener is not None:
            listener.stop()
        _stop(clients)
    reports = [json.loads(out.read_text()) for out in outs]
    began = min(r["began"] for r in reports)
    ended = max(r["ended"] for r in reports)
    window_start = began + warmup
    window = ended - window_start
    sent_txs = [
        (sent_at, bytes.fromhex(tid))
        for r in reports
        for sent_at, ids in r["batches"]
        for tid in ids
    ]
    in_window = [(t, tid) for t, tid in sent_txs if t >= window_start]
    offered = sum(batch for r in reports for sent_at, _ in r["batches"] if sent_at >= window_start)
    finality: list[float] = []
    committed_in_window = 0
    if listener is not None:
        commits = listener.committed
        finality = [commits[tid] - t for t, tid in in_window if tid in commits]
        committed_in_window = sum(1 for c in commits.values() if window_start <= c <= ended)
    rejected: dict[str, int] = {}
    for r in reports:
        for reason, n in r["rejected"].items():
            rejected[reason] = rejected.get(reason, 0) + n
    return PhaseResult(
        offered_tps=offered / window,
        accepted_tps=len(in_window) / window,
        committed_tps=committed_in_window / window,
        finality_s=finality,
        rejected=rejected,
        exhausted=sum(r["exhausted"] for r in reports),
        ran_out=any(r["ran_out"] for r in reports),
    )


def _quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / (1 << 20)


def _raw_ceiling(workdir: Path, quick: bool) -> float:
    servers: list[subprocess.Popen[str]] = []
    try:
        port_files = []
        for index in range(VALIDATORS):
            port_file = workdir / f"raw-{index}.port"
            port_files.append(port_file)
            servers.append(_spawn(["raw-server", "--port-file", str(port_file)]))
        deadline = time.monotonic() + 30
        while not all(p.exists() and p.read_text() for p in port_files):
            if time.monotonic() > deadline:
                raise RuntimeError("the trivial gRPC servers did not start")
            time.sleep(0.05)
        targets = [f"127.0.0.1:{p.read_text()}" for p in port_files]
        result = _run_phase(
            targets,
            None,
            workdir,
            name="raw",
            duration=PHASE_S[quick],
            warmup=WARMUP_S[quick],
            total_rate=0.0,
            raw=True,
        )
        return result.accepted_tps
    finally:
        for server in servers:
            if server.poll() is None:
                os.kill(server.pid, signal.SIGTERM)
        _stop(servers)


def run(quick: bool) -> list[Figure]:
    duration, warmup = PHASE_S[quick], WARMUP_S[quick]
    with tempfile.TemporaryDirectory(prefix="aitbc-bench-node-") as folder:
        workdir = Path(folder)
        ceiling = _raw_ceiling(workdir, quick)
        extra_env = {}
        if os.environ.get("AITBC_NODE_PROFILE"):
            extra_env["AITBC_NODE_PROFILE"] = os.environ["AITBC_NODE_PROFILE"]
        network = LocalNetwork(
            workdir / "net",
            validators=VALIDATORS,
            accounts=ACCOUNTS,
            seed="bench-node",
            block_interval_ms=None,  # the mode's target: balanced, 500 ms
            base_timeout_ms=None,
            extra_env=extra_env,
        )
        try:
            network.start_all()
            network.wait_ready(timeout=90)
            targets = [node.grpc for node in network.nodes]
            interval_s = network.block_interval_s
            peak = _run_phase(
                targets,
                network,
                workdir,
                name="max",
                duration=duration,
                warmup=warmup,
                total_rate=0.0,
                raw=False,
            )
            half_rate = max(50.0, peak.committed_tps / 2)
            half = _run_phase(
                targets,
                network,
                workdir,
                name="half",
                duration=duration,
                warmup=warmup,
                total_rate=half_rate,
                raw=False,
            )
            rss = [_peak_rss_mb(network.pid(i)) for i in range(VALIDATORS)]
            if extra_env:
                for index in range(VALIDATORS):
                    network.terminate(index)
        finally:
            network.close()
    share = peak.committed_tps / ceiling if ceiling else 0.0
    p99_limit = MAX_P99_BLOCK_INTERVALS * interval_s
    figures = [
        Figure(
            "raw gRPC ingest ceiling (4 trivial handlers)",
            round(ceiling),
            "tx/s",
            f"{round(ceiling / BATCH)} SubmitRequests/s of {BATCH} transactions",
        ),
        Figure(
            "offered load at saturation (accepted)",
            round(peak.accepted_tps),
            "tx/s",
            f"sent {round(peak.offered_tps)} tx/s; rejected {peak.rejected or 0}; "
            f"exhausted {peak.exhausted}",
        ),
        at_least(
            "committed TPS at saturation", round(peak.committed_tps), "tx/s", MIN_TPS, quick=quick
        ),
        at_least(
            "committed TPS / raw ceiling",
            round(share, 3),
            "ratio",
            MIN_SHARE_OF_CEILING,
            quick=quick,
        ),
        Figure("finality p50 at saturation", round(_quantile(peak.finality_s, 0.5), 3), "s"),
        Figure("finality p99 at saturation", round(_quantile(peak.finality_s, 0.99), 3), "s"),
        Figure(
            "half load offered / committed",
            f"{round(half.offered_tps)} / {round(half.committed_tps)}",
            "tx/s",
        ),
        Figure("finality p50 at half load", round(_quantile(half.finality_s, 0.5), 3), "s"),
        at_most(
            "finality p99 at half load",
            round(_quantile(half.finality_s, 0.99), 3),
            "s",
            p99_limit,
            quick=quick,
        ),
    ]
    figures.extend(
        at_most(f"peak RSS validator {i}", round(mb, 1), "MB", MAX_RSS_MB, quick=quick)
        for i, mb in enumerate(rss)
    )
    if peak.ran_out:
        figures.append(Figure("note", "a client ran out of pre-signed batches", "", ""))
    return figures


# ---------------------------------------------------------------- command line


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench_node.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    client = sub.add_parser("client", help="one load client (started by the section)")
    client.add_argument("--target", required=True)
    client.add_argument("--accounts", required=True)
    client.add_argument("--seed", required=True)
    client.add_argument("--chain-id", required=True)
    client.add_argument("--batch", type=int, default=BATCH)
    client.add_argument("--max-batches", type=int, required=True)
    client.add_argument("--duration", type=float, required=True)
    client.add_argument("--rate", type=float, default=0.0, help="tx/s; 0: as fast as possible")
    client.add_argument("--backlog", type=int, default=BACKLOG_CAP)
    client.add_argument("--raw", action="store_true", help="the target is a trivial handler")
    client.add_argument("--out", required=True)
    server = sub.add_parser("raw-server", help="a trivial gRPC ingest handler")
    server.add_argument("--port-file", required=True, type=Path)
    parser.add_argument("--quick", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    if args.command == "client":
        return _client_main(args)
    if args.command == "raw-server":
        asyncio.run(_raw_server(args.port_file))
        return 0
    for figure in run(args.quick):
        print(f"{figure.name:48} {figure.value!s:>14} {figure.unit:6} {figure.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
