"""What one simulation reports (``aitbc-node sim --json``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aitbc_node.sim.config import SimConfig


@dataclass
class SimResult:
    config: SimConfig
    committed_height: int
    max_committed_height: int
    safety_violations: int
    slashed_validators: list[int]
    simulated_seconds: float
    wall_seconds: float
    messages_sent: int
    messages_dropped: int
    mode: str
    final_epoch: int
    finality_ms: dict[str, float]
    timeouts: int
    committed_txs: int
    """Transactions (modelled load) in the blocks the longest honest chain committed."""
    committed_tps: float | None
    """Their rate between that node's first and last commit (None: fewer than two commits)."""
    evidence_found: int
    partitions: list[dict[str, Any]]
    crashes: list[dict[str, Any]]
    equivocators: list[int]
    state_roots_agree: bool
    charged_cpu_seconds: float
    byzantine: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "simulated": True,
            "validators": self.config.validators,
            "authorities": self.config.authorities,
            "blocks_target": self.config.blocks,
            "seed": self.config.seed,
            "committed_height": self.committed_height,
            "max_committed_height": self.max_committed_height,
            "safety_violations": self.safety_violations,
            "slashed_validators": self.slashed_validators,
            "simulated_seconds": round(self.simulated_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "messages_sent": self.messages_sent,
            "messages_dropped": self.messages_dropped,
            "mode": self.mode,
            "final_epoch": self.final_epoch,
            "crypto": self.config.crypto,
            "crypto_note": (
                "modeled: ideal signatures plus a CPU cost model (no pairings computed)"
                if self.config.crypto == "modeled"
                else "real: BLS12-381 PopSchemeMPL signatures, aggregated and verified"
            ),
            "finality_ms": self.finality_ms,
            "timeouts": self.timeouts,
            "load_tps": self.config.load_tps,
            "committed_txs": self.committed_txs,
            "committed_tps": None if self.committed_tps is None else round(self.committed_tps, 3),
            "evidence_found": self.evidence_found,
            "partitions": self.partitions,
            "crashes": self.crashes,
            "equivocators": self.equivocators,
            "byzantine": self.byzantine,
            "state_roots_agree": self.state_roots_agree,
            "charged_cpu_seconds": round(self.charged_cpu_seconds, 3),
            "blocks_per_wall_second": round(
                self.committed_height / self.wall_seconds if self.wall_seconds > 0 else 0.0, 2
            ),
        }


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return float(ordered[k])
