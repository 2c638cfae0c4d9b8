"""Durable node state (SQLite)."""

from aitbc_node.storage.store import NodeStore, StoredBlock

__all__ = ["NodeStore", "StoredBlock"]
