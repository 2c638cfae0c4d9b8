"""A verifiable random function from unique signatures.

BLS signatures are unique: for a given key and message exactly one valid signature exists, and
nobody without the secret key can predict it. So ``sha256(signature)`` is a VRF output and the
signature itself is the proof: anyone verifies the proof under the public key and recomputes the
output, and the signer cannot choose among several outputs (it can only withhold one). The
modeled scheme's signatures are deterministic hashes, hence unique as well.
"""

from __future__ import annotations

from aitbc_node.crypto.hashing import Domain, sha256
from aitbc_node.crypto.scheme import SignatureScheme


def vrf_prove(scheme: SignatureScheme, secret: bytes, domain_input: bytes) -> tuple[bytes, bytes]:
    """``(output, proof)`` for ``domain_input``: proof = sign(secret, Domain.VRF, input),
    output = sha256(proof)."""
    proof = scheme.sign(secret, Domain.VRF, domain_input)
    return sha256(proof), proof


def vrf_verify(
    scheme: SignatureScheme, public: bytes, domain_input: bytes, proof: bytes
) -> bytes | None:
    """The VRF output when ``proof`` is ``public``'s proof for ``domain_input``, else None."""
    if not scheme.verify(public, Domain.VRF, domain_input, proof):
        return None
    return sha256(proof)
