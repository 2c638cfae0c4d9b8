"""Both signature schemes: sign/verify, aggregates, PoP, VRF, malformed input, cost model."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from aitbc_node.crypto import (
    BlsScheme,
    Domain,
    KeyPair,
    ModeledScheme,
    SignatureScheme,
    scheme_by_name,
    sha256,
    vrf_prove,
    vrf_verify,
)
from aitbc_node.crypto import modeled as modeled_costs
from aitbc_node.errors import ConfigError, CryptoError
from blspy import G1Element, G2Element

MESSAGE = b"block 42"


@pytest.fixture(params=["real", "modeled"])
def scheme(request: pytest.FixtureRequest) -> SignatureScheme:
    return BlsScheme() if request.param == "real" else ModeledScheme()


def _keys(scheme: SignatureScheme, count: int) -> list[KeyPair]:
    return [scheme.keypair(bytes([index + 1]) * 32) for index in range(count)]


def test_sign_verify_round_trip(scheme: SignatureScheme) -> None:
    (key,) = _keys(scheme, 1)
    signature = scheme.sign(key.secret, Domain.VOTE, MESSAGE)
    assert scheme.verify(key.public, Domain.VOTE, MESSAGE, signature)


def test_sizes(scheme: SignatureScheme) -> None:
    (key,) = _keys(scheme, 1)
    assert len(key.secret) == 32
    assert len(key.public) == 48
    signature = scheme.sign(key.secret, Domain.VOTE, MESSAGE)
    assert len(signature) == (96 if scheme.name == "real" else 32)
    assert len(scheme.pop_prove(key.secret)) == 96


def test_keypair_is_deterministic_and_seed_dependent(scheme: SignatureScheme) -> None:
    assert scheme.keypair(b"a" * 32) == scheme.keypair(b"a" * 32)
    assert scheme.keypair(b"a" * 32).public != scheme.keypair(b"b" * 32).public


def test_keypair_rejects_short_seed(scheme: SignatureScheme) -> None:
    with pytest.raises(CryptoError, match="31 bytes"):
        scheme.keypair(b"x" * 31)


def test_signatures_are_deterministic(scheme: SignatureScheme) -> None:
    (key,) = _keys(scheme, 1)
    first = scheme.sign(key.secret, Domain.VOTE, MESSAGE)
    assert scheme.sign(key.secret, Domain.VOTE, MESSAGE) == first


def test_wrong_key_domain_or_message_fails(scheme: SignatureScheme) -> None:
    key, other = _keys(scheme, 2)
    signature = scheme.sign(key.secret, Domain.VOTE, MESSAGE)
    assert not scheme.verify(other.public, Domain.VOTE, MESSAGE, signature)
    assert not scheme.verify(key.public, Domain.TIMEOUT, MESSAGE, signature)
    assert not scheme.verify(key.public, Domain.VOTE, MESSAGE + b"!", signature)


def test_domain_and_message_boundary_is_unambiguous(scheme: SignatureScheme) -> None:
    (key,) = _keys(scheme, 1)
    signature = scheme.sign(key.secret, b"AITBC/v1/a", b"bc")
    assert not scheme.verify(key.public, b"AITBC/v1/ab", b"c", signature)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda raw: b"",
        lambda raw: raw[:-1],
        lambda raw: raw + b"\x00",
        lambda raw: b"\xff" * len(raw),
        lambda raw: bytes([raw[0] ^ 0x01]) + raw[1:],
        lambda raw: raw[:-1] + bytes([raw[-1] ^ 0x01]),
    ],
    ids=["empty", "short", "long", "all-ff", "first-bit", "last-bit"],
)
def test_malformed_bytes_verify_false_never_raise(scheme: SignatureScheme, mangle: object) -> None:
    assert callable(mangle)
    (key,) = _keys(scheme, 1)
    signature = scheme.sign(key.secret, Domain.VOTE, MESSAGE)
    proof = scheme.pop_prove(key.secret)
    assert not scheme.verify(mangle(key.public), Domain.VOTE, MESSAGE, signature)
    assert not scheme.verify(key.public, Domain.VOTE, MESSAGE, mangle(signature))
    assert not scheme.fast_aggregate_verify([mangle(key.public)], Domain.VOTE, MESSAGE, signature)
    assert not scheme.fast_aggregate_verify([key.public], Domain.VOTE, MESSAGE, mangle(signature))
    assert not scheme.pop_verify(mangle(key.public), proof)
    assert not scheme.pop_verify(key.public, mangle(proof))


@pytest.mark.parametrize("secret", [b"", b"\x01" * 31, b"\x01" * 33])
def test_sign_with_malformed_secret_raises(scheme: SignatureScheme, secret: bytes) -> None:
    with pytest.raises(CryptoError, match="secret key"):
        scheme.sign(secret, Domain.VOTE, MESSAGE)
    with pytest.raises(CryptoError, match="secret key"):
        scheme.pop_prove(secret)


def test_bls_secret_above_group_order_raises() -> None:
    with pytest.raises(CryptoError, match="not a valid scalar"):
        BlsScheme().sign(b"\xff" * 32, Domain.VOTE, MESSAGE)


def test_bls_identity_public_key_is_rejected() -> None:
    scheme = BlsScheme()
    identity_key = bytes(G1Element())
    identity_signature = bytes(G2Element())
    assert not scheme.verify(identity_key, Domain.VOTE, MESSAGE, identity_signature)
    assert not scheme.fast_aggregate_verify(
        [identity_key], Domain.VOTE, MESSAGE, identity_signature
    )
    assert not scheme.pop_verify(identity_key, identity_signature)


def test_aggregate_verifies_exact_signer_set(scheme: SignatureScheme) -> None:
    keys = _keys(scheme, 5)
    publics = [key.public for key in keys]
    signatures = [scheme.sign(key.secret, Domain.VOTE, MESSAGE) for key in keys]
    aggregate = scheme.aggregate(signatures)
    assert scheme.fast_aggregate_verify(publics, Domain.VOTE, MESSAGE, aggregate)
    assert scheme.fast_aggregate_verify(list(reversed(publics)), Domain.VOTE, MESSAGE, aggregate)
    # a signer claimed but missing from the aggregate
    assert not scheme.fast_aggregate_verify(
        publics, Domain.VOTE, MESSAGE, scheme.aggregate(signatures[:4])
    )
    # an extra signature in the aggregate that the signer list does not name
    assert not scheme.fast_aggregate_verify(publics[:4], Domain.VOTE, MESSAGE, aggregate)
    # a different signer set of the same size
    extra = _keys(scheme, 6)[5]
    assert not scheme.fast_aggregate_verify(
        [*publics[:4], extra.public], Domain.VOTE, MESSAGE, aggregate
    )
    # wrong message or domain
    assert not scheme.fast_aggregate_verify(publics, Domain.VOTE, b"other", aggregate)
    assert not scheme.fast_aggregate_verify(publics, Domain.TIMEOUT, MESSAGE, aggregate)
    assert not scheme.fast_aggregate_verify([], Domain.VOTE, MESSAGE, aggregate)


def test_aggregate_of_one_is_the_signature_check(scheme: SignatureScheme) -> None:
    (key,) = _keys(scheme, 1)
    signature = scheme.sign(key.secret, Domain.VOTE, MESSAGE)
    aggregate = scheme.aggregate([signature])
    assert scheme.fast_aggregate_verify([key.public], Domain.VOTE, MESSAGE, aggregate)


def test_aggregate_rejects_empty_and_malformed(scheme: SignatureScheme) -> None:
    (key,) = _keys(scheme, 1)
    signature = scheme.sign(key.secret, Domain.VOTE, MESSAGE)
    with pytest.raises(CryptoError, match="empty"):
        scheme.aggregate([])
    with pytest.raises(CryptoError, match="signature 1 of 2"):
        scheme.aggregate([signature, signature[:-1]])


def test_proof_of_possession(scheme: SignatureScheme) -> None:
    key, other = _keys(scheme, 2)
    proof = scheme.pop_prove(key.secret)
    assert scheme.pop_verify(key.public, proof)
    assert not scheme.pop_verify(other.public, proof)
    # a proof is not an ordinary signature over the public key in any of our domains
    signature = scheme.sign(key.secret, Domain.VOTE, key.public)
    assert not scheme.verify(key.public, Domain.VOTE, key.public, proof[: len(signature)])


def test_vrf_outputs_are_unique_and_verifiable(scheme: SignatureScheme) -> None:
    key, other = _keys(scheme, 2)
    output, proof = vrf_prove(scheme, key.secret, b"epoch-7")
    assert output == sha256(proof)
    assert vrf_prove(scheme, key.secret, b"epoch-7") == (output, proof)  # unique
    assert vrf_verify(scheme, key.public, b"epoch-7", proof) == output
    assert vrf_verify(scheme, other.public, b"epoch-7", proof) is None
    assert vrf_verify(scheme, key.public, b"epoch-8", proof) is None
    assert vrf_prove(scheme, key.secret, b"epoch-8")[0] != output
    assert vrf_prove(scheme, other.secret, b"epoch-7")[0] != output
    # a VRF proof is a signature under the VRF domain only
    assert not scheme.verify(key.public, Domain.RANDAO, b"epoch-7", proof)


def test_bls_concurrent_verification_from_a_thread_pool() -> None:
    scheme = BlsScheme()
    keys = _keys(scheme, 8)
    jobs = []
    for index, key in enumerate(keys):
        message = b"m%d" % index
        good = scheme.sign(key.secret, Domain.VOTE, message)
        jobs.append((key.public, message, good, True))
        jobs.append((key.public, message + b"x", good, False))
    jobs = jobs * 4

    def check(job: tuple[bytes, bytes, bytes, bool]) -> bool:
        public, message, signature, expected = job
        return scheme.verify(public, Domain.VOTE, message, signature) is expected

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(check, jobs))


def test_bls_key_cache_is_bounded() -> None:
    scheme = BlsScheme(public_key_cache_size=3)
    keys = _keys(scheme, 6)
    for key in keys:
        signature = scheme.sign(key.secret, Domain.VOTE, MESSAGE)
        assert scheme.verify(key.public, Domain.VOTE, MESSAGE, signature)
    assert len(scheme._public_keys) == 3
    # evicted keys are parsed again and still verify
    first_signature = scheme.sign(keys[0].secret, Domain.VOTE, MESSAGE)
    assert scheme.verify(keys[0].public, Domain.VOTE, MESSAGE, first_signature)


def test_modeled_cost_meter() -> None:
    scheme = ModeledScheme()
    keys = _keys(scheme, 10)
    assert scheme.take_charge() == 0.0
    signatures = [scheme.sign(key.secret, Domain.VOTE, MESSAGE) for key in keys]
    assert scheme.take_charge() == pytest.approx(10 * modeled_costs.SIGN_SECONDS)
    assert scheme.charged_seconds == 0.0
    scheme.verify(keys[0].public, Domain.VOTE, MESSAGE, signatures[0])
    aggregate = scheme.aggregate(signatures)
    publics = [key.public for key in keys]
    scheme.fast_aggregate_verify(publics, Domain.VOTE, MESSAGE, aggregate)
    scheme.fast_aggregate_verify(publics, Domain.VOTE, MESSAGE, aggregate)  # cached, still charged
    scheme.pop_verify(keys[0].public, scheme.pop_prove(keys[0].secret))
    expected = (
        modeled_costs.VERIFY_SECONDS
        + 10 * modeled_costs.AGGREGATE_SECONDS_PER_SIGNATURE
        + 2
        * (
            modeled_costs.FAST_AGGREGATE_VERIFY_BASE_SECONDS
            + 10 * modeled_costs.FAST_AGGREGATE_VERIFY_SECONDS_PER_SIGNER
        )
        + modeled_costs.POP_PROVE_SECONDS
        + modeled_costs.POP_VERIFY_SECONDS
    )
    assert scheme.take_charge() == pytest.approx(expected)
    assert pytest.approx(0.25e-3) == modeled_costs.SIGN_SECONDS
    assert pytest.approx(1.6e-3) == modeled_costs.POP_VERIFY_SECONDS


def test_modeled_cached_aggregate_result_keeps_negative_answers() -> None:
    scheme = ModeledScheme()
    keys = _keys(scheme, 3)
    publics = [key.public for key in keys]
    aggregate = scheme.aggregate([scheme.sign(k.secret, Domain.VOTE, MESSAGE) for k in keys])
    for _ in range(2):
        assert scheme.fast_aggregate_verify(publics, Domain.VOTE, MESSAGE, aggregate)
        assert not scheme.fast_aggregate_verify(publics[:2], Domain.VOTE, MESSAGE, aggregate)


def test_modeled_public_key_must_be_well_formed() -> None:
    scheme = ModeledScheme()
    (key,) = _keys(scheme, 1)
    forged_public = key.public[:32] + b"\x00" * 16
    signature = scheme.sign(key.secret, Domain.VOTE, MESSAGE)
    assert not scheme.verify(forged_public, Domain.VOTE, MESSAGE, signature)


def test_scheme_by_name() -> None:
    assert scheme_by_name("real").name == "real"
    assert scheme_by_name("real") is scheme_by_name("real")
    modeled = scheme_by_name("modeled")
    assert modeled.name == "modeled"
    assert modeled is not scheme_by_name("modeled")  # each has its own cost meter
    with pytest.raises(ConfigError, match=r"unknown signature scheme 'bls'.*real, modeled"):
        scheme_by_name("bls")


def test_schemes_do_not_accept_each_others_signatures() -> None:
    real, modeled = BlsScheme(), ModeledScheme()
    real_key = real.keypair(b"k" * 32)
    modeled_key = modeled.keypair(b"k" * 32)
    modeled_signature = modeled.sign(modeled_key.secret, Domain.VOTE, MESSAGE)
    assert not real.verify(real_key.public, Domain.VOTE, MESSAGE, modeled_signature)
    assert not modeled.verify(
        modeled_key.public, Domain.VOTE, MESSAGE, real.sign(real_key.secret, Domain.VOTE, MESSAGE)
    )
