"""The consensus core: a pure state machine (no I/O, no clock reads, no gRPC).

Drivers (the networked runtime and the simulator) feed it events through
:class:`~aitbc_node.consensus.core.ConsensusCore` and execute the actions it returns.
"""
