"""A signature scheme wrapper for the simulator: every call is charged to the simulated node's CPU
from the cost model (so real and modeled crypto give the same, deterministic timing), and verify
results are memoised across nodes (1,000 simulated nodes checking one QC pay one real check; each
is still charged)."""

from __future__ import annotations

from collections.abc import Sequence

from aitbc_node.crypto import KeyPair, SignatureScheme
from aitbc_node.crypto.modeled import (
    AGGREGATE_SECONDS_PER_SIGNATURE,
    FAST_AGGREGATE_VERIFY_BASE_SECONDS,
    FAST_AGGREGATE_VERIFY_SECONDS_PER_SIGNER,
    POP_VERIFY_SECONDS,
    SIGN_SECONDS,
    VERIFY_SECONDS,
)

_MEMO_LIMIT = 200_000


class CostedScheme:
    def __init__(self, inner: SignatureScheme) -> None:
        self.inner = inner
        self.name = inner.name
        self._charge = 0.0
        self.total_charged = 0.0
        self._memo: dict[tuple[object, ...], bool] = {}

    def take_charge(self) -> float:
        charge, self._charge = self._charge, 0.0
        if hasattr(self.inner, "take_charge"):
            self.inner.take_charge()
        self.total_charged += charge
        return charge

    def _remember(self, key: tuple[object, ...], value: bool) -> bool:
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = value
        return value

    def keypair(self, seed: bytes) -> KeyPair:
        return self.inner.keypair(seed)

    def sign(self, secret: bytes, domain: bytes, message: bytes) -> bytes:
        self._charge += SIGN_SECONDS
        return self.inner.sign(secret, domain, message)

    def verify(self, public: bytes, domain: bytes, message: bytes, signature: bytes) -> bool:
        self._charge += VERIFY_SECONDS
        key = ("v", public, domain, message, signature)
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        return self._remember(key, self.inner.verify(public, domain, message, signature))

    def aggregate(self, signatures: Sequence[bytes]) -> bytes:
        self._charge += AGGREGATE_SECONDS_PER_SIGNATURE * len(signatures)
        return self.inner.aggregate(signatures)

    def fast_aggregate_verify(
        self, publics: Sequence[bytes], domain: bytes, message: bytes, signature: bytes
    ) -> bool:
        self._charge += (
            FAST_AGGREGATE_VERIFY_BASE_SECONDS
            + FAST_AGGREGATE_VERIFY_SECONDS_PER_SIGNER * len(publics)
        )
        key = ("a", tuple(publics), domain, message, signature)
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        return self._remember(
            key, self.inner.fast_aggregate_verify(publics, domain, message, signature)
        )

    def pop_prove(self, secret: bytes) -> bytes:
        self._charge += SIGN_SECONDS
        return self.inner.pop_prove(secret)

    def pop_verify(self, public: bytes, proof: bytes) -> bool:
        self._charge += POP_VERIFY_SECONDS
        return self.inner.pop_verify(public, proof)
