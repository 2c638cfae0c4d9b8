"""The network files of a local run and how a validator is started: genesis, one config per
validator and the admin token (the node's ``make_local_testnet`` with the plan's genesis,
``platforms.genesis``), the ports of Prometheus and the load generator next to the
validators', and the validator's command line. A platform that runs validators elsewhere
(containers) reuses the same files and command."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aitbc_node.commands.genesis_cmd import LocalTestnet, make_local_testnet
from aitbc_node.errors import ConfigError

from orchestrator.errors import PlatformError
from orchestrator.platforms.genesis import genesis_settings
from orchestrator.platforms.local.processes import free_port, port_free, port_of
from orchestrator.scenario.plan import Plan

__all__ = [
    "ExtraPorts",
    "extra_ports",
    "free_extra_ports",
    "launcher_argv",
    "validator_argv",
    "write_network",
]

ExtraPorts = tuple[int, int]
"""(Prometheus port, load generator metrics port)."""


def write_network(net_dir: Path, plan: Plan, *, host: str, base_port: int | None) -> LocalTestnet:
    """Genesis, configs and admin token of ``plan``'s testnet in ``net_dir``; validator i
    listens on BASE+i (gRPC) and BASE+N+i (ops) with ``base_port``, else on free ports.
    Raises PlatformError naming the run."""
    try:
        return make_local_testnet(
            net_dir, **genesis_settings(plan).as_kwargs(), host=host, base_port=base_port
        )
    except ConfigError as error:
        raise PlatformError(f"cannot write the testnet of run {plan.run_id}: {error}") from None


def extra_ports(host: str, base_port: int | None, validators: int) -> ExtraPorts | None:
    """With ``base_port``: Prometheus on BASE+2N, the load generator's metrics on BASE+2N+1
    (the validators take BASE..BASE+2N-1), every port of the range checked free first.
    None without ``base_port`` (see ``free_extra_ports``)."""
    if base_port is None:
        return None
    last = base_port + 2 * validators + 1
    if base_port < 1 or last > 65535:
        raise PlatformError(
            f"--base-port {base_port}: the run needs ports {base_port}..{last}, outside "
            "1..65535: choose a lower base port"
        )
    for port in range(base_port, last + 1):
        if not port_free(host, port):
            raise PlatformError(
                f"--base-port {base_port}: port {port} on {host} is taken (the run needs "
                f"{base_port}..{last}): choose another --base-port, leave it out to get free "
                "ports, or stop what uses it"
            )
    return last - 1, last


def free_extra_ports(host: str, testnet: LocalTestnet) -> ExtraPorts:
    """Free ports for Prometheus and the load generator, none of the validators'."""
    used = {port_of(node.grpc) for node in testnet.nodes} | {
        port_of(node.ops) for node in testnet.nodes
    }
    prometheus_port = free_port(host, used)
    return prometheus_port, free_port(host, used | {prometheus_port})


def validator_argv(python: str, config: str) -> Sequence[str]:
    """The command line of a validator with its config file (run from the network folder)."""
    return [python, "-m", "aitbc_node.cli", "run", "--config", config]


def launcher_argv(python: str) -> Sequence[str]:
    """The command line of ``aitbc-node launch``: validators forked from one process that
    imported the node once (run from the network folder; see ``ProcessSupervisor.fork_many``)."""
    return [python, "-m", "aitbc_node.cli", "launch"]
