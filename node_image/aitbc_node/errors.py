"""Typed errors of the node package. Each says which object failed, with which value, and what
to do next; only the CLI turns them into messages and exit codes."""


class AitbcError(Exception):
    """Base of every error the node package raises on purpose."""


class ConfigError(AitbcError):
    """A config, genesis or key file (or a flag) is wrong. The CLI exits 2."""


class DecodeError(AitbcError):
    """Bytes from the network or disk do not decode into the expected object."""


class CryptoError(AitbcError):
    """A key or signature is malformed (not merely invalid: invalid ones verify False)."""


class LedgerError(AitbcError):
    """A transaction cannot be applied to the ledger."""


class StorageError(AitbcError):
    """The node's data directory cannot be used."""


class TransactionError(LedgerError):
    """A transaction's fields are out of range or do not fit its kind (raised when one is built;
    decoding bytes raises ``DecodeError`` instead)."""
