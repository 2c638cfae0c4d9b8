"""Deterministic testnet identities and the node's key file.

Testnet keys are derived from a public seed so that the orchestrator, the load generator and
every node agree on them without distributing secrets. That is only acceptable on a testnet:
anyone who knows the seed knows every key.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from aitbc_node.crypto.ed25519 import Ed25519KeyPair, ed25519_keypair, ed25519_public_key
from aitbc_node.crypto.hashing import tagged_hash
from aitbc_node.crypto.scheme import KeyPair, SignatureScheme
from aitbc_node.errors import ConfigError, CryptoError

KEY_FILE_VERSION = 1
_KEY_CHECK_DOMAIN = b"AITBC/v1/keycheck"


def _index_bytes(index: int) -> bytes:
    if not 0 <= index < 2**64:
        raise ConfigError(f"testnet key index {index} is out of range: use 0 <= index < 2**64")
    return index.to_bytes(8, "big")


def testnet_bls_keypair(scheme: SignatureScheme, seed: str, index: int) -> KeyPair:
    """Validator ``index``'s consensus key pair: ``scheme.keypair(tagged_hash(b"bls-key",
    seed, index as 8 bytes big endian))``."""
    return scheme.keypair(tagged_hash(b"bls-key", seed.encode(), _index_bytes(index)))


def testnet_account_keypair(seed: str, index: int) -> Ed25519KeyPair:
    """Test account ``index``'s key pair: ``ed25519_keypair(tagged_hash(b"account-key", seed,
    index as 8 bytes big endian))``. Validator reward accounts use index 1_000_000 + validator."""
    return ed25519_keypair(tagged_hash(b"account-key", seed.encode(), _index_bytes(index)))


@dataclass(frozen=True)
class NodeKeys:
    """A validator's keys: the consensus (BLS or modeled) pair and its Ed25519 account pair."""

    bls: KeyPair
    account: Ed25519KeyPair


class KeyFile(BaseModel):
    """The JSON key file (hex strings); mode 0600."""

    model_config = ConfigDict(extra="forbid")

    version: int = KEY_FILE_VERSION
    scheme: str
    bls_secret: str
    bls_public: str
    account_secret: str
    account_public: str


def save_key_file(path: str | os.PathLike[str], keys: NodeKeys, scheme_name: str = "real") -> None:
    """Write ``keys`` to ``path`` as JSON with mode 0600 (atomically: temp file, then rename)."""
    target = Path(path)
    document = KeyFile(
        scheme=scheme_name,
        bls_secret=keys.bls.secret.hex(),
        bls_public=keys.bls.public.hex(),
        account_secret=keys.account.secret.hex(),
        account_public=keys.account.public.hex(),
    )
    payload = (json.dumps(document.model_dump(), indent=2) + "\n").encode()
    temporary = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(descriptor, 0o600)
            os.write(descriptor, payload)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise ConfigError(
            f"key file {target}: cannot write ({error.strerror}): check the directory exists "
            "and is writable"
        ) from None


def _hex_field(path: Path, document: KeyFile, field: str, length: int) -> bytes:
    text = getattr(document, field)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"key file {path}: field {field} is not hex: {text[:16]!r}...") from None
    if len(raw) != length:
        raise ConfigError(f"key file {path}: field {field} has {len(raw)} bytes, expected {length}")
    return raw


def load_key_file(path: str | os.PathLike[str], scheme: SignatureScheme) -> NodeKeys:
    """Read and check a key file written by ``save_key_file`` for ``scheme``.

    Raises ``ConfigError`` naming the path and the field when the file is missing, not JSON, has
    missing/unknown fields, bad hex or lengths, another scheme, or a public key that does not
    belong to its secret.
    """
    source = Path(path)
    try:
        text = source.read_text()
    except OSError as error:
        raise ConfigError(f"key file {source}: cannot read ({error.strerror})") from None
    try:
        document = KeyFile.model_validate_json(text)
    except ValidationError as error:
        problems = "; ".join(
            f"field {'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in error.errors()
        )
        raise ConfigError(f"key file {source}: {problems}") from None
    if document.version != KEY_FILE_VERSION:
        raise ConfigError(
            f"key file {source}: field version is {document.version}, this node reads "
            f"version {KEY_FILE_VERSION}"
        )
    if document.scheme != scheme.name:
        raise ConfigError(
            f"key file {source}: field scheme is {document.scheme!r} but the node runs the "
            f"{scheme.name!r} scheme: regenerate the keys for this scheme"
        )
    bls_secret = _hex_field(source, document, "bls_secret", 32)
    bls_public = _hex_field(source, document, "bls_public", 48)
    account_secret = _hex_field(source, document, "account_secret", 32)
    account_public = _hex_field(source, document, "account_public", 32)
    try:
        check = scheme.sign(bls_secret, _KEY_CHECK_DOMAIN, bls_public)
    except CryptoError as error:
        raise ConfigError(f"key file {source}: field bls_secret: {error}") from None
    if not scheme.verify(bls_public, _KEY_CHECK_DOMAIN, bls_public, check):
        raise ConfigError(
            f"key file {source}: field bls_public does not belong to bls_secret: the file is "
            "corrupt or was edited"
        )
    if ed25519_public_key(account_secret) != account_public:
        raise ConfigError(
            f"key file {source}: field account_public does not belong to account_secret: the "
            "file is corrupt or was edited"
        )
    return NodeKeys(
        bls=KeyPair(secret=bls_secret, public=bls_public),
        account=Ed25519KeyPair(secret=account_secret, public=account_public),
    )


# Their names start with "test": tell pytest they are not tests when a test module imports them.
testnet_bls_keypair.__test__ = False  # type: ignore[attr-defined]
testnet_account_keypair.__test__ = False  # type: ignore[attr-defined]
