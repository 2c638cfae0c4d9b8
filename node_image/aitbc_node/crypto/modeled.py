"""An ideal-signature model of the BLS scheme for the simulator at 1,000 validators.

Signatures are hashes of (public key, domain, message), so they are deterministic, unique and
verify only for the right key, domain and message, at hash cost instead of pairing cost. It is
NOT secure (anyone who knows a public key can compute its signatures): it models honest and
byzantine validators that sign with their own keys, which is all the simulator needs.

What the model does not save in wall-clock time it charges in ``charged_seconds``: each call adds
the cost that the real scheme has on the reference 2-core machine, and the simulator adds
``take_charge()`` to the simulated node's CPU clock after each event.
"""

from __future__ import annotations

from collections.abc import Sequence

from aitbc_node.crypto._cache import BoundedCache
from aitbc_node.crypto.hashing import sha256
from aitbc_node.crypto.scheme import DOMAIN_SEPARATOR, MIN_SEED_BYTES, KeyPair
from aitbc_node.errors import CryptoError

PUBLIC_KEY_BYTES = 48
SIGNATURE_BYTES = 32
POP_BYTES = 96
SECRET_KEY_BYTES = 32

SIGN_SECONDS = 0.25e-3
"""Cost of one BLS ``sign`` (hash to G2 + scalar multiplication), 0.25 ms."""
VERIFY_SECONDS = 0.8e-3
"""Cost of one BLS ``verify`` (two pairings), 0.8 ms."""
AGGREGATE_SECONDS_PER_SIGNATURE = 0.002e-3
"""Cost of adding one signature to an aggregate (a G2 addition), 0.002 ms."""
FAST_AGGREGATE_VERIFY_BASE_SECONDS = 1.0e-3
"""Fixed cost of ``fast_aggregate_verify`` (two pairings and hashing to G2), 1.0 ms."""
FAST_AGGREGATE_VERIFY_SECONDS_PER_SIGNER = 0.0003e-3
"""Per-signer cost of ``fast_aggregate_verify`` (a G1 addition of a cached key), 0.0003 ms."""
POP_VERIFY_SECONDS = 1.6e-3
"""Cost of ``pop_verify`` (subgroup check plus two pairings), 1.6 ms."""
POP_PROVE_SECONDS = SIGN_SECONDS
"""Cost of ``pop_prove``: it is a signature over the public key, so the cost of ``sign``."""

#: Verified (publics, domain, message, signature) results kept: 1,000 simulated nodes each
#: verify the same QC, which costs one recomputation instead of 1,000 (the charge is per call).
_AGGREGATE_RESULT_CACHE_SIZE = 1024


def _extend(digest: bytes, length: int) -> bytes:
    """``digest`` followed by hashes of itself, cut to ``length`` bytes."""
    out = digest
    block = digest
    while len(out) < length:
        block = sha256(block)
        out += block
    return out[:length]


def _public_from_secret(secret: bytes) -> bytes:
    return _extend(sha256(b"pk", secret), PUBLIC_KEY_BYTES)


def _well_formed_public(public: bytes) -> bool:
    return len(public) == PUBLIC_KEY_BYTES and _extend(public[:32], PUBLIC_KEY_BYTES) == public


def _signature_of(public: bytes, signed: bytes) -> bytes:
    return sha256(b"sig", public, signed)


class ModeledScheme:
    """``SignatureScheme`` with hash signatures and a CPU cost meter (name ``"modeled"``)."""

    name: str = "modeled"

    def __init__(self) -> None:
        self.charged_seconds: float = 0.0
        self._aggregate_results: BoundedCache[tuple[object, ...], bool] = BoundedCache(
            _AGGREGATE_RESULT_CACHE_SIZE
        )

    def take_charge(self) -> float:
        """The CPU seconds charged since the last call; resets the meter to zero."""
        charged = self.charged_seconds
        self.charged_seconds = 0.0
        return charged

    # -- keys -------------------------------------------------------------------------------
    def keypair(self, seed: bytes) -> KeyPair:
        if len(seed) < MIN_SEED_BYTES:
            raise CryptoError(
                f"modeled key seed has {len(seed)} bytes: pass at least {MIN_SEED_BYTES} bytes"
            )
        secret = sha256(b"modeled-sk", seed)
        return KeyPair(secret=secret, public=_public_from_secret(secret))

    def public_key(self, secret: bytes) -> bytes:
        """The public key of ``secret`` (raises ``CryptoError`` when it is malformed)."""
        self._check_secret(secret)
        return _public_from_secret(secret)

    @staticmethod
    def _check_secret(secret: bytes) -> None:
        if len(secret) != SECRET_KEY_BYTES:
            raise CryptoError(
                f"modeled secret key has {len(secret)} bytes, expected {SECRET_KEY_BYTES}: "
                "check the key file's bls_secret"
            )

    # -- signatures -------------------------------------------------------------------------
    def sign(self, secret: bytes, domain: bytes, message: bytes) -> bytes:
        self._check_secret(secret)
        self.charged_seconds += SIGN_SECONDS
        return _signature_of(_public_from_secret(secret), domain + DOMAIN_SEPARATOR + message)

    def verify(self, public: bytes, domain: bytes, message: bytes, signature: bytes) -> bool:
        self.charged_seconds += VERIFY_SECONDS
        if len(signature) != SIGNATURE_BYTES or not _well_formed_public(public):
            return False
        return _signature_of(public, domain + DOMAIN_SEPARATOR + message) == signature

    def aggregate(self, signatures: Sequence[bytes]) -> bytes:
        if not signatures:
            raise CryptoError("cannot aggregate an empty list of modeled signatures")
        self.charged_seconds += AGGREGATE_SECONDS_PER_SIGNATURE * len(signatures)
        accumulator = 0
        for position, signature in enumerate(signatures):
            if len(signature) != SIGNATURE_BYTES:
                raise CryptoError(
                    f"modeled signature {position} of {len(signatures)} has {len(signature)} "
                    f"bytes, expected {SIGNATURE_BYTES}: verify each signature before aggregating"
                )
            accumulator ^= int.from_bytes(signature, "big")
        return accumulator.to_bytes(SIGNATURE_BYTES, "big")

    def fast_aggregate_verify(
        self, publics: Sequence[bytes], domain: bytes, message: bytes, signature: bytes
    ) -> bool:
        self.charged_seconds += (
            FAST_AGGREGATE_VERIFY_BASE_SECONDS
            + FAST_AGGREGATE_VERIFY_SECONDS_PER_SIGNER * len(publics)
        )
        if not publics or len(signature) != SIGNATURE_BYTES:
            return False
        key = (domain, message, signature, tuple(publics))
        cached = self._aggregate_results.get(key)
        if cached is not None:
            return cached
        signed = domain + DOMAIN_SEPARATOR + message
        accumulator = 0
        result = True
        for public in publics:
            if not _well_formed_public(public):
                result = False
                break
            accumulator ^= int.from_bytes(_signature_of(public, signed), "big")
        result = result and accumulator == int.from_bytes(signature, "big")
        self._aggregate_results.put(key, result)
        return result

    # -- proofs of possession ---------------------------------------------------------------
    def pop_prove(self, secret: bytes) -> bytes:
        self._check_secret(secret)
        self.charged_seconds += POP_PROVE_SECONDS
        return _extend(sha256(b"pop", _public_from_secret(secret)), POP_BYTES)

    def pop_verify(self, public: bytes, proof: bytes) -> bool:
        self.charged_seconds += POP_VERIFY_SECONDS
        if len(proof) != POP_BYTES or not _well_formed_public(public):
            return False
        return _extend(sha256(b"pop", public), POP_BYTES) == proof
