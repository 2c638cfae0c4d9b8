"""``aitbc-node run --config FILE``: run one validator until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time

from aitbc_node.config import era_check, load_node_config
from aitbc_node.crypto import BlsScheme
from aitbc_node.pop_check import check_genesis_pops

#: Set to a path prefix to write cProfile stats of the event loop thread to
#: ``<prefix>.<validator index>.prof`` when the node stops (SIGTERM/SIGINT). Times are the
#: thread's CPU time, not wall time: on a host shared by many validators a wall-clock profile
#: charges a function for every moment its process waited for a core.
ENV_PROFILE = "AITBC_NODE_PROFILE"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    if "run" in sub.choices:
        return
    p = sub.add_parser(
        "run",
        help="run a validator",
        description=(
            "Run one validator: gRPC API and peer streams, ops HTTP port (/metrics, /healthz, "
            "/readyz, /admin/faults). Example: aitbc-node run --config net/node-0.yaml"
        ),
    )
    p.add_argument("--config", required=True, help="node config file (YAML)")
    p.set_defaults(handler=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    config = load_node_config(args.config, os.environ).resolve(os.environ)
    logging.basicConfig(
        level=getattr(logging, config.log_level.upper(), logging.INFO),
        format=f"%(asctime)s %(levelname)s v{config.index} %(name)s: %(message)s",
        stream=sys.stderr,
    )
    log = logging.getLogger(__name__)
    if era_check(config.data_dir, config.era):
        log.warning("era changed to %s: data directory wiped", config.era)
    if check_genesis_pops(
        config.genesis, BlsScheme(), [config.genesis_path.parent, config.data_dir]
    ):
        log.info("genesis: %d proofs of possession verified", len(config.genesis.validators))
    profile_prefix = os.environ.get(ENV_PROFILE)
    if not profile_prefix:
        return asyncio.run(_serve(config))
    import cProfile

    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    try:
        return asyncio.run(_serve(config))
    finally:
        profiler.disable()
        profiler.dump_stats(f"{profile_prefix}.{config.index}.prof")


async def _serve(config: object) -> int:
    from aitbc_node.runtime.node import ValidatorNode

    node = ValidatorNode(config)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, node.request_stop)
    try:
        await node.start()
        await node.run_until_stopped()
    finally:
        await node.stop()
    return 0
