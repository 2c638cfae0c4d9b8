"""Ed25519 transaction signatures."""

from __future__ import annotations

import pytest
from aitbc_node.crypto import (
    ed25519_keypair,
    ed25519_public_key,
    ed25519_sign,
    ed25519_verify,
    sha256,
)
from aitbc_node.errors import CryptoError

# RFC 8032, section 7.1, TEST 1 (empty message)
RFC_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_rfc8032_vector() -> None:
    assert ed25519_public_key(RFC_SECRET) == RFC_PUBLIC
    assert ed25519_sign(RFC_SECRET, b"") == RFC_SIGNATURE
    assert ed25519_verify(RFC_PUBLIC, b"", RFC_SIGNATURE)


def test_keypair_is_deterministic() -> None:
    pair = ed25519_keypair(b"seed")
    assert pair.secret == sha256(b"seed")
    assert pair == ed25519_keypair(b"seed")
    assert pair.public != ed25519_keypair(b"seed2").public
    assert len(pair.public) == 32
    assert "secret=<hidden>" in repr(pair)


def test_round_trip_and_negatives() -> None:
    pair, other = ed25519_keypair(b"a"), ed25519_keypair(b"b")
    signature = ed25519_sign(pair.secret, b"message")
    assert len(signature) == 64
    assert ed25519_verify(pair.public, b"message", signature)
    assert not ed25519_verify(other.public, b"message", signature)
    assert not ed25519_verify(pair.public, b"messagf", signature)
    assert not ed25519_verify(pair.public, b"message", signature[:-1] + bytes([signature[-1] ^ 1]))


@pytest.mark.parametrize(
    ("public", "signature"),
    [
        (b"", b"\x00" * 64),
        (b"\x01" * 31, b"\x00" * 64),
        (b"\x01" * 33, b"\x00" * 64),
        (RFC_PUBLIC, b""),
        (RFC_PUBLIC, b"\x00" * 63),
        (RFC_PUBLIC, b"\xff" * 64),
    ],
)
def test_malformed_input_verifies_false(public: bytes, signature: bytes) -> None:
    assert not ed25519_verify(public, b"", signature)


def test_malformed_secret_raises() -> None:
    with pytest.raises(CryptoError, match="31 bytes"):
        ed25519_sign(b"\x01" * 31, b"m")
