"""The node's costs as N grows (issue 12): real networks of N validator processes on this machine.

For each N (4, 16, 32, 64, 100; quick: 4, 16) a network is written with ``make_local_testnet``
(authorities: min(N, 21), BALANCED, one block per ``BLOCK_INTERVAL_MS``), every validator
started at once, and measured from /proc (per pid) and each node's ops port:

- ready: seconds from the first process start until every validator reports ready and has
  committed a block, and the CPU seconds each validator spent until then (start-up);
- CPU per committed block: the CPU time (user + system) of all N processes over a window of
  ``WINDOW_S`` seconds without client load, divided by the blocks committed in it, in total and
  per validator;
- RSS per validator: mean resident set (VmRSS) at the end of the window, and the largest;
- round timeouts in the window (a healthy network has none).

The load average before each network starts is printed with it: the machine is shared, and 100
validators saturate 2 cores. Every process is killed by pid when its network is measured.

The simulator (modeled crypto, the same cost model, the same genesis shape and block interval)
then runs N = 16 and 64 beside the real networks and 1,000 alone (quick: 16 and 100): finality
p50/p99 and messages per committed block, and, where a real row exists, the agreement factors
real/simulated of the block interval and of the CPU per block per validator (the simulator
charges each signature operation from ``sim/costing.py``; the rest of the node's work, gRPC,
protobuf and asyncio, it does not model: that is what the CPU factor measures).
``python bench/bench_scale.py [--sizes 4,16] [--json FILE]`` runs the section alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for folder in (BENCH_DIR, REPO / "tests" / "node"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from aitbc_node.sim import SimConfig, Simulator  # noqa: E402
from figures import Figure, at_most  # noqa: E402
from testnet import LocalNetwork  # noqa: E402

SIZES = {False: (4, 16, 32, 64, 100), True: (4, 16)}
#: One block per second at every N: the same schedule, so CPU per block compares across N.
BLOCK_INTERVAL_MS = 1000
#: Seconds measured once the network is ready (full run / quick run).
WINDOW_S = {False: 30.0, True: 10.0}
#: Authorities of the devnet (21 of 100); smaller networks make every validator one.
AUTHORITIES = 21
#: Targets (issue 12): a 100-validator network ready in under 120 s on this machine.
MAX_READY_S = 120.0
READY_TIMEOUT_S = 600.0
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ScaleRow:
    validators: int
    authorities: int
    load_before: float
    ready_s: float
    startup_cpu_s_per_validator: float
    blocks: int
    block_interval_s: float
    cpu_ms_per_block: float
    cpu_ms_per_block_per_validator: float
    cpu_cores: float
    rss_mb_mean: float
    rss_mb_max: float
    timeouts: int


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (its threads included)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _timeouts(network: LocalNetwork, validators: int) -> float:
    """Round timeouts of every validator so far. A scrape may take longer than the client's
    timeout on a saturated host (100 validators at one block per second): each is tried three
    times."""
    total = 0.0
    for index in range(validators):
        for attempt in range(3):
            try:
                total += network.metric(index, "aitbc_timeouts_total")
                break
            except OSError:
                if attempt == 2:
                    raise
    return total


def measure(validators: int, root: Path, window_s: float) -> ScaleRow:
    authorities = min(validators, AUTHORITIES)
    network = LocalNetwork(
        root,
        validators=validators,
        authorities=authorities,
        accounts=0,
        block_interval_ms=BLOCK_INTERVAL_MS,
        base_timeout_ms=None,
        epoch_length=100_000,
        log_level="warning",
    )
    load_before = os.getloadavg()[0]
    try:
        began = time.monotonic()
        network.start_all()
        pids = [network.pid(i) for i in range(validators)]
        network.wait_ready(timeout=READY_TIMEOUT_S)
        ready_s = time.monotonic() - began
        startup_cpu = sum(cpu_seconds(pid) for pid in pids)
        timeouts_before = _timeouts(network, validators)
        height_before = network.height(0)
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        window_began = time.monotonic()
        time.sleep(window_s)
        cpu_after = sum(cpu_seconds(pid) for pid in pids)
        elapsed = time.monotonic() - window_began
        height_after = network.height(0)
        timeouts_after = _timeouts(network, validators)
        rss = [rss_mb(pid) for pid in pids]
    finally:
        network.close()
    blocks = height_after - height_before
    cpu = cpu_after - cpu_before
    per_block_ms = cpu / blocks * 1000 if blocks else float("inf")
    return ScaleRow(
        validators=validators,
        authorities=authorities,
        load_before=round(load_before, 2),
        ready_s=round(ready_s, 1),
        startup_cpu_s_per_validator=round(startup_cpu / validators, 3),
        blocks=blocks,
        block_interval_s=round(elapsed / blocks, 3) if blocks else float("inf"),
        cpu_ms_per_block=round(per_block_ms, 1),
        cpu_ms_per_block_per_validator=round(per_block_ms / validators, 2),
        cpu_cores=round(cpu / elapsed, 2),
        rss_mb_mean=round(sum(rss) / len(rss), 1),
        rss_mb_max=round(max(rss), 1),
        timeouts=int(timeouts_after - timeouts_before),
    )


def figures_of(row: ScaleRow, quick: bool) -> list[Figure]:
    n = row.validators
    ready = (
        at_most(f"N={n}: ready", row.ready_s, "s", MAX_READY_S, quick=quick)
        if n == 100
        else Figure(f"N={n}: ready", row.ready_s, "s", f"load before {row.load_before}")
    )
    return [
        ready,
        Figure(f"N={n}: start-up CPU per validator", row.startup_cpu_s_per_validator, "s"),
        Figure(
            f"N={n}: CPU per committed block",
            row.cpu_ms_per_block,
            "ms",
            f"{row.cpu_ms_per_block_per_validator} ms per validator; {row.cpu_cores} cores",
        ),
        Figure(
            f"N={n}: RSS per validator",
            row.rss_mb_mean,
            "MB",
            f"max {row.rss_mb_max} MB",
        ),
        Figure(
            f"N={n}: block interval, timeouts",
            row.block_interval_s,
            "s",
            f"{row.timeouts} round timeouts in {row.blocks} blocks",
        ),
    ]


def run_rows(sizes: Sequence[int], quick: bool) -> list[ScaleRow]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="aitbc-bench-scale-") as folder:
        for n in sizes:
            print(f"  scale: N={n} (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
            rows.append(measure(n, Path(folder) / f"n{n}", WINDOW_S[quick]))
            print(f"    {json.dumps(asdict(rows[-1]))}", file=sys.stderr, flush=True)
    return rows


#: Simulated sizes (full run / quick run); those with a real row are compared with it.
SIM_SIZES = {False: (16, 64, 1000), True: (16, 100)}
#: Committed blocks per simulated run.
SIM_BLOCKS = {False: 30, True: 15}


@dataclass(frozen=True)
class SimRow:
    validators: int
    blocks: int
    block_interval_s: float
    finality_p50_ms: float
    finality_p99_ms: float
    messages_per_block: float
    charged_cpu_ms_per_block_per_validator: float
    wall_s: float


def simulate(validators: int, blocks: int) -> SimRow:
    config = SimConfig(
        validators=validators,
        authorities=min(validators, AUTHORITIES),
        mode="balanced",
        blocks=blocks,
        seed=1,
        latency_ms=1.0,
        crypto="modeled",
        epoch_length=100_000,
        block_interval_ms=BLOCK_INTERVAL_MS,
        load_tps=100.0,
    )
    result = Simulator(config).run()
    height = max(1, result.committed_height)
    return SimRow(
        validators=validators,
        blocks=result.committed_height,
        block_interval_s=round(result.simulated_seconds / height, 3),
        finality_p50_ms=result.finality_ms.get("p50", 0.0),
        finality_p99_ms=result.finality_ms.get("p99", 0.0),
        messages_per_block=round(result.messages_sent / height, 1),
        charged_cpu_ms_per_block_per_validator=round(
            result.charged_cpu_seconds * 1000 / height / validators, 3
        ),
        wall_s=round(result.wall_seconds, 1),
    )


def sim_figures(row: SimRow, real: ScaleRow | None) -> list[Figure]:
    n = row.validators
    out = [
        Figure(
            f"sim N={n}: finality p50 / p99",
            row.finality_p50_ms,
            "ms",
            f"p99 {row.finality_p99_ms} ms; modeled crypto, {row.blocks} blocks, {row.wall_s} s",
        ),
        Figure(f"sim N={n}: messages per block", row.messages_per_block, "msgs"),
    ]
    if real is not None and row.block_interval_s and row.charged_cpu_ms_per_block_per_validator:
        out.append(
            Figure(
                f"N={n}: real/sim block interval",
                round(real.block_interval_s / row.block_interval_s, 2),
                "x",
                f"real {real.block_interval_s} s, sim {row.block_interval_s} s",
            )
        )
        out.append(
            Figure(
                f"N={n}: real/sim CPU per block per validator",
                round(
                    real.cpu_ms_per_block_per_validator
                    / row.charged_cpu_ms_per_block_per_validator,
                    1,
                ),
                "x",
                f"real {real.cpu_ms_per_block_per_validator} ms, "
                f"sim (signatures only) {row.charged_cpu_ms_per_block_per_validator} ms",
            )
        )
    return out


def run(quick: bool) -> list[Figure]:
    rows = run_rows(SIZES[quick], quick)
    figures = [f for row in rows for f in figures_of(row, quick)]
    real = {row.validators: row for row in rows}
    for n in SIM_SIZES[quick]:
        print(f"  scale: simulated N={n}", file=sys.stderr, flush=True)
        sim = simulate(n, SIM_BLOCKS[quick])
        print(f"    {json.dumps(asdict(sim))}", file=sys.stderr, flush=True)
        figures.extend(sim_figures(sim, real.get(n)))
    return figures


def _sizes(flag: str | None, default: Sequence[int]) -> list[int]:
    """``--sizes`` / ``--sim-sizes``: comma-separated N, empty for none, absent for the default."""
    if flag is None:
        return list(default)
    return [int(n) for n in flag.split(",") if n.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=None, help="real N, comma-separated (empty: none)")
    parser.add_argument("--quick", action="store_true", help="shorter windows")
    parser.add_argument("--sim-sizes", default=None, help="comma-separated simulated N")
    parser.add_argument("--json", type=Path, default=None, help="write the rows as JSON")
    args = parser.parse_args(argv)
    sizes = _sizes(args.sizes, SIZES[args.quick])
    sim_sizes = _sizes(args.sim_sizes, SIM_SIZES[args.quick])
    rows = run_rows(sizes, args.quick)
    real = {row.validators: row for row in rows}
    sims = [simulate(n, SIM_BLOCKS[args.quick]) for n in sim_sizes]
    for row in rows:
        print(json.dumps(asdict(row)))
    for sim in sims:
        print(json.dumps(asdict(sim)))
        for figure in sim_figures(sim, real.get(sim.validators)):
            print(f"  {figure.name}: {figure.value} {figure.unit} ({figure.target})")
    if args.json is not None:
        document = {"real": [asdict(r) for r in rows], "sim": [asdict(s) for s in sims]}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
