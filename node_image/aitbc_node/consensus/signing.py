"""What every consensus signature covers, and a validator's signer.

Signed bytes start with the chain tag (a hash of the chain id), so a signature made for one chain
never verifies on another, then bind every field a rule reads:

- votes and proposals: (chain, epoch, round, height, block id), under ``Domain.VOTE`` and
  ``Domain.PROPOSAL``; a QC is the aggregate of votes, so its height is signed too;
- timeouts: (chain, epoch, round, highest-QC round), under ``Domain.TIMEOUT``: the round of the
  QC the sender carries is signed, so a TC can prove the highest QC among its signers;
- RANDAO reveals: (chain, epoch), under ``Domain.RANDAO``.
"""

from __future__ import annotations

import hashlib
import struct
from functools import lru_cache

from aitbc_node.consensus.types import Block, Proposal, QuorumCert, Timeout, Vote
from aitbc_node.crypto import Domain, SignatureScheme

_VOTE = struct.Struct(">QQQ")
_TIMEOUT = struct.Struct(">QQQ")
_RANDAO = struct.Struct(">Q")


@lru_cache(maxsize=16)
def chain_tag(chain_id: str) -> bytes:
    """32 bytes naming the chain in every signed message."""
    return hashlib.sha256(b"AITBC/v1/chain\x00" + chain_id.encode()).digest()


def vote_message(chain_id: str, epoch: int, round_: int, height: int, block_id: bytes) -> bytes:
    """What a vote (and so a QC) signs; proposals sign the same under another domain."""
    return chain_tag(chain_id) + _VOTE.pack(epoch, round_, height) + block_id


def timeout_message(chain_id: str, epoch: int, round_: int, high_qc_round: int) -> bytes:
    return chain_tag(chain_id) + _TIMEOUT.pack(epoch, round_, high_qc_round)


def randao_message(chain_id: str, epoch: int) -> bytes:
    return chain_tag(chain_id) + _RANDAO.pack(epoch)


def qc_round_in(epoch: int, qc: QuorumCert) -> int:
    """``qc``'s round within ``epoch``: a QC of an earlier epoch (the anchor) counts as 0."""
    return qc.round if qc.epoch == epoch else 0


class Signer:
    """Validator ``me``'s consensus key on chain ``chain_id``: every message it signs.

    The honest core and the byzantine behaviours (which re-sign with the node's own key) sign
    through the same object, so both produce exactly the bytes a verifier checks."""

    def __init__(self, me: int, secret: bytes, scheme: SignatureScheme, chain_id: str) -> None:
        self.me = me
        self._secret = secret
        self.scheme = scheme
        self.chain_id = chain_id

    def for_chain(self, chain_id: str) -> Signer:
        """The same key signing for another chain (what a cross-chain replay looks like)."""
        return Signer(self.me, self._secret, self.scheme, chain_id)

    def vote(self, epoch: int, round_: int, height: int, block_id: bytes) -> Vote:
        message = vote_message(self.chain_id, epoch, round_, height, block_id)
        signature = self.scheme.sign(self._secret, Domain.VOTE, message)
        return Vote(epoch, round_, height, block_id, self.me, signature)

    def timeout(self, epoch: int, round_: int, high_qc: QuorumCert) -> Timeout:
        message = timeout_message(self.chain_id, epoch, round_, qc_round_in(epoch, high_qc))
        signature = self.scheme.sign(self._secret, Domain.TIMEOUT, message)
        return Timeout(epoch, round_, high_qc, self.me, signature)

    def proposal(self, block: Block) -> Proposal:
        message = vote_message(self.chain_id, block.epoch, block.round, block.height, block.id)
        return Proposal(block, self.scheme.sign(self._secret, Domain.PROPOSAL, message))

    def randao_reveal(self, epoch: int) -> bytes:
        return self.scheme.sign(self._secret, Domain.RANDAO, randao_message(self.chain_id, epoch))
