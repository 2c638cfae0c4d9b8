"""The ``sim`` platform (``platform.py``): a plan as the simulator's flags (``flags.py``), run
by the node's deterministic network simulator."""

from orchestrator.platforms.sim.platform import SimPlatform

__all__ = ["SimPlatform"]
