"""Equivocation: detection (two signed votes or proposals for one (epoch, round) with different
block ids), the pool of evidence a leader includes, and verification by every replica."""

from __future__ import annotations

from aitbc_node.consensus import codec
from aitbc_node.consensus.types import EpochState, Evidence
from aitbc_node.crypto import Domain, SignatureScheme

_DOMAINS = {"vote": Domain.VOTE, "proposal": Domain.PROPOSAL}


def verify_evidence(
    ev: Evidence,
    current: EpochState,
    previous: EpochState | None,
    scheme: SignatureScheme,
) -> str | None:
    """None when ``ev`` proves equivocation, else the reason it does not.

    Evidence is accepted for the current epoch or the one before (keys are checked against the
    validator set of the evidence's own epoch)."""
    domain = _DOMAINS.get(ev.kind)
    if domain is None:
        return "evidence_unknown_kind"
    if ev.epoch == current.epoch:
        state = current
    elif previous is not None and ev.epoch == previous.epoch:
        state = previous
    else:
        return "evidence_wrong_epoch"
    if not 0 <= ev.offender < len(state.validators):
        return "evidence_unknown_offender"
    if ev.block_a == ev.block_b:
        return "evidence_same_block"
    key = state.validators.validators[ev.offender].public_key
    for block_id, signature in ((ev.block_a, ev.signature_a), (ev.block_b, ev.signature_b)):
        message = codec.vote_message(ev.epoch, ev.round, block_id)
        if not scheme.verify(key, domain, message, signature):
            return "evidence_bad_signature"
    return None


class EvidencePool:
    """Signed votes/proposals seen per (kind, epoch, round, signer), and evidence not yet
    committed. Messages reaching the pool were already verified."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, int, int, int], tuple[bytes, bytes]] = {}
        self._pending: dict[tuple[int, int, int], Evidence] = {}
        self._committed: set[tuple[int, int, int]] = set()
        self.found: list[Evidence] = []

    def observe(
        self, kind: str, epoch: int, round_: int, signer: int, block_id: bytes, signature: bytes
    ) -> Evidence | None:
        """Record a signed message; return new evidence when it conflicts with an earlier one."""
        key = (kind, epoch, round_, signer)
        first = self._seen.get(key)
        if first is None:
            self._seen[key] = (block_id, signature)
            return None
        if first[0] == block_id:
            return None
        a, b = sorted([first, (block_id, signature)])
        ev = Evidence(kind, epoch, round_, signer, a[0], a[1], b[0], b[1])
        if ev.key in self._pending or ev.key in self._committed:
            return None
        self._pending[ev.key] = ev
        self.found.append(ev)
        return ev

    def add(self, ev: Evidence) -> None:
        """Evidence seen inside a (verified) proposal: keep it until it commits."""
        if ev.key not in self._committed:
            self._pending.setdefault(ev.key, ev)

    def pending(self, limit: int) -> list[Evidence]:
        return list(self._pending.values())[:limit]

    def mark_committed(self, ev: Evidence) -> None:
        self._committed.add(ev.key)
        self._pending.pop(ev.key, None)

    def is_committed(self, key: tuple[int, int, int]) -> bool:
        return key in self._committed

    def forget_before(self, epoch: int, round_: int) -> None:
        if len(self._seen) < 50_000:
            return
        self._seen = {k: v for k, v in self._seen.items() if (k[1], k[2]) >= (epoch, round_)}
