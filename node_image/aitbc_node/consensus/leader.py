"""Proposer selection: everyone computes round r's leader from the epoch seed alone.

The seed comes from a RANDAO-like mix of BLS reveals (unique signatures), never from block hashes
or QC aggregates, which a leader could grind. Per mode:
FAST: authorities only, uniformly. BALANCED: a hash draw picks the authority class 70 % of the time
(uniform among authorities) and the staker class 30 % (stake-weighted among non-authority stakers;
an authority when there are none). SECURE: stake-weighted over all validators.

Leader reputation (``reputation``) may exclude validators absent from the recent certified
chain: a draw that lands on one is drawn again from the same distribution (so the others keep
their proportions), and after a few redraws the next eligible authority in order leads.
"""

from __future__ import annotations

import hashlib
import struct

from aitbc_node.consensus.types import Mode, ValidatorSet

AUTHORITY_SHARE_PERCENT = 70


def _draw(seed: bytes, epoch: int, round_: int, purpose: bytes) -> int:
    digest = hashlib.sha256(seed + struct.pack(">QQ", epoch, round_) + purpose).digest()
    return int.from_bytes(digest, "big")


def select_leader(
    validators: ValidatorSet,
    mode: Mode,
    seed: bytes,
    epoch: int,
    round_: int,
    after_timeout: bool = False,
    excluded: frozenset[int] = frozenset(),
) -> int:
    """Round ``round_``'s primary proposer, or with ``after_timeout`` its fallback: a second draw
    from the same distribution that differs from the primary whenever another candidate
    exists (a few redraws, then the next authority in order). Validators in ``excluded`` are
    skipped the same way (callers never exclude every authority)."""
    primary = _eligible(validators, mode, seed, epoch, round_, b"", excluded)
    if not after_timeout:
        return primary
    return _eligible(validators, mode, seed, epoch, round_, b"fallback", excluded | {primary})


def _eligible(
    validators: ValidatorSet,
    mode: Mode,
    seed: bytes,
    epoch: int,
    round_: int,
    salt: bytes,
    excluded: frozenset[int],
) -> int:
    """The first of a few draws not in ``excluded`` (the unsalted draw first, when ``salt`` is
    empty), else the next authority in order that is not (after the first draw, or after the
    excluded primary for a fallback)."""
    first = _select(validators, mode, seed, epoch, round_, b"")
    salts = [salt + b"%d" % attempt for attempt in range(1, 9)]
    if not salt:
        salts = [b"", *(b"reputation" + s for s in salts)]
    for drawn in salts:
        candidate = first if not drawn else _select(validators, mode, seed, epoch, round_, drawn)
        if candidate not in excluded:
            return candidate
    authorities = validators.authorities
    start = authorities.index(first) + 1 if first in authorities else 0
    for step in range(len(authorities)):
        candidate = authorities[(start + step) % len(authorities)]
        if candidate not in excluded:
            return candidate
    return first


def _select(
    validators: ValidatorSet, mode: Mode, seed: bytes, epoch: int, round_: int, salt: bytes
) -> int:
    if salt:
        seed = hashlib.sha256(seed + salt).digest()
    authorities = validators.authorities
    if mode is Mode.FAST:
        return authorities[_draw(seed, epoch, round_, b"fast") % len(authorities)]
    if mode is Mode.BALANCED:
        if _draw(seed, epoch, round_, b"class") % 100 < AUTHORITY_SHARE_PERCENT:
            return authorities[_draw(seed, epoch, round_, b"authority") % len(authorities)]
        picked = validators.stake_weighted_pick(
            _draw(seed, epoch, round_, b"staker"), stakers_only=True
        )
        if picked is None:
            return authorities[_draw(seed, epoch, round_, b"authority") % len(authorities)]
        return picked
    picked = validators.stake_weighted_pick(_draw(seed, epoch, round_, b"stake"), False)
    if picked is None:
        return authorities[_draw(seed, epoch, round_, b"authority") % len(authorities)]
    return picked


def next_seed(seed: bytes, reveal: bytes) -> bytes:
    """Mix one committed RANDAO reveal into the running seed."""
    return hashlib.sha256(seed + hashlib.sha256(reveal).digest()).digest()
