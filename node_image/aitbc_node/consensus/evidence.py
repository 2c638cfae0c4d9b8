"""Equivocation: detection (two signed votes or proposals for one (epoch, round) with different
block ids) and the pool of evidence a leader includes. Verification is ``Verifier.evidence``.

An offender is punished once per epoch (``Evidence.key`` is (offender, epoch)), so the pool keeps
one piece of evidence per key: later offences of the same epoch add nothing.
"""

from __future__ import annotations

from aitbc_node.consensus.types import Evidence

#: Signed messages remembered before old rounds are forgotten.
_SEEN_LIMIT = 50_000


class EvidencePool:
    """Signed votes/proposals seen per (kind, epoch, round, signer), and evidence not yet
    committed. Proposals reaching the pool were verified; a vote's signature may not be yet
    (votes are checked aggregate first), so the core checks both votes alone before a second
    vote of a signer for another block reaches ``observe`` (``ConsensusCore._on_vote``)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, int, int, int], tuple[int, bytes, bytes]] = {}
        self._pending: dict[tuple[int, int], Evidence] = {}
        self._committed: set[tuple[int, int]] = set()
        self.found: list[Evidence] = []

    def observe(
        self,
        kind: str,
        epoch: int,
        round_: int,
        signer: int,
        height: int,
        block_id: bytes,
        signature: bytes,
    ) -> Evidence | None:
        """Record a signed message; return new evidence when it conflicts with an earlier one
        and its signer has none pending or committed for the epoch."""
        key = (kind, epoch, round_, signer)
        first = self._seen.get(key)
        if first is None:
            self._seen[key] = (height, block_id, signature)
            return None
        if first[1] == block_id or (signer, epoch) in self._pending:
            return None
        if (signer, epoch) in self._committed:
            return None
        a, b = sorted([first, (height, block_id, signature)], key=lambda item: item[1])
        ev = Evidence(kind, epoch, round_, signer, a[0], a[1], a[2], b[0], b[1], b[2])
        self._pending[ev.key] = ev
        self.found.append(ev)
        return ev

    def first_seen(
        self, kind: str, epoch: int, round_: int, signer: int
    ) -> tuple[int, bytes, bytes] | None:
        """(height, block id, signature) of the first ``kind`` message seen from ``signer`` in
        (``epoch``, ``round_``), or None."""
        return self._seen.get((kind, epoch, round_, signer))

    def forget_seen(self, kind: str, epoch: int, round_: int, signer: int) -> None:
        """Forget a recorded message that turned out not to be ``signer``'s (a forgery)."""
        self._seen.pop((kind, epoch, round_, signer), None)

    def has_evidence(self, signer: int, epoch: int) -> bool:
        """Evidence against ``signer`` for ``epoch`` is pending or committed."""
        return (signer, epoch) in self._pending or (signer, epoch) in self._committed

    def add(self, ev: Evidence) -> None:
        """Evidence seen inside a (verified) proposal: keep it until it commits."""
        if ev.key not in self._committed:
            self._pending.setdefault(ev.key, ev)

    def pending(self, limit: int, epoch: int) -> list[Evidence]:
        """Up to ``limit`` uncommitted pieces of evidence a block of ``epoch`` may carry (of
        that epoch or the one before); older ones can never commit and are dropped."""
        stale = [key for key in self._pending if key[1] + 1 < epoch]
        for key in stale:
            del self._pending[key]
        return list(self._pending.values())[:limit]

    def mark_committed(self, ev: Evidence) -> None:
        self._committed.add(ev.key)
        self._pending.pop(ev.key, None)

    def is_committed(self, key: tuple[int, int]) -> bool:
        return key in self._committed

    def forget_before(self, epoch: int, round_: int) -> None:
        if len(self._seen) < _SEEN_LIMIT:
            return
        self._seen = {k: v for k, v in self._seen.items() if (k[1], k[2]) >= (epoch, round_)}
