"""Hashing helpers and domain tags."""

from __future__ import annotations

import hashlib

from aitbc_node.crypto import Domain, sha256, tagged_hash


def test_sha256_is_plain_concatenation() -> None:
    assert sha256(b"ab", b"c") == hashlib.sha256(b"abc").digest()
    assert sha256() == hashlib.sha256(b"").digest()


def test_tagged_hash_frames_each_part() -> None:
    assert tagged_hash(b"t", b"ab", b"c") != tagged_hash(b"t", b"a", b"bc")
    assert tagged_hash(b"t", b"ab") != tagged_hash(b"t", b"a", b"b")
    assert tagged_hash(b"t", b"") != tagged_hash(b"t")
    assert tagged_hash(b"t1", b"x") != tagged_hash(b"t2", b"x")
    assert tagged_hash(b"t", b"x") == tagged_hash(b"t", b"x")
    expected = hashlib.sha256(
        (1).to_bytes(8, "big") + b"t" + (2).to_bytes(8, "big") + b"ab"
    ).digest()
    assert tagged_hash(b"t", b"ab") == expected


def test_domain_tags() -> None:
    tags = {
        "VOTE": b"AITBC/v1/vote",
        "TIMEOUT": b"AITBC/v1/timeout",
        "PROPOSAL": b"AITBC/v1/proposal",
        "RANDAO": b"AITBC/v1/randao",
        "VRF": b"AITBC/v1/vrf",
        "TX": b"AITBC/v1/tx",
        "BATCH": b"AITBC/v1/batch",
    }
    for name, value in tags.items():
        assert getattr(Domain, name) == value
    assert len(set(tags.values())) == len(tags)
    assert all(b"\x00" not in tag for tag in tags.values())  # the separator never occurs in a tag
