"""The deterministic discrete-event simulator that drives N real consensus cores."""

from aitbc_node.sim.config import CrashSpec, PartitionSpec, SimConfig
from aitbc_node.sim.simulator import SimResult, Simulator, run_simulation

__all__ = ["CrashSpec", "PartitionSpec", "SimConfig", "SimResult", "Simulator", "run_simulation"]
