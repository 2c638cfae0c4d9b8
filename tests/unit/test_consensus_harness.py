"""A harness that drives real ``ConsensusCore`` instances by hand, and its own sanity tests.

Blocks, QCs and TCs are built and signed here with the validators' real testnet keys (modeled
scheme by default, so signatures are cheap but still checked), and fed to a core through
``on_message``, which verifies them like any peer message. The cores run over the real
``Replica`` and ``LedgerState``: nothing stands in for the code under test.

Other consensus test modules import the helpers from this module.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from aitbc_node.chain import first_epoch, genesis_block
from aitbc_node.consensus.actions import (
    Action,
    Broadcast,
    Committed,
    EpochStarted,
    PersistSafety,
    Send,
)
from aitbc_node.consensus.core import ConsensusCore
from aitbc_node.consensus.leader import select_leader
from aitbc_node.consensus.signing import Signer, qc_round_in
from aitbc_node.consensus.types import (
    BatchRef,
    Block,
    EpochState,
    Evidence,
    Message,
    Proposal,
    QuorumCert,
    SafetyState,
    Timeout,
    TimeoutCert,
    TimeoutGroup,
    Vote,
    bitmap_from,
)
from aitbc_node.crypto import Domain, KeyPair, ModeledScheme, SignatureScheme, testnet_bls_keypair
from aitbc_node.genesis import Genesis, make_testnet_genesis
from aitbc_node.ledger.state import LedgerState
from aitbc_node.replica import Replica

HARNESS_SEED = "consensus-harness"


@dataclass(frozen=True)
class Setup:
    """A testnet for hand-driven cores: genesis, keys, the first epoch and its anchor."""

    genesis: Genesis
    scheme: SignatureScheme
    keys: tuple[KeyPair, ...]
    epoch: EpochState
    root: Block
    root_qc: QuorumCert

    @property
    def size(self) -> int:
        return len(self.keys)


def make_setup(
    validators: int = 4,
    authorities: int | None = None,
    *,
    mode: str = "balanced",
    stake: str | list[int] = "equal",
    epoch_length: int = 100,
    scheme: SignatureScheme | None = None,
    seed: str = HARNESS_SEED,
) -> Setup:
    signer: SignatureScheme = scheme if scheme is not None else ModeledScheme()
    genesis = make_testnet_genesis(
        validators=validators,
        authorities=validators if authorities is None else authorities,
        seed=seed,
        mode=mode,
        stake=stake,
        epoch_length=epoch_length,
        scheme=signer,
    )
    keys = tuple(testnet_bls_keypair(signer, seed, i) for i in range(validators))
    ledger = LedgerState.from_genesis(genesis, signer)
    epoch = first_epoch(genesis, ledger.validator_records())
    root, root_qc = genesis_block(genesis)
    return Setup(genesis, signer, keys, epoch, root, root_qc)


def new_replica(setup: Setup) -> Replica:
    ledger = LedgerState.from_genesis(setup.genesis, setup.scheme)
    return Replica(ledger, setup.epoch, setup.genesis.consensus.mode, state_roots=False)


def new_core(
    setup: Setup,
    me: int,
    safety: SafetyState | None = None,
    *,
    scheme: SignatureScheme | None = None,
    replica: Replica | None = None,
) -> ConsensusCore:
    return ConsensusCore(
        me=me,
        secret=setup.keys[me].secret,
        scheme=setup.scheme if scheme is None else scheme,
        app=new_replica(setup) if replica is None else replica,
        epoch=setup.epoch,
        root=setup.root,
        root_qc=setup.root_qc,
        safety=safety if safety is not None else SafetyState(epoch=setup.epoch.epoch),
    )


def leader_of(es: EpochState, round_: int, after_timeout: bool = False) -> int:
    return select_leader(es.validators, es.mode, es.seed, es.epoch, round_, after_timeout)


# --------------------------------------------------------------------------- signing


def signer(setup: Setup, index: int, es: EpochState | None = None) -> Signer:
    """Validator ``index``'s signer on the setup's chain."""
    chain = (setup.epoch if es is None else es).chain_id
    return Signer(index, setup.keys[index].secret, setup.scheme, chain)


def sign_vote(setup: Setup, es: EpochState, voter: int, round_: int, block: Block) -> Vote:
    return signer(setup, voter, es).vote(es.epoch, round_, block.height, block.id)


def qc_for(
    setup: Setup, es: EpochState, block: Block, signers: Iterable[int] | None = None
) -> QuorumCert:
    """A QC for ``block`` signed by ``signers`` (default: every validator)."""
    chosen = sorted(set(range(setup.size) if signers is None else signers))
    votes = [sign_vote(setup, es, i, block.round, block) for i in chosen]
    return QuorumCert(
        epoch=es.epoch,
        round=block.round,
        height=block.height,
        block_id=block.id,
        signers=bitmap_from(set(chosen), len(es.validators)),
        signature=setup.scheme.aggregate([v.signature for v in votes]),
    )


def sign_timeout(
    setup: Setup, es: EpochState, voter: int, round_: int, high_qc: QuorumCert
) -> Timeout:
    return signer(setup, voter, es).timeout(es.epoch, round_, high_qc)


def tc_for(
    setup: Setup,
    es: EpochState,
    round_: int,
    high_qc: QuorumCert,
    signers: Iterable[int] | None = None,
) -> TimeoutCert:
    """A TC for ``round_`` whose signers all carried ``high_qc`` (one group)."""
    chosen = sorted(set(range(setup.size) if signers is None else signers))
    timeouts = [sign_timeout(setup, es, i, round_, high_qc) for i in chosen]
    group = TimeoutGroup(
        high_qc_round=qc_round_in(es.epoch, high_qc),
        signers=bitmap_from(set(chosen), len(es.validators)),
        signature=setup.scheme.aggregate([t.signature for t in timeouts]),
    )
    return TimeoutCert(es.epoch, round_, (group,), high_qc)


def propose(
    setup: Setup,
    es: EpochState,
    *,
    round_: int,
    parent: Block,
    justify: QuorumCert,
    tc: TimeoutCert | None = None,
    batches: Sequence[BatchRef] = (),
    evidence: Sequence[Evidence] = (),
    proposer: int | None = None,
    timestamp_ms: int | None = None,
) -> Proposal:
    """A proposal signed by ``proposer`` (default: the round's leader) extending ``parent``."""
    after_timeout = tc is not None and tc.round == round_ - 1
    author = leader_of(es, round_, after_timeout) if proposer is None else proposer
    key = signer(setup, author, es)
    block = Block(
        epoch=es.epoch,
        round=round_,
        height=parent.height + 1,
        parent_id=parent.id,
        proposer=author,
        timestamp_ms=parent.timestamp_ms + 1 if timestamp_ms is None else timestamp_ms,
        batches=tuple(batches),
        justify=justify,
        tc=tc,
        evidence=tuple(evidence),
        randao_reveal=key.randao_reveal(es.epoch),
    )
    return key.proposal(block)


@dataclass
class Chain:
    """A hand-built certified chain: ``blocks[k]`` is certified by ``qcs[k]``."""

    setup: Setup
    es: EpochState
    anchor: Block | None = None
    blocks: list[Block] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)
    qcs: list[QuorumCert] = field(default_factory=list)

    def tip(self) -> tuple[Block, QuorumCert]:
        if self.blocks:
            return self.blocks[-1], self.qcs[-1]
        anchor = self.setup.root if self.anchor is None else self.anchor
        if anchor.id != self.es.anchor_id:
            raise ValueError(f"Chain of epoch {self.es.epoch}: pass the epoch's anchor block")
        return anchor, self.es.anchor_qc

    def extend(
        self,
        round_: int,
        *,
        tc: TimeoutCert | None = None,
        batches: Sequence[BatchRef] = (),
        evidence: Sequence[Evidence] = (),
    ) -> Proposal:
        parent, justify = self.tip()
        proposal = propose(
            self.setup,
            self.es,
            round_=round_,
            parent=parent,
            justify=justify,
            tc=tc,
            batches=batches,
            evidence=evidence,
        )
        self.blocks.append(proposal.block)
        self.proposals.append(proposal)
        self.qcs.append(qc_for(self.setup, self.es, proposal.block))
        return proposal


def build_chain(
    setup: Setup,
    rounds: Iterable[int],
    es: EpochState | None = None,
    anchor: Block | None = None,
) -> Chain:
    """Blocks at ``rounds``, each justified by the QC of the one before (no TCs)."""
    chain = Chain(setup, setup.epoch if es is None else es, anchor)
    for round_ in rounds:
        chain.extend(round_)
    return chain


# --------------------------------------------------------------------------- reading actions


def sent(actions: Iterable[Action], kind: type[Message]) -> list[Message]:
    """Messages of type ``kind`` that leave the node (``Send`` and ``Broadcast``)."""
    out: list[Message] = []
    for action in actions:
        if isinstance(action, Send | Broadcast) and isinstance(action.message, kind):
            out.append(action.message)
    return out


def committed_blocks(actions: Iterable[Action]) -> list[Block]:
    return [a.block for a in actions if isinstance(a, Committed)]


def epochs_started(actions: Iterable[Action]) -> list[EpochState]:
    return [a.state for a in actions if isinstance(a, EpochStarted)]


def persisted_states(actions: Iterable[Action]) -> list[SafetyState]:
    return [a.state for a in actions if isinstance(a, PersistSafety)]


class RecordingScheme:
    """The real scheme, recording every signature it makes: who signed what under which domain,
    and counting the checks it runs (``checks``: operation name -> calls).

    Votes a core casts for itself (when it is the next leader) never leave as a ``Send``; this
    sees them too."""

    def __init__(self, inner: SignatureScheme) -> None:
        self.inner = inner
        self.name = inner.name
        self.signed: list[tuple[bytes, bytes, bytes]] = []
        self.checks: Counter[str] = Counter()

    def keypair(self, seed: bytes) -> KeyPair:
        return self.inner.keypair(seed)

    def sign(self, secret: bytes, domain: bytes, message: bytes) -> bytes:
        self.signed.append((secret, domain, message))
        return self.inner.sign(secret, domain, message)

    def verify(self, public: bytes, domain: bytes, message: bytes, signature: bytes) -> bool:
        self.checks["verify"] += 1
        return self.inner.verify(public, domain, message, signature)

    def aggregate(self, signatures: Sequence[bytes]) -> bytes:
        return self.inner.aggregate(signatures)

    def fast_aggregate_verify(
        self, publics: Sequence[bytes], domain: bytes, message: bytes, signature: bytes
    ) -> bool:
        self.checks["fast_aggregate_verify"] += 1
        return self.inner.fast_aggregate_verify(publics, domain, message, signature)

    def pop_prove(self, secret: bytes) -> bytes:
        return self.inner.pop_prove(secret)

    def pop_verify(self, public: bytes, proof: bytes) -> bool:
        self.checks["pop_verify"] += 1
        return self.inner.pop_verify(public, proof)

    def votes_by(self, secret: bytes) -> list[tuple[int, int, bytes]]:
        """(epoch, round, block id) of every vote signed with ``secret``, in order."""
        out = []
        for who, domain, message in self.signed:
            if who == secret and domain == Domain.VOTE:
                body = message[32:]  # after the chain tag: epoch, round, height, block id
                epoch = int.from_bytes(body[:8], "big")
                round_ = int.from_bytes(body[8:16], "big")
                out.append((epoch, round_, body[24:]))
        return out


def check_persist_order(
    actions: Iterable[Action], persisted: SafetyState | None
) -> SafetyState | None:
    """Walk one action list as a driver executes it and fail if a vote, timeout or proposal
    leaves before a ``PersistSafety`` that covers it. Returns the last persisted state."""
    for action in actions:
        if isinstance(action, PersistSafety):
            persisted = action.state
            continue
        if not isinstance(action, Send | Broadcast):
            continue
        msg = action.message
        if isinstance(msg, Vote | Timeout):
            assert persisted is not None and persisted.epoch == msg.epoch, (msg, persisted)
            assert persisted.last_voted_round >= msg.round, (msg, persisted)
        elif isinstance(msg, Proposal):
            assert persisted is not None and persisted.epoch == msg.block.epoch, (msg, persisted)
            assert persisted.last_proposed_round >= msg.block.round, (msg, persisted)
    return persisted


def sender_of(msg: Message) -> int:
    if isinstance(msg, Proposal):
        return msg.block.proposer
    if isinstance(msg, Vote | Timeout):
        return msg.voter
    return 0


class Driven:
    """A core under test with a recording scheme, every action kept and the persistence order
    checked on each call (as a driver would execute the actions)."""

    def __init__(
        self,
        setup: Setup,
        me: int,
        safety: SafetyState | None = None,
        replica: Replica | None = None,
    ) -> None:
        self.setup = setup
        self.me = me
        self.recorder = RecordingScheme(setup.scheme)
        self.core = new_core(setup, me, safety, scheme=self.recorder, replica=replica)
        self.persisted: SafetyState | None = self.core.safety
        self.log: list[Action] = []

    def _take(self, actions: list[Action]) -> list[Action]:
        self.persisted = check_persist_order(actions, self.persisted)
        self.log.extend(actions)
        return actions

    def start(self, now_ms: int = 0) -> list[Action]:
        return self._take(self.core.start(now_ms))

    def tick(self, now_ms: int) -> list[Action]:
        return self._take(self.core.on_tick(now_ms))

    def deliver(self, now_ms: int, msg: Message, sender: int | None = None) -> list[Action]:
        who = sender_of(msg) if sender is None else sender
        return self._take(self.core.on_message(now_ms, who, msg))

    def votes(self) -> list[tuple[int, int, bytes]]:
        """(epoch, round, block id) of every vote this core signed, self-votes included."""
        return self.recorder.votes_by(self.setup.keys[self.me].secret)

    def voted_rounds(self) -> list[int]:
        return [round_ for _, round_, _ in self.votes()]


def bystander(
    setup: Setup,
    rounds: Iterable[int],
    es: EpochState | None = None,
    fallback_rounds: Iterable[int] = (),
) -> int:
    """A validator that leads none of ``rounds`` (so it never proposes in the test), nor is the
    fallback leader (after a TC) of ``fallback_rounds``."""
    state = setup.epoch if es is None else es
    leaders = {leader_of(state, r) for r in rounds}
    leaders |= {leader_of(state, r, after_timeout=True) for r in fallback_rounds}
    for index in range(setup.size):
        if index not in leaders:
            return index
    raise AssertionError(f"every validator leads one of the rounds {sorted(set(rounds))}")


# --------------------------------------------------------------------------- sanity tests


def test_hand_built_chain_is_accepted_and_voted_for() -> None:
    setup = make_setup()
    chain = build_chain(setup, [1, 2])
    observer = next(
        i
        for i in range(setup.size)
        if i not in {leader_of(setup.epoch, 2), leader_of(setup.epoch, 3)}
    )
    core = new_core(setup, observer)
    core.start(0)
    out = core.on_message(10, chain.blocks[0].proposer, chain.proposals[0])
    votes = sent(out, Vote)
    assert [v.round for v in votes] == [1], out
    out = core.on_message(20, chain.blocks[1].proposer, chain.proposals[1])
    votes = sent(out, Vote)
    assert [(v.round, v.block_id) for v in votes] == [(2, chain.blocks[1].id)]
    assert core.round == 2


def test_forged_proposal_is_rejected_not_voted() -> None:
    setup = make_setup()
    good = propose(setup, setup.epoch, round_=1, parent=setup.root, justify=setup.epoch.anchor_qc)
    forged = Proposal(good.block, bytes(len(good.signature)))
    core = new_core(setup, (good.block.proposer + 1) % setup.size)
    core.start(0)
    out = core.on_message(10, good.block.proposer, forged)
    assert not sent(out, Vote)
    assert any(getattr(a, "reason", None) == "bad_proposal_signature" for a in out)
