"""The signature scheme interface shared by the real BLS scheme and the simulator's model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

#: Separates the domain tag from the message in every signed byte string.
DOMAIN_SEPARATOR = b"\x00"
#: Minimum seed length accepted by ``SignatureScheme.keypair``.
MIN_SEED_BYTES = 32


@dataclass(frozen=True)
class KeyPair:
    """A consensus key pair: ``secret`` is the private key, ``public`` the public key (bytes)."""

    secret: bytes
    public: bytes

    def __repr__(self) -> str:  # never print secrets into logs
        return f"KeyPair(public={self.public.hex()[:16]}..., secret=<hidden>)"


def signed_message(domain: bytes, message: bytes) -> bytes:
    """The exact bytes a scheme signs: ``domain + b"\\x00" + message``."""
    return domain + DOMAIN_SEPARATOR + message


class SignatureScheme(Protocol):
    """An aggregatable signature scheme with proofs of possession.

    Verify functions return False on malformed keys or signatures and never raise; ``sign`` and
    ``pop_prove`` raise ``CryptoError`` on a malformed secret; ``aggregate`` raises
    ``CryptoError`` on a malformed signature or an empty list.
    """

    name: str  # "real" or "modeled"

    def keypair(self, seed: bytes) -> KeyPair:
        """A key pair derived deterministically from ``seed`` (at least 32 bytes)."""
        ...

    def sign(self, secret: bytes, domain: bytes, message: bytes) -> bytes: ...

    def verify(self, public: bytes, domain: bytes, message: bytes, signature: bytes) -> bool: ...

    def aggregate(self, signatures: Sequence[bytes]) -> bytes: ...

    def fast_aggregate_verify(
        self, publics: Sequence[bytes], domain: bytes, message: bytes, signature: bytes
    ) -> bool: ...

    def pop_prove(self, secret: bytes) -> bytes: ...

    def pop_verify(self, public: bytes, proof: bytes) -> bool: ...
