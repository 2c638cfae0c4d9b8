"""Cryptography of the node: hashing and domain tags, the BLS and modeled signature schemes,
the VRF, Ed25519 transaction signatures and testnet keys."""

from aitbc_node.crypto.bls import BlsScheme
from aitbc_node.crypto.ed25519 import (
    Ed25519KeyPair,
    ed25519_keypair,
    ed25519_public_key,
    ed25519_sign,
    ed25519_verify,
)
from aitbc_node.crypto.hashing import Domain, sha256, tagged_hash
from aitbc_node.crypto.keys import (
    NodeKeys,
    load_key_file,
    save_key_file,
    testnet_account_keypair,
    testnet_bls_keypair,
)
from aitbc_node.crypto.modeled import ModeledScheme
from aitbc_node.crypto.registry import SCHEME_NAMES, scheme_by_name
from aitbc_node.crypto.scheme import KeyPair, SignatureScheme, signed_message
from aitbc_node.crypto.vrf import vrf_prove, vrf_verify

__all__ = [
    "SCHEME_NAMES",
    "BlsScheme",
    "Domain",
    "Ed25519KeyPair",
    "KeyPair",
    "ModeledScheme",
    "NodeKeys",
    "SignatureScheme",
    "ed25519_keypair",
    "ed25519_public_key",
    "ed25519_sign",
    "ed25519_verify",
    "load_key_file",
    "save_key_file",
    "scheme_by_name",
    "sha256",
    "signed_message",
    "tagged_hash",
    "testnet_account_keypair",
    "testnet_bls_keypair",
    "vrf_prove",
    "vrf_verify",
]
