"""Pick a signature scheme by its name, as written in configs and scenarios."""

from __future__ import annotations

from aitbc_node.crypto.bls import BlsScheme
from aitbc_node.crypto.modeled import ModeledScheme
from aitbc_node.crypto.scheme import SignatureScheme
from aitbc_node.errors import ConfigError

SCHEME_NAMES = ("real", "modeled")

_shared_bls = BlsScheme()


def scheme_by_name(name: str) -> SignatureScheme:
    """``"real"``: the process-wide ``BlsScheme`` (stateless apart from its key caches, so it is
    shared); ``"modeled"``: a new ``ModeledScheme`` (each carries its own cost meter)."""
    if name == "real":
        return _shared_bls
    if name == "modeled":
        return ModeledScheme()
    raise ConfigError(f"unknown signature scheme {name!r}: use one of {', '.join(SCHEME_NAMES)}")
