"""Hash functions and the domain separation tags of every signed or hashed object."""

from __future__ import annotations

import hashlib
import struct

_LENGTH = struct.Struct(">Q")


def sha256(*parts: bytes) -> bytes:
    """SHA-256 of the plain concatenation of ``parts`` (no framing: use only with fixed layouts)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.digest()


def tagged_hash(tag: bytes, *parts: bytes) -> bytes:
    """SHA-256 over ``tag`` and ``parts``, each prefixed with its length as 8 bytes big endian.

    The framing makes the input unambiguous: ``tagged_hash(t, b"ab", b"c")`` and
    ``tagged_hash(t, b"a", b"bc")`` differ, and so do hashes under different tags.
    """
    digest = hashlib.sha256()
    digest.update(_LENGTH.pack(len(tag)))
    digest.update(tag)
    for part in parts:
        digest.update(_LENGTH.pack(len(part)))
        digest.update(part)
    return digest.digest()


class Domain:
    """Domain separation tags. A signature made under one tag never verifies under another.

    The BLS proof of possession uses blspy's own PoP domain (``PopSchemeMPL.pop_prove``).
    """

    VOTE = b"AITBC/v1/vote"
    TIMEOUT = b"AITBC/v1/timeout"
    PROPOSAL = b"AITBC/v1/proposal"
    RANDAO = b"AITBC/v1/randao"
    VRF = b"AITBC/v1/vrf"
    TX = b"AITBC/v1/tx"
    BATCH = b"AITBC/v1/batch"
