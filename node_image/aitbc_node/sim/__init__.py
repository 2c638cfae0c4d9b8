"""The deterministic discrete-event simulator that drives N real consensus cores."""

from aitbc_node.sim.config import ByzantineSpec, CrashSpec, PartitionSpec, SimConfig
from aitbc_node.sim.result import SimResult
from aitbc_node.sim.simulator import Simulator, run_simulation

__all__ = [
    "ByzantineSpec",
    "CrashSpec",
    "PartitionSpec",
    "SimConfig",
    "SimResult",
    "Simulator",
    "run_simulation",
]
