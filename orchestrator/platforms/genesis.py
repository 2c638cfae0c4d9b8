"""The testnet genesis of a plan: one derivation for every platform.

``genesis_settings(plan)`` says which genesis the plan runs: the plan's seed (keys, stake and
accounts derive from it), counts, mode, stake, epoch length, its resolved block interval and
``load.accounts + PROBE_ACCOUNTS`` funded accounts (the latency probe's included). The local
platform writes it with the node's ``make_local_testnet`` (genesis, configs, admin token);
``make_genesis`` builds the same genesis in memory for the chart values (a test checks both
give the same document and chain id).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from aitbc_node.genesis import Genesis, make_testnet_genesis

from orchestrator.scenario.plan import Plan

__all__ = ["CHAIN_PREFIX", "PROBE_ACCOUNTS", "GenesisSettings", "genesis_settings", "make_genesis"]

PROBE_ACCOUNTS = 2
"""Genesis accounts beyond ``load.accounts``: the latency probe's."""
CHAIN_PREFIX = "aitbc-testnet"
"""Chain ids are ``<prefix>-<12 hex digits of the genesis hash>`` (as ``aitbc-node genesis``)."""


@dataclass(frozen=True)
class GenesisSettings:
    """The arguments of the node's ``make_local_testnet`` that fix the genesis."""

    validators: int
    authorities: int
    seed: str
    stake: str | list[int]
    mode: str
    accounts: int
    epoch_length: int
    block_interval_ms: int

    def as_kwargs(self) -> dict[str, Any]:
        return asdict(self)


def genesis_settings(plan: Plan) -> GenesisSettings:
    """The genesis of ``plan`` (see the module docstring)."""
    network = plan.network
    stake = network.stake_spec if isinstance(network.stake_spec, str) else list(network.stake_spec)
    return GenesisSettings(
        validators=network.validators,
        authorities=network.authorities,
        seed=network.genesis_seed,
        stake=stake,
        mode=network.mode,
        accounts=plan.load.accounts + PROBE_ACCOUNTS,
        epoch_length=network.epoch_length,
        block_interval_ms=network.block_interval_ms,
    )


def make_genesis(settings: GenesisSettings) -> Genesis:
    """The genesis of ``settings``, as ``aitbc-node genesis`` makes it (BLS keys and proofs
    of possession: ~2 s at 1,000 validators on 2 cores). Raises the node's ConfigError."""
    genesis = make_testnet_genesis(
        validators=settings.validators,
        authorities=settings.authorities,
        seed=settings.seed,
        mode=settings.mode,
        stake=settings.stake,
        accounts=settings.accounts,
        epoch_length=settings.epoch_length,
        chain_id=CHAIN_PREFIX,
    )
    document = genesis.model_dump(mode="json")
    document["consensus"]["block_interval_ms"] = settings.block_interval_ms
    genesis = Genesis.model_validate(document)
    return genesis.model_copy(update={"chain_id": f"{CHAIN_PREFIX}-{genesis.hash().hex()[:12]}"})
