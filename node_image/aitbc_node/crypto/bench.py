"""Measure the crypto costs quoted in the docs: ``python -m aitbc_node.crypto.bench``.

Not a test: it prints medians on this machine. Compares ``BlsScheme.fast_aggregate_verify`` at
1,000 signers with a bare blspy call on pre-parsed keys (the wrapper must stay within 1.5x).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from blspy import G1Element, G2Element, PopSchemeMPL

from aitbc_node.crypto.bls import BlsScheme
from aitbc_node.crypto.ed25519 import ed25519_keypair, ed25519_sign, ed25519_verify
from aitbc_node.crypto.hashing import Domain
from aitbc_node.crypto.modeled import ModeledScheme
from aitbc_node.crypto.scheme import SignatureScheme, signed_message


def median_ms(action: Callable[[], object], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


def _scheme_costs(scheme: SignatureScheme, signers: int, repeats: int) -> dict[str, float]:
    keys = [scheme.keypair(index.to_bytes(32, "big")) for index in range(signers)]
    publics = [key.public for key in keys]
    message = b"block-id" * 4
    signatures = [scheme.sign(key.secret, Domain.VOTE, message) for key in keys]
    aggregate = scheme.aggregate(signatures)
    proof = scheme.pop_prove(keys[0].secret)
    costs = {
        "sign": median_ms(lambda: scheme.sign(keys[0].secret, Domain.VOTE, message), repeats),
        "verify": median_ms(
            lambda: scheme.verify(publics[0], Domain.VOTE, message, signatures[0]), repeats
        ),
        "pop_prove": median_ms(lambda: scheme.pop_prove(keys[0].secret), repeats),
        "pop_verify": median_ms(lambda: scheme.pop_verify(publics[0], proof), repeats),
        f"aggregate_{signers}": median_ms(lambda: scheme.aggregate(signatures), repeats),
        f"fast_aggregate_verify_{signers}": median_ms(
            lambda: scheme.fast_aggregate_verify(publics, Domain.VOTE, message, aggregate),
            repeats,
        ),
    }
    if isinstance(scheme, BlsScheme):
        parsed = [G1Element.from_bytes(public) for public in publics]
        signed = signed_message(Domain.VOTE, message)
        parsed_aggregate = G2Element.from_bytes(aggregate)
        wrapped_samples, bare_samples = [], []
        for _ in range(repeats):  # interleaved, so that load from other processes hits both
            wrapped_samples.append(
                median_ms(
                    lambda: scheme.fast_aggregate_verify(publics, Domain.VOTE, message, aggregate),
                    1,
                )
            )
            bare_samples.append(
                median_ms(
                    lambda: PopSchemeMPL.fast_aggregate_verify(parsed, signed, parsed_aggregate),
                    1,
                )
            )
        costs[f"fast_aggregate_verify_{signers}"] = statistics.median(wrapped_samples)
        costs[f"bare_blspy_fast_aggregate_verify_{signers}"] = statistics.median(bare_samples)
        costs["fast_aggregate_verify_ratio"] = statistics.median(wrapped_samples) / (
            statistics.median(bare_samples)
        )
        costs[f"fast_aggregate_verify_{signers}_cold_cache"] = median_ms(
            lambda: BlsScheme().fast_aggregate_verify(publics, Domain.VOTE, message, aggregate),
            max(3, repeats // 10),
        )
    return costs


def _ed25519_costs(repeats: int) -> dict[str, float]:
    pair = ed25519_keypair(b"bench")
    message = b"x" * 200
    signature = ed25519_sign(pair.secret, message)
    verify = median_ms(lambda: ed25519_verify(pair.public, message, signature), repeats)
    return {
        "ed25519_sign": median_ms(lambda: ed25519_sign(pair.secret, message), repeats),
        "ed25519_verify": verify,
        "ed25519_verify_per_second": 1e3 / verify,
    }


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    signers = int(arguments[0]) if arguments else 1000
    repeats = int(arguments[1]) if len(arguments) > 1 else 50
    results = {
        "real": _scheme_costs(BlsScheme(), signers, repeats),
        "modeled": _scheme_costs(ModeledScheme(), signers, repeats),
        "ed25519": _ed25519_costs(repeats * 20),
    }
    for group, costs in results.items():
        for name, value in costs.items():
            unit = "" if "ratio" in name or "per_second" in name else " ms"
            sys.stdout.write(f"{group:8s} {name:44s} {value:10.4f}{unit}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
