"""Typed errors of the load generator. Each message names the setting or object that failed,
with its value, and what to do next."""

from __future__ import annotations

from aitbc_node.errors import AitbcError, ConfigError


class LoadgenError(AitbcError):
    """Base of every error the load generator raises on purpose."""


class LoadgenConfigError(LoadgenError, ConfigError):
    """An environment variable (or an argument standing for one) is missing or wrong. The
    message starts with the variable's name."""


class ShapeError(LoadgenConfigError):
    """A load shape's parameters are wrong (negative rate, zero duration, unknown field)."""


class AccountError(LoadgenConfigError):
    """The genesis cannot provide the test accounts asked for (too few, no key seed, or keys
    that do not match the genesis addresses)."""


class SubmitError(LoadgenError):
    """A transaction submission failed as a whole (an RPC error, not a per-transaction
    rejection)."""


class CommitStreamError(LoadgenError):
    """A validator's commit stream failed (other than by reaching its deadline)."""
