"""Primitives of the canonical binary encoding (what is hashed, signed and sent).

Layout: big-endian fixed-width integers, byte strings prefixed by a u32 length, optional values by
a u8 presence flag, sequences by a u32 count. Reading is strict: truncation, trailing bytes and
oversized fields raise :class:`DecodeError` naming the record and the field.

This module knows no consensus record: ``types`` encodes records with a :class:`Writer`,
``codec`` decodes them with a :class:`Reader`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TypeVar

from aitbc_node.errors import DecodeError

#: Largest byte string any field may hold (a signer bitmap of 1,000 validators is 125 bytes).
MAX_FIELD_BYTES = 1 << 16
#: Largest sequence (batches or evidence) in one block.
MAX_ITEMS = 4096
#: Largest encoded message accepted from a peer.
MAX_MESSAGE_BYTES = 4 << 20

T = TypeVar("T")


class Writer:
    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def u8(self, value: int) -> Writer:
        self.parts.append(struct.pack(">B", value))
        return self

    def u32(self, value: int) -> Writer:
        self.parts.append(struct.pack(">I", value))
        return self

    def u64(self, value: int) -> Writer:
        self.parts.append(struct.pack(">Q", value))
        return self

    def raw(self, value: bytes) -> Writer:
        self.parts.append(struct.pack(">I", len(value)))
        self.parts.append(value)
        return self

    def text(self, value: str) -> Writer:
        return self.raw(value.encode())

    def raw_large(self, value: bytes) -> Writer:
        """A byte string that may exceed MAX_FIELD_BYTES (snapshots; never from the network)."""
        self.parts.append(struct.pack(">Q", len(value)))
        self.parts.append(value)
        return self

    def getvalue(self) -> bytes:
        return b"".join(self.parts)


class Reader:
    __slots__ = ("data", "pos", "record")

    def __init__(self, data: bytes, record: str) -> None:
        self.data = data
        self.pos = 0
        self.record = record

    def _take(self, n: int, name: str) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise DecodeError(
                f"{self.record}: truncated at field {name!r} (needs {n} bytes at offset "
                f"{self.pos}, {len(self.data)} in all)"
            )
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def u8(self, name: str) -> int:
        return int(self._take(1, name)[0])

    def u32(self, name: str) -> int:
        return int(struct.unpack(">I", self._take(4, name))[0])

    def u64(self, name: str) -> int:
        return int(struct.unpack(">Q", self._take(8, name))[0])

    def raw(self, name: str, exact: int | None = None, limit: int = MAX_FIELD_BYTES) -> bytes:
        size = self.u32(name)
        if size > limit or (exact is not None and size != exact):
            want = f"exactly {exact}" if exact is not None else f"at most {limit}"
            raise DecodeError(f"{self.record}: field {name!r} has {size} bytes, {want} allowed")
        return bytes(self._take(size, name))

    def raw_large(self, name: str) -> bytes:
        size = self.u64(name)
        return bytes(self._take(size, name))

    def text(self, name: str) -> str:
        try:
            return self.raw(name, limit=256).decode()
        except UnicodeDecodeError:
            raise DecodeError(f"{self.record}: field {name!r} is not UTF-8") from None

    def count(self, name: str, limit: int = MAX_ITEMS) -> int:
        n = self.u32(name)
        if n > limit:
            raise DecodeError(f"{self.record}: {name!r} has {n} items, at most {limit}")
        return n

    def done(self) -> None:
        if self.pos != len(self.data):
            raise DecodeError(
                f"{self.record}: {len(self.data) - self.pos} trailing bytes after the record"
            )


def read_whole(
    record: str, data: bytes, parse: Callable[[Reader], T], limit: int = MAX_MESSAGE_BYTES
) -> T:
    """Parse ``data`` as exactly one ``record`` of at most ``limit`` bytes."""
    if len(data) > limit:
        raise DecodeError(f"{record}: {len(data)} bytes, at most {limit} allowed")
    reader = Reader(data, record)
    value = parse(reader)
    reader.done()
    return value
