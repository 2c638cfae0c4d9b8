"""The AITBC validator node: consensus core, ledger, simulator, runtime."""

__version__ = "0.1.0"
