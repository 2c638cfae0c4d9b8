"""The real signature scheme: BLS12-381 with proofs of possession (blspy ``PopSchemeMPL``).

Public keys are 48 bytes (G1), signatures 96 bytes (G2), secrets 32 bytes. Parsed public keys,
private keys and signatures are cached in bounded caches: parsing a point with its subgroup
check costs ~0.1 ms, so 1,000 unparsed keys would cost 100 ms per aggregate verification.
blspy releases the GIL, so one ``BlsScheme`` may serve a pool of verifier threads.
"""

from __future__ import annotations

from collections.abc import Sequence

from blspy import AugSchemeMPL, G1Element, G2Element, PopSchemeMPL, PrivateKey

from aitbc_node.crypto._cache import BoundedCache
from aitbc_node.crypto.scheme import MIN_SEED_BYTES, KeyPair, signed_message
from aitbc_node.errors import CryptoError

PUBLIC_KEY_BYTES = 48
SIGNATURE_BYTES = 96
SECRET_KEY_BYTES = 32
#: Parsed public keys kept: enough for a 1,000-validator set plus registrations and churn.
PUBLIC_KEY_CACHE_SIZE = 4096
#: Parsed private keys kept: a node holds one; the simulator with real keys holds one per node.
PRIVATE_KEY_CACHE_SIZE = 4096
#: Parsed signatures kept: a leader verifies up to 1,000 votes, then aggregates the same bytes
#: (parsing a G2 point with its subgroup check costs ~0.1 ms: 100 ms for 1,000 votes).
SIGNATURE_CACHE_SIZE = 8192

_IDENTITY_G1 = G1Element()


class BlsScheme:
    """``SignatureScheme`` backed by blspy's proof-of-possession scheme (name ``"real"``)."""

    name: str = "real"

    def __init__(
        self,
        public_key_cache_size: int = PUBLIC_KEY_CACHE_SIZE,
        private_key_cache_size: int = PRIVATE_KEY_CACHE_SIZE,
        signature_cache_size: int = SIGNATURE_CACHE_SIZE,
    ) -> None:
        self._public_keys: BoundedCache[bytes, G1Element] = BoundedCache(public_key_cache_size)
        self._private_keys: BoundedCache[bytes, PrivateKey] = BoundedCache(private_key_cache_size)
        self._signatures: BoundedCache[bytes, G2Element] = BoundedCache(signature_cache_size)

    # -- keys -------------------------------------------------------------------------------
    def keypair(self, seed: bytes) -> KeyPair:
        if len(seed) < MIN_SEED_BYTES:
            raise CryptoError(
                f"BLS key seed has {len(seed)} bytes: pass at least {MIN_SEED_BYTES} bytes "
                "(e.g. a tagged_hash of the testnet seed)"
            )
        secret_key = AugSchemeMPL.key_gen(seed)
        secret = bytes(secret_key)
        self._private_keys.put(secret, secret_key)
        return KeyPair(secret=secret, public=bytes(secret_key.get_g1()))

    def public_key(self, secret: bytes) -> bytes:
        """The public key of ``secret`` (raises ``CryptoError`` when it is malformed)."""
        return bytes(self._private_key(secret).get_g1())

    def _private_key(self, secret: bytes) -> PrivateKey:
        cached = self._private_keys.get(secret)
        if cached is not None:
            return cached
        if len(secret) != SECRET_KEY_BYTES:
            raise CryptoError(
                f"BLS secret key has {len(secret)} bytes, expected {SECRET_KEY_BYTES}: "
                "check the key file's bls_secret"
            )
        try:
            parsed = PrivateKey.from_bytes(secret)
        except (ValueError, RuntimeError) as error:
            raise CryptoError(
                f"BLS secret key is not a valid scalar ({error}): regenerate the key"
            ) from None
        self._private_keys.put(secret, parsed)
        return parsed

    def _public_key(self, public: bytes) -> G1Element | None:
        cached = self._public_keys.get(public)
        if cached is not None:
            return cached
        if len(public) != PUBLIC_KEY_BYTES:
            return None
        try:
            parsed = G1Element.from_bytes(public)
        except (ValueError, RuntimeError):
            return None
        if parsed == _IDENTITY_G1:  # the identity key "verifies" the identity signature
            return None
        self._public_keys.put(bytes(public), parsed)
        return parsed

    def _signature(self, signature: bytes) -> G2Element | None:
        cached = self._signatures.get(signature)
        if cached is not None:
            return cached
        if len(signature) != SIGNATURE_BYTES:
            return None
        try:
            parsed = G2Element.from_bytes(signature)
        except (ValueError, RuntimeError):
            return None
        self._signatures.put(bytes(signature), parsed)
        return parsed

    # -- signatures -------------------------------------------------------------------------
    def sign(self, secret: bytes, domain: bytes, message: bytes) -> bytes:
        return bytes(PopSchemeMPL.sign(self._private_key(secret), signed_message(domain, message)))

    def verify(self, public: bytes, domain: bytes, message: bytes, signature: bytes) -> bool:
        public_key = self._public_key(public)
        parsed_signature = self._signature(signature)
        if public_key is None or parsed_signature is None:
            return False
        try:
            return bool(
                PopSchemeMPL.verify(public_key, signed_message(domain, message), parsed_signature)
            )
        except (ValueError, RuntimeError):
            return False

    def aggregate(self, signatures: Sequence[bytes]) -> bytes:
        if not signatures:
            raise CryptoError("cannot aggregate an empty list of BLS signatures")
        parsed: list[G2Element] = []
        for position, signature in enumerate(signatures):
            element = self._signature(signature)
            if element is None:
                raise CryptoError(
                    f"BLS signature {position} of {len(signatures)} is malformed "
                    f"({len(signature)} bytes, expected {SIGNATURE_BYTES}): verify each "
                    "signature before aggregating"
                )
            parsed.append(element)
        return bytes(PopSchemeMPL.aggregate(parsed))

    def fast_aggregate_verify(
        self, publics: Sequence[bytes], domain: bytes, message: bytes, signature: bytes
    ) -> bool:
        if not publics:
            return False
        parsed_signature = self._signature(signature)
        if parsed_signature is None:
            return False
        cache_get = self._public_keys.get
        public_keys: list[G1Element] = []
        for public in publics:
            key = cache_get(public)
            if key is None:
                key = self._public_key(public)
                if key is None:
                    return False
            public_keys.append(key)
        try:
            return bool(
                PopSchemeMPL.fast_aggregate_verify(
                    public_keys, signed_message(domain, message), parsed_signature
                )
            )
        except (ValueError, RuntimeError):
            return False

    # -- proofs of possession ---------------------------------------------------------------
    def pop_prove(self, secret: bytes) -> bytes:
        return bytes(PopSchemeMPL.pop_prove(self._private_key(secret)))

    def pop_verify(self, public: bytes, proof: bytes) -> bool:
        public_key = self._public_key(public)
        parsed_proof = self._signature(proof)
        if public_key is None or parsed_proof is None:
            return False
        try:
            return bool(PopSchemeMPL.pop_verify(public_key, parsed_proof))
        except (ValueError, RuntimeError):
            return False
