"""Rebuilding a validator from its data directory: the latest epoch, the ledger snapshot plus
the blocks committed after it, the persisted safety state, and the uncommitted chain stored with
it (or genesis on first start)."""

from __future__ import annotations

import logging

from aitbc_node.batch import VerifiedBatch, decode_batch
from aitbc_node.chain import first_epoch, genesis_block
from aitbc_node.consensus import codec, reputation
from aitbc_node.consensus.actions import Action
from aitbc_node.consensus.core import ConsensusCore
from aitbc_node.consensus.types import SafetyState
from aitbc_node.crypto import SignatureScheme
from aitbc_node.errors import DecodeError, StorageError
from aitbc_node.genesis import Genesis
from aitbc_node.ledger.state import LedgerState
from aitbc_node.replica import COMMITTED_MEMORY, Replica
from aitbc_node.storage import NodeStore

log = logging.getLogger(__name__)


def recover(
    store: NodeStore, genesis: Genesis, scheme: SignatureScheme, index: int, secret: bytes
) -> tuple[ConsensusCore, Replica]:
    """The core and replica of validator ``index`` as its store left them."""
    chain_id = genesis.chain_id
    stored_chain = store.get_meta("chain_id")
    if stored_chain is not None and stored_chain.decode() != chain_id:
        raise StorageError(
            f"{store.path} holds chain {stored_chain.decode()!r}, the genesis is "
            f"{chain_id!r}: use an empty data directory or a new era"
        )
    store.set_meta("chain_id", chain_id.encode())
    ledger = LedgerState.from_genesis(genesis, scheme)
    epochs = store.epoch_states(2)
    if epochs:
        epoch = codec.decode_epoch_state(epochs[0][1])
        previous = codec.decode_epoch_state(epochs[1][1]) if len(epochs) > 1 else None
    else:
        epoch = first_epoch(genesis, ledger.validator_records())
        previous = None
        store.save_epoch(epoch.epoch, epoch.start_height, codec.encode_epoch_state(epoch), b"")
    replica = Replica(ledger, epoch, genesis.consensus.mode)
    root, root_qc = genesis_block(genesis)
    height = store.committed_height()
    snapshot = store.latest_snapshot()
    replay_from = 1
    if snapshot is not None:
        replica.restore_snapshot(snapshot[1], genesis, scheme)
        replay_from = snapshot[0] + 1
    for h in range(replay_from, height + 1):
        stored = store.block(h)
        if stored is None:
            raise StorageError(f"{store.path}: committed block {h} is missing")
        block = codec.decode_block(stored.block)
        for raw in store.batches_at(h):
            replica.add_batch(VerifiedBatch.local(decode_batch(raw)))
        replica.commit(block, codec.decode_qc(stored.qc))
        replica.drain_commits()
    if height > 0:
        stored = store.block(height)
        assert stored is not None
        root = codec.decode_block(stored.block)
        root_qc = codec.decode_qc(stored.qc)
        replica.remember_committed(store.recent_batch_digests(COMMITTED_MEMORY))
    safety = store.load_safety() or SafetyState(epoch=epoch.epoch)
    history = []
    for h in range(max(1, height - reputation.WINDOW), height):
        below = store.block(h)
        if below is not None:
            history.append(codec.decode_block(below.block))
    core = ConsensusCore(
        me=index,
        secret=secret,
        scheme=scheme,
        app=replica,
        epoch=epoch,
        root=root,
        root_qc=root_qc,
        safety=safety,
        previous_epoch=previous,
        history=history,
    )
    log.info(
        "validator %d recovered: height %d, epoch %d, safety %s", index, height, epoch.epoch, safety
    )
    return core, replica


def reload_uncommitted(store: NodeStore, core: ConsensusCore, now_ms: int) -> list[Action]:
    """Feed the blocks and highest QC stored with the safety state back into the core (a
    whole-network restart must not lose a lock only crashed nodes held)."""
    stored = store.load_uncommitted()
    if stored is None:
        return []
    try:
        blocks = codec.decode_blocks(stored[0])
        high_qc = codec.decode_qc(stored[1]) if stored[1] else None
    except DecodeError as exc:
        log.warning("validator %d: stored uncommitted blocks unreadable: %s", core.me, exc)
        return []
    return core.on_sync(now_ms, core.me, blocks, high_qc)
