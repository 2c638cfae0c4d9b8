"""What one simulation runs: validators, mode, load, network model and a fault schedule."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aitbc_node.byzantine import BehaviourError, parse_behaviour
from aitbc_node.errors import ConfigError

#: Shortest epoch a genesis accepts (``ConsensusGenesis.epoch_length``).
MIN_EPOCH_LENGTH = 10
_STAKE_SPEC = re.compile(r"equal|zipf|uniform:(\d+):(\d+)")


@dataclass(frozen=True)
class PartitionSpec:
    """Cut ``fraction`` of the voting power off from the rest between ``start_s`` and ``end_s``
    (simulated seconds). With ``ids`` the cut-off side is exactly those validators."""

    start_s: float
    end_s: float
    fraction: float = 0.5
    ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class CrashSpec:
    """Crash ``count`` validators (or exactly ``ids``) at ``start_s``; restart them at ``end_s``
    from their persisted state (committed chain, ledger, safety state)."""

    start_s: float
    end_s: float
    count: int = 1
    ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class ByzantineSpec:
    """Validators ``ids`` run ``behaviour`` (with ``params``, see ``aitbc_node.byzantine``)
    from ``start_s`` until ``end_s`` (None: to the end of the run), simulated seconds."""

    ids: tuple[int, ...]
    behaviour: str
    params: tuple[tuple[str, object], ...] = ()
    start_s: float = 0.0
    end_s: float | None = None


@dataclass(frozen=True)
class SimConfig:
    validators: int
    authorities: int
    mode: str = "balanced"
    blocks: int = 50
    seed: int = 1
    latency_ms: float = 50.0
    jitter_ms: float | None = None
    drop_rate: float = 0.0
    partitions: tuple[PartitionSpec, ...] = ()
    crashes: tuple[CrashSpec, ...] = ()
    equivocators: int = 0
    equivocator_ids: tuple[int, ...] = ()
    byzantine: tuple[ByzantineSpec, ...] = ()
    #: Honest validators' clocks are off by a uniform draw in [-clock_skew_ms, clock_skew_ms].
    clock_skew_ms: float = 0.0
    crypto: str = "real"
    stake: str = "equal"
    epoch_length: int = 100
    block_interval_ms: int | None = None
    load_tps: float = 1000.0
    load_nodes: int = 4
    max_simulated_s: float | None = None
    #: Run on until every honest node has this many blocks more than the highest height any
    #: honest node had when the last fault ended (0: ``blocks`` alone decides).
    progress_after_faults: int = 0

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.validators <= 100_000:
            problems.append(f"--validators {self.validators}: must be at least 1")
        if not 1 <= self.authorities <= self.validators:
            problems.append(
                f"--authorities {self.authorities}: must be between 1 and --validators "
                f"({self.validators})"
            )
        if self.mode not in ("fast", "balanced", "secure", "auto"):
            problems.append(f"--mode {self.mode!r}: use fast, balanced, secure or auto")
        if self.crypto not in ("real", "modeled"):
            problems.append(f"--crypto {self.crypto!r}: use real or modeled")
        if self.blocks < 1:
            problems.append(f"--blocks {self.blocks}: must be at least 1")
        if not 0 <= self.drop_rate < 1:
            problems.append(f"--drop-rate {self.drop_rate}: must be in [0, 1)")
        if self.latency_ms < 0:
            problems.append(f"--latency-ms {self.latency_ms}: must be >= 0")
        if self.jitter_ms is not None and self.jitter_ms < 0:
            problems.append(f"--jitter-ms {self.jitter_ms}: must be >= 0")
        stake = _STAKE_SPEC.fullmatch(self.stake)
        if stake is None:
            problems.append(f"--stake {self.stake!r}: use equal, zipf or uniform:LO:HI")
        elif stake.group(1) is not None and int(stake.group(1)) > int(stake.group(2)):
            problems.append(f"--stake {self.stake!r}: LO must be <= HI")
        if self.epoch_length < MIN_EPOCH_LENGTH:
            problems.append(
                f"--epoch-length {self.epoch_length}: must be at least {MIN_EPOCH_LENGTH}"
            )
        if self.block_interval_ms is not None and self.block_interval_ms < 1:
            problems.append(f"--block-interval-ms {self.block_interval_ms}: must be at least 1")
        if self.load_tps < 0:
            problems.append(f"--load-tps {self.load_tps}: must be >= 0")
        if self.load_nodes < 1:
            problems.append(f"load_nodes {self.load_nodes}: must be at least 1")
        if self.max_simulated_s is not None and self.max_simulated_s <= 0:
            problems.append(f"--max-simulated-s {self.max_simulated_s}: must be > 0")
        for p in self.partitions:
            if not 0 <= p.start_s < p.end_s:
                problems.append(f"--partition {p.start_s}:{p.end_s}: START must be < END")
            if not 0 < p.fraction < 1:
                problems.append(f"--partition fraction {p.fraction}: must be in (0, 1)")
            if any(not 0 <= i < self.validators for i in p.ids):
                problems.append(f"--partition ids {p.ids}: validators are 0..{self.validators - 1}")
        for c in self.crashes:
            if not 0 <= c.start_s < c.end_s:
                problems.append(f"--crash {c.start_s}:{c.end_s}: START must be < END")
            if not 0 < c.count <= self.validators:
                problems.append(f"--crash count {c.count}: must be 1..{self.validators}")
        if self.equivocators < 0 or self.equivocators > self.validators:
            problems.append(f"--equivocators {self.equivocators}: must be 0..{self.validators}")
        if self.clock_skew_ms < 0:
            problems.append(f"--clock-skew-ms {self.clock_skew_ms}: must be >= 0")
        for b in self.byzantine:
            problems.extend(_byzantine_problems(b, self.validators))
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def effective_jitter_ms(self) -> float:
        return self.latency_ms / 4 if self.jitter_ms is None else self.jitter_ms


def _byzantine_problems(spec: ByzantineSpec, validators: int) -> list[str]:
    shown = f"--byzantine {','.join(map(str, spec.ids))}:{spec.behaviour}"
    problems = []
    if not spec.ids or any(not 0 <= i < validators for i in spec.ids):
        problems.append(f"{shown}: ids must be validators 0..{validators - 1}")
    if spec.start_s < 0 or (spec.end_s is not None and spec.end_s <= spec.start_s):
        problems.append(f"{shown}: START must be >= 0 and below END")
    try:
        parse_behaviour(spec.behaviour, dict(spec.params))
    except BehaviourError as error:
        problems.append(f"{shown}: {error}")
    return problems
