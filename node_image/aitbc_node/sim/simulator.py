"""A deterministic discrete-event simulator that drives N instances of the real consensus core.

Every validator is a real ``ConsensusCore`` + ``Replica`` (ledger, batch store, epochs). The
simulator owns time and the network: per-message latency with jitter (so reordering), drops,
partitions by ids or by a fraction of voting power, crashes and restarts from persisted state
(safety state, committed chain, ledger, stored uncommitted blocks and highest QC), honest clock
skew, and byzantine validators running the runtime's own ``Attacker`` (``sim.attacks``). Each
node is a single CPU: signature work is charged from a cost model, so a 1,000-validator leader
really is a bottleneck. Batches pass the runtime's own check (``batch.verify_batch``) wherever
they arrive. Same config and seed, same run.
"""

from __future__ import annotations

import heapq
import random
import time
from dataclasses import dataclass, field
from typing import Any

from aitbc_node.batch import Batch, VerifiedBatch, verify_batch
from aitbc_node.byzantine import DriverAction, ForgedBatch, RawMessage
from aitbc_node.chain import consensus_params, first_epoch, genesis_block
from aitbc_node.consensus import reputation
from aitbc_node.consensus.actions import (
    Action,
    Broadcast,
    Committed,
    EpochStarted,
    EvidenceFound,
    FetchBatches,
    PersistSafety,
    Rejected,
    RequestSync,
    RoundTimedOut,
    ScheduleTick,
    Send,
)
from aitbc_node.consensus.core import ConsensusCore
from aitbc_node.consensus.reasons import Reason
from aitbc_node.consensus.types import (
    BLOCK_INTERVAL_MS,
    Block,
    EpochState,
    Mode,
    QuorumCert,
    SafetyState,
)
from aitbc_node.consensus.wire import MAX_MESSAGE_BYTES
from aitbc_node.crypto import KeyPair, scheme_by_name, testnet_account_keypair, testnet_bls_keypair
from aitbc_node.errors import DecodeError
from aitbc_node.genesis import REWARD_ACCOUNT_OFFSET, make_testnet_genesis
from aitbc_node.ledger.state import LedgerState
from aitbc_node.ledger.tx import decode_transaction, verify_transaction_signature
from aitbc_node.replica import BatchAdmission, CommitRecord, Replica
from aitbc_node.sim.attacks import SimAttacks, byzantine_specs
from aitbc_node.sim.config import SimConfig
from aitbc_node.sim.costing import CostedScheme
from aitbc_node.sim.partitions import PartitionWindow, partition_report, voting_power_side
from aitbc_node.sim.result import SimResult, percentile

#: Fixed CPU cost (ms) of handling any event, on top of charged signature work.
BASE_EVENT_COST_MS = 0.02
#: Most blocks one sync response carries.
SYNC_CHUNK = 200


@dataclass
class _Node:
    index: int
    keys: KeyPair
    core: ConsensusCore
    replica: Replica
    byzantine: bool = False
    #: This node's clock minus the simulation's (ms): honest skew.
    clock_offset: float = 0.0
    up: bool = True
    busy_until: float = 0.0
    tick_token: int = 0
    tick_at: float | None = None
    persisted: SafetyState | None = None
    #: What the node's store held when it crashed: its uncommitted chain (the blocks above the
    #: committed height up to the highest QC's block, stored with each safety state) and the
    #: highest QC.
    stored_tree: tuple[list[Block], QuorumCert] | None = None
    committed: list[tuple[Block, QuorumCert]] = field(default_factory=list)
    end_proofs: dict[int, tuple[Block, ...]] = field(default_factory=dict)
    known_batches: set[bytes] = field(default_factory=set)
    #: Batches this (byzantine) node forged: served, never executed.
    forged: set[bytes] = field(default_factory=set)
    epochs: list[EpochState] = field(default_factory=list)
    timeouts: int = 0

    def clock(self, at: float) -> int:
        """The node's clock (ms) at simulated time ``at``."""
        return int(at + self.clock_offset)


class Simulator:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        inner = scheme_by_name(config.crypto)
        self.scheme = CostedScheme(inner)
        self.genesis = make_testnet_genesis(
            validators=config.validators,
            authorities=config.authorities,
            seed=f"sim-{config.seed}",
            mode=config.mode,
            stake=config.stake,
            epoch_length=config.epoch_length,
            scheme=inner,
        )
        if config.block_interval_ms is not None:
            consensus = self.genesis.consensus.model_copy(
                update={"block_interval_ms": config.block_interval_ms}
            )
            self.genesis = self.genesis.model_copy(update={"consensus": consensus})
        self.params = consensus_params(self.genesis)
        self.mode = Mode.BALANCED if config.mode == "auto" else Mode.parse(config.mode)
        self.root, self.root_qc = genesis_block(self.genesis)
        self.now = 0.0
        self._seq = 0
        self._queue: list[tuple[float, int, int, str, Any]] = []
        self.messages_sent = 0
        self.messages_dropped = 0
        self.batch_registry: dict[bytes, Batch] = {}
        self.commits_by_height: dict[int, dict[bytes, int]] = {}
        self.commit_times: dict[tuple[int, int], float] = {}
        self.finality_samples: list[float] = []
        self.evidence_found = 0
        self.nodes: list[_Node] = []
        self._first_epoch: EpochState | None = None
        self._commits_since_check = 0
        #: ``verify_batch`` per digest (every node would compute the same).
        self._verified: dict[bytes, VerifiedBatch | None] = {}
        self.unverified_txs_executed = 0
        seed_text = f"sim-{config.seed}"
        self.attacks = SimAttacks(
            byzantine_specs(config, self._choose_equivocators()),
            account_of=lambda i: testnet_account_keypair(seed_text, REWARD_ACCOUNT_OFFSET + i),
            nonce_of=lambda i, address: self.nodes[i].replica.ledger.account(address).nonce,
            seed=config.seed,
        )
        skew = random.Random(config.seed * 7919 + 1)
        for i in range(config.validators):
            keys = testnet_bls_keypair(inner, seed_text, i)
            node = self._new_node(i, keys, i in self.attacks.ids)
            if not node.byzantine and config.clock_skew_ms:
                node.clock_offset = skew.uniform(-config.clock_skew_ms, config.clock_skew_ms)
            self.nodes.append(node)
        self.partitions = [self._partition_window(p) for p in config.partitions]
        self.crash_plan = self._crash_plan()

    # ------------------------------------------------------------------ set-up

    def _choose_equivocators(self) -> frozenset[int]:
        if self.config.equivocator_ids:
            return frozenset(self.config.equivocator_ids)
        authorities = [v.index for v in self.genesis.validators if v.authority]
        chosen = authorities[::-1][: self.config.equivocators]
        if len(chosen) < self.config.equivocators:
            others = [v.index for v in self.genesis.validators if not v.authority][::-1]
            chosen += others[: self.config.equivocators - len(chosen)]
        return frozenset(chosen)

    def _fresh_epoch(self, ledger: LedgerState) -> EpochState:
        if self._first_epoch is None:
            self._first_epoch = first_epoch(self.genesis, ledger.validator_records())
        return self._first_epoch

    def _new_node(self, index: int, keys: KeyPair, byzantine: bool) -> _Node:
        ledger = LedgerState.from_genesis(self.genesis, self.scheme.inner)
        epoch = self._fresh_epoch(ledger)
        replica = Replica(ledger, epoch, self.genesis.consensus.mode, state_roots=False)
        core = ConsensusCore(
            me=index,
            secret=keys.secret,
            scheme=self.scheme,
            app=replica,
            epoch=epoch,
            root=self.root,
            root_qc=self.root_qc,
            safety=SafetyState(epoch=epoch.epoch),
        )
        node = _Node(index=index, keys=keys, core=core, replica=replica, byzantine=byzantine)
        node.epochs.append(epoch)
        node.committed.append((self.root, self.root_qc))
        return node

    def _partition_window(self, spec: Any) -> PartitionWindow:
        if spec.ids:
            side = frozenset(spec.ids)
        else:
            side = voting_power_side(self.genesis, self.mode, spec.fraction, self.rng)
        return PartitionWindow(spec.start_s * 1000, spec.end_s * 1000, side)

    def _crash_plan(self) -> list[tuple[float, float, tuple[int, ...]]]:
        plan = []
        candidates = [n.index for n in self.nodes if not n.byzantine and n.index != 0]
        for spec in self.config.crashes:
            if spec.ids:
                ids = tuple(spec.ids)
            else:
                pool = list(candidates)
                self.rng.shuffle(pool)
                ids = tuple(sorted(pool[: spec.count]))
            plan.append((spec.start_s * 1000, spec.end_s * 1000, ids))
        return plan

    # ------------------------------------------------------------------ event queue

    def _push(self, at: float, node: int, kind: str, data: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, node, kind, data))

    def _partitioned(self, a: int, b: int, at: float) -> bool:
        for p in self.partitions:
            if p.start_s <= at < p.end_s and ((a in p.side) != (b in p.side)):
                return True
        return False

    def _latency(self) -> float:
        jitter = self.config.effective_jitter_ms
        return max(0.1, self.config.latency_ms + self.rng.uniform(-jitter, jitter))

    def _send(self, src: int, dst: int, at: float, kind: str, data: Any) -> None:
        self.messages_sent += 1
        if self.config.drop_rate and self.rng.random() < self.config.drop_rate:
            self.messages_dropped += 1
            return
        if self._partitioned(src, dst, at):
            self.messages_dropped += 1
            return
        arrive = at + self._latency()
        self._push(arrive, dst, kind, (src, data))

    # ------------------------------------------------------------------ running

    def run(self) -> SimResult:
        wall_start = time.perf_counter()
        cfg = self.config
        interval = self.params.block_interval_ms or BLOCK_INTERVAL_MS[self.mode]
        windows = self.attacks.windows()
        last_fault = max(
            [p.end_s for p in self.partitions]
            + [c[1] for c in self.crash_plan]
            + [end for _start, end, _node, _k in windows if end is not None]
            + [0.0]
        )
        limit_ms = (
            cfg.max_simulated_s * 1000
            if cfg.max_simulated_s is not None
            else last_fault + cfg.blocks * interval * 6 + 120_000
        )
        for start, end, index, position in windows:
            self._push(start, index, "byzantine", (position, True))
            if end is not None:
                self._push(end, index, "byzantine", (position, False))
        for node in self.nodes:
            self._apply(node, node.core.start(node.clock(0.0)), 0.0)
        self._schedule_load(interval)
        for start, end, ids in self.crash_plan:
            for i in ids:
                self._push(start, i, "crash", None)
                self._push(end, i, "restart", None)
        while self._queue:
            at, _, index, kind, data = heapq.heappop(self._queue)
            if at > limit_ms:
                self.now = limit_ms
                break
            self.now = at
            if kind == "load":
                self._generate_batch(index, interval)
                continue
            node = self.nodes[index]
            if kind == "crash":
                self._crash(node)
                continue
            if kind == "restart":
                self._restart(node, at)
                continue
            if kind == "byzantine":
                self.attacks.switch(index, data[0], data[1])
                continue
            if not node.up:
                continue
            if kind == "tick" and data != node.tick_token:
                continue
            if node.busy_until > at:
                self._push(node.busy_until, index, kind, data)
                continue
            self.scheme.take_charge()
            actions = self._handle(node, kind, data, at)
            cost = self.scheme.take_charge() * 1000 + BASE_EVENT_COST_MS
            node.busy_until = at + cost
            self._apply(node, actions, at + cost)
            if self._commits_since_check and self._done(at, last_fault):
                break
        return self._result(time.perf_counter() - wall_start)

    def _done(self, at: float, last_fault: float) -> bool:
        """Past the last fault, every live honest node has ``blocks`` blocks and at least
        ``progress_after_faults`` more than the highest height any had when it ended."""
        if at < last_fault:
            return False
        self._commits_since_check = 0
        target = self.config.blocks
        if self.config.progress_after_faults:
            reached = max(
                (h for (_i, h), t in self.commit_times.items() if t <= last_fault), default=0
            )
            target = max(target, reached + self.config.progress_after_faults)
        return self._honest_min_height() >= target

    def _honest_live(self) -> list[_Node]:
        return [n for n in self.nodes if not n.byzantine and n.up]

    def _honest_min_height(self) -> int:
        live = self._honest_live()
        return min(n.core.committed_height for n in live) if live else 0

    def _schedule_load(self, interval: float) -> None:
        if self.config.load_tps <= 0:
            return
        producers = [n.index for n in self.nodes if not n.byzantine][: self.config.load_nodes]
        for k, index in enumerate(producers):
            self._push(interval * k / max(1, len(producers)), index, "load", len(producers))

    def _generate_batch(self, index: int, interval: float) -> None:
        node = self.nodes[index]
        producers = max(1, min(self.config.load_nodes, len(self.nodes)))
        count = max(1, round(self.config.load_tps * interval / 1000 / producers))
        self._push(self.now + interval, index, "load", None)
        if not node.up:
            return
        self._seq += 1
        batch = Batch(author=index, sequence=self._seq, transactions=(), synthetic_count=count)
        self.batch_registry[batch.digest] = batch
        self._admit_batches(node, index, [batch])
        for other in self.nodes:
            if other.index != index:
                self._send(index, other.index, self.now, "deliver_batch", [batch])
        self._apply(node, node.core.on_batches_available(node.clock(self.now)), self.now)

    def _handle(self, node: _Node, kind: str, data: Any, at: float) -> list[Action]:
        now = node.clock(at)
        core = node.core
        if kind == "tick":
            node.tick_at = None
            return core.on_tick(now)
        sender, payload = data
        if kind == "deliver_msg":
            return core.on_message(now, sender, payload)
        if kind == "deliver_raw":
            if len(payload) > MAX_MESSAGE_BYTES:
                self._rejected(node, sender, Reason.OVERSIZED_MESSAGE)
            return []
        if kind in ("deliver_batch", "fetch_response"):
            self._admit_batches(node, sender, payload)
            return core.on_batches_available(now)
        if kind == "fetch_request":
            served = node.known_batches | node.forged
            have = [self.batch_registry[d] for d in payload if d in served]
            if have:
                self._send(node.index, sender, at, "fetch_response", have)
            return []
        if kind == "sync_request":
            self._answer_sync(node, sender, payload, at)
            return []
        if kind == "sync_response":
            blocks, batches, high_qc = payload
            referenced = {ref.digest for block in blocks for ref in block.batches}
            self._admit_batches(node, sender, [b for b in batches if b.digest in referenced])
            return core.on_sync(now, sender, blocks, high_qc)
        raise AssertionError(f"unknown simulator event {kind!r}")

    def _admit_batches(self, node: _Node, sender: int, batches: list[Batch]) -> None:
        """The runtime's rule: a batch enters the replica only verified (synthetic load is the
        simulator's own and allowed), within its author's quota."""
        for batch in batches:
            digest = batch.digest
            if digest in node.known_batches:
                continue
            if digest not in self._verified:
                self._verified[digest] = verify_batch(batch, allow_synthetic=True)
            verified = self._verified[digest]
            if verified is None:
                self._rejected(node, sender, Reason.INVALID_BATCH)
                continue
            admission = node.replica.add_batch(verified)
            if admission is BatchAdmission.AUTHOR_FULL:
                self._rejected(node, sender, Reason.BATCH_FLOOD)
            else:
                node.known_batches.add(digest)

    def _rejected(self, node: _Node, sender: int, reason: str, n: int = 1) -> None:
        if not node.byzantine:
            self.attacks.rejected_from(sender, reason, n)

    def _answer_sync(self, node: _Node, requester: int, from_height: int, at: float) -> None:
        blocks: list[Block] = []
        for block, _qc in node.committed[from_height : from_height + SYNC_CHUNK]:
            blocks.append(block)
            blocks.extend(node.end_proofs.get(block.height, ()))
        high_qc: QuorumCert | None = None
        if from_height + SYNC_CHUNK >= len(node.committed):
            chain, high_qc = node.core.uncommitted_chain()
            blocks.extend(chain)
        batches = [
            self.batch_registry[ref.digest]
            for block in blocks
            for ref in block.batches
            if ref.digest in self.batch_registry
        ]
        batches.extend(self.batch_registry[d] for d in sorted(node.forged))
        self._send(node.index, requester, at, "sync_response", (blocks, batches, high_qc))

    def _apply(self, node: _Node, actions: list[Action], at: float) -> None:
        executed: list[DriverAction] = self.attacks.transform(
            node.index, node.core, actions, node.clock(at)
        )
        for action in executed:
            if isinstance(action, Broadcast | ForgedBatch | RawMessage):
                kind, data = self._outgoing(node, action)
                for other in self.nodes:
                    if other.index != node.index:
                        self._send(node.index, other.index, at, kind, data)
            elif isinstance(action, Send):
                self._send(node.index, action.to, at, "deliver_msg", action.message)
            elif isinstance(action, PersistSafety):
                node.persisted = action.state
            elif isinstance(action, Committed):
                self._record_commit(node, action, at)
            elif isinstance(action, ScheduleTick):
                if node.tick_at != action.at_ms:
                    node.tick_token += 1
                    node.tick_at = action.at_ms
                    due = float(action.at_ms) - node.clock_offset
                    self._push(max(due, at), node.index, "tick", node.tick_token)
            elif isinstance(action, FetchBatches):
                self._send(node.index, action.peer, at, "fetch_request", action.digests)
            elif isinstance(action, RequestSync):
                self._send(node.index, action.peer, at, "sync_request", action.from_height)
            elif isinstance(action, EpochStarted):
                node.epochs.append(action.state)
                end_height = action.state.start_height - 1
                node.end_proofs[end_height] = action.end_proof
            elif isinstance(action, RoundTimedOut):
                node.timeouts += 1
            elif isinstance(action, EvidenceFound):
                self.evidence_found += 1
            elif isinstance(action, Rejected):
                self._rejected(node, action.sender, action.reason)
        for record in node.replica.drain_commits():
            if not node.byzantine:
                self._check_execution(node, record)

    def _outgoing(
        self, node: _Node, action: Broadcast | ForgedBatch | RawMessage
    ) -> tuple[str, Any]:
        if isinstance(action, Broadcast):
            return "deliver_msg", action.message
        if isinstance(action, RawMessage):
            return "deliver_raw", action.payload
        self.batch_registry[action.batch.digest] = action.batch
        node.forged.add(action.batch.digest)
        return "deliver_batch", [action.batch]

    def _check_execution(self, node: _Node, record: CommitRecord) -> None:
        """What an honest ledger executed: every transaction must carry a valid signature, and
        registrations refused for their size count as the flood they are."""
        for raw in record.transactions:
            try:
                valid = verify_transaction_signature(decode_transaction(raw))
            except DecodeError:
                valid = False
            if not valid:
                self.unverified_txs_executed += 1
        for author, refused in record.refused_registrations().items():
            self._rejected(node, author, Reason.REGISTRATION_REFUSED, refused)

    def _record_commit(self, node: _Node, action: Committed, at: float) -> None:
        block = action.block
        node.committed.append((block, action.certifying_qc))
        self._commits_since_check += 1
        if node.byzantine:
            return
        ids = self.commits_by_height.setdefault(block.height, {})
        ids[block.id] = ids.get(block.id, 0) + 1
        self.commit_times[(node.index, block.height)] = at
        self.finality_samples.append(at - block.timestamp_ms)

    def _crash(self, node: _Node) -> None:
        node.stored_tree = node.core.uncommitted_chain()
        node.up = False
        node.tick_at = None
        node.tick_token += 1

    def _restart(self, node: _Node, at: float) -> None:
        """Come back from what a real node has on disk: committed chain, ledger, epoch state, the
        persisted safety state and the stored uncommitted chain with the highest QC. Everything
        else in memory (votes, timeouts, batches) is lost."""
        old = node.core
        epoch = old.epoch_state
        safety = node.persisted if node.persisted is not None else SafetyState(epoch=epoch.epoch)
        replica = node.replica.restarted(epoch)
        root, root_qc = node.committed[-1]
        core = ConsensusCore(
            me=node.index,
            secret=node.keys.secret,
            scheme=self.scheme,
            app=replica,
            epoch=epoch,
            root=root,
            root_qc=root_qc,
            safety=safety,
            previous_epoch=old.previous_epoch,
            history=[block for block, _qc in node.committed[-reputation.WINDOW - 1 : -1]],
        )
        node.core = core
        node.replica = replica
        node.known_batches = set()
        node.up = True
        node.busy_until = at
        if node.stored_tree is not None:
            # Reload the stored chain and QC. Without them a lock above the committed height (or
            # a QC whose block only crashed nodes held) could never be extended again once every
            # node that had them crashed: a whole-network restart would halt the chain.
            blocks, high_qc = node.stored_tree
            self._apply(node, core.on_sync(node.clock(at), node.index, blocks, high_qc), at)
        self._apply(node, core.start(node.clock(at)), at)
        # Ask everyone ahead of us for the blocks we missed.
        for peer in self.rng.sample(range(len(self.nodes)), min(3, len(self.nodes))):
            if peer != node.index:
                self._send(node.index, peer, at, "sync_request", core.committed_height + 1)

    # ------------------------------------------------------------------ results

    def _committed_block(self, node: int, height: int) -> Block | None:
        committed = self.nodes[node].committed
        return committed[height][0] if height < len(committed) else None

    def _result(self, wall: float) -> SimResult:
        honest = [n for n in self.nodes if not n.byzantine]
        violations = sum(1 for ids in self.commits_by_height.values() if len(ids) > 1)
        slashed = (
            sorted(r.index for r in honest[0].replica.ledger.validator_records() if r.slashed)
            if honest
            else []
        )
        live = [n for n in honest if n.up]
        committed_height = min((n.core.committed_height for n in live), default=0)
        max_height = max((n.core.committed_height for n in honest), default=0)
        roots = {
            n.replica.ledger.state_root() for n in live if n.core.committed_height == max_height
        }
        return SimResult(
            config=self.config,
            committed_height=committed_height,
            max_committed_height=max_height,
            safety_violations=violations,
            slashed_validators=slashed,
            simulated_seconds=self.now / 1000,
            wall_seconds=wall,
            messages_sent=self.messages_sent,
            messages_dropped=self.messages_dropped,
            mode=(live[0].core.mode if live else self.mode).label,
            final_epoch=max((n.core.epoch for n in honest), default=1),
            finality_ms={
                "p50": round(percentile(self.finality_samples, 0.5), 1),
                "p90": round(percentile(self.finality_samples, 0.9), 1),
                "p99": round(percentile(self.finality_samples, 0.99), 1),
            },
            timeouts=sum(n.timeouts for n in honest),
            evidence_found=self.evidence_found,
            partitions=[
                partition_report(p, self.commit_times, self._committed_block)
                for p in self.partitions
            ],
            crashes=[
                {"start_s": s / 1000, "end_s": e / 1000, "ids": list(ids)}
                for s, e, ids in self.crash_plan
            ],
            equivocators=sorted(
                {
                    i
                    for spec in self.attacks.specs
                    if spec.behaviour == "equivocate"
                    for i in spec.ids
                }
            ),
            state_roots_agree=len(roots) <= 1,
            charged_cpu_seconds=self.scheme.total_charged,
            byzantine={
                **self.attacks.report(),
                "slash_events": [list(event) for event in honest[0].replica.ledger.slash_events()]
                if honest
                else [],
                "unverified_txs_executed": self.unverified_txs_executed,
            },
        )


def run_simulation(config: SimConfig) -> SimResult:
    return Simulator(config).run()
