"""Proposer selection: everyone computes round r's leader from the epoch seed alone.

The seed comes from a RANDAO-like mix of BLS reveals (unique signatures), never from block hashes
or QC aggregates, which a leader could grind. Per mode:
FAST: authorities only, uniformly. BALANCED: a hash draw picks the authority class 70 % of the time
(uniform among authorities) and the staker class 30 % (stake-weighted among non-authority stakers;
an authority when there are none). SECURE: stake-weighted over all validators.
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
) -> int:
    """Round ``round_``'s primary proposer, or with ``after_timeout`` its fallback: a second draw
    from the same distribution that differs from the primary whenever another candidate
    exists (a few redraws, then the next authority in order)."""
    primary = _select(validators, mode, seed, epoch, round_, b"")
    if not after_timeout:
        return primary
    for attempt in range(1, 9):
        candidate = _select(validators, mode, seed, epoch, round_, b"fallback%d" % attempt)
        if candidate != primary:
            return candidate
    authorities = validators.authorities
    return (
        authorities[(authorities.index(primary) + 1) % len(authorities)]
        if (primary in authorities)
        else authorities[0]
    )


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
