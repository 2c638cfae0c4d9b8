"""Ed25519 transaction signatures (the ``cryptography`` package, OpenSSL underneath).

An account address is its 32-byte Ed25519 public key. Parsed keys are cached: a node verifies
thousands of transactions per second from a much smaller set of senders.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from aitbc_node.crypto._cache import BoundedCache
from aitbc_node.crypto.hashing import sha256
from aitbc_node.errors import CryptoError

ED25519_PUBLIC_BYTES = 32
ED25519_SECRET_BYTES = 32
ED25519_SIGNATURE_BYTES = 64
#: Parsed public keys kept (senders seen recently).
PUBLIC_KEY_CACHE_SIZE = 65536
#: Parsed private keys kept (the load generator signs for many test accounts).
PRIVATE_KEY_CACHE_SIZE = 65536

_public_keys: BoundedCache[bytes, Ed25519PublicKey] = BoundedCache(PUBLIC_KEY_CACHE_SIZE)
_private_keys: BoundedCache[bytes, Ed25519PrivateKey] = BoundedCache(PRIVATE_KEY_CACHE_SIZE)


@dataclass(frozen=True)
class Ed25519KeyPair:
    """An account key pair: 32-byte secret (the RFC 8032 seed) and 32-byte public key."""

    secret: bytes
    public: bytes

    def __repr__(self) -> str:  # never print secrets into logs
        return f"Ed25519KeyPair(public={self.public.hex()[:16]}..., secret=<hidden>)"


def _private_key(secret: bytes) -> Ed25519PrivateKey:
    cached = _private_keys.get(secret)
    if cached is not None:
        return cached
    if len(secret) != ED25519_SECRET_BYTES:
        raise CryptoError(
            f"Ed25519 secret key has {len(secret)} bytes, expected {ED25519_SECRET_BYTES}: "
            "check the key file's account_secret"
        )
    parsed = Ed25519PrivateKey.from_private_bytes(secret)
    _private_keys.put(bytes(secret), parsed)
    return parsed


def _public_key(public: bytes) -> Ed25519PublicKey | None:
    cached = _public_keys.get(public)
    if cached is not None:
        return cached
    if len(public) != ED25519_PUBLIC_BYTES:
        return None
    try:
        parsed = Ed25519PublicKey.from_public_bytes(public)
    except ValueError:
        return None
    _public_keys.put(bytes(public), parsed)
    return parsed


def ed25519_public_key(secret: bytes) -> bytes:
    """The public key (account address) of ``secret``."""
    return _private_key(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def ed25519_keypair(seed: bytes) -> Ed25519KeyPair:
    """A key pair derived deterministically from ``seed``: secret = sha256(seed)."""
    secret = sha256(seed)
    return Ed25519KeyPair(secret=secret, public=ed25519_public_key(secret))


def ed25519_sign(secret: bytes, message: bytes) -> bytes:
    """The 64-byte signature of ``message``; raises ``CryptoError`` on a malformed secret."""
    return _private_key(secret).sign(message)


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is ``public``'s signature of ``message``; False on any malformed
    input (never raises)."""
    if len(signature) != ED25519_SIGNATURE_BYTES:
        return False
    key = _public_key(public)
    if key is None:
        return False
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True
