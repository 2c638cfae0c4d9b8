"""A local testnet of real ``aitbc-node run`` processes on 127.0.0.1, for the node's integration
tests and its benchmark.

``LocalNetwork`` writes a network with ``make_local_testnet`` (the library behind ``aitbc-node
genesis``), starts one process per validator in its own session, and stops them by pid (SIGKILL
in ``close``: call it from a fixture finalizer). It talks to the nodes the way a client does:
gRPC (``aitbc.v1.Node`` and ``aitbc.v1.Peer`` stubs) and the ops HTTP port (``/status``,
``/metrics``, ``/admin/faults``).

Transaction helpers follow the ledger's ordering rule: nonces are per account and a transaction
whose nonce is not the next one is skipped, so every transaction of one account goes to the SAME
validator, in nonce order (account i -> validator i % N).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from aitbc_node.commands.genesis_cmd import make_local_testnet
from aitbc_node.crypto.ed25519 import Ed25519KeyPair
from aitbc_node.crypto.keys import testnet_account_keypair
from aitbc_node.errors import AitbcError
from aitbc_node.genesis import REWARD_ACCOUNT_OFFSET, Genesis, write_genesis
from aitbc_node.ledger.tx import sign_transfer
from aitbc_node.proto.aitbc.v1 import node_pb2, node_pb2_grpc
from aitbc_node.storage.store import NodeStore
from prometheus_client.parser import text_string_to_metric_families

#: How long a client call waits at most (a partitioned node must never block a test).
RPC_TIMEOUT_S = 10.0
MIN_PATIENCE_S = 180.0
"""The least any wait here allows. A call site's ``timeout`` says how long its condition takes
on a quiet machine; on two busy cores (other test workers, other suites) it can take many times
that. A wait bound only stops a hung test: speed is measured by `make bench`, never asserted."""
HTTP_TIMEOUT_S = 5.0
#: Amount of every test transfer (fees are 0, so transfers never change the accounts' sum).
TRANSFER_AMOUNT = 1


class TestnetError(AitbcError):
    """The local testnet did not do what a test waited for (a node died, a wait timed out)."""

    __test__ = False  # not a pytest test class


def node_command() -> list[str]:
    """The command that runs ``aitbc-node`` from this interpreter's environment."""
    script = Path(sys.executable).with_name("aitbc-node")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "aitbc_node.cli"]


@dataclass(frozen=True)
class NodeInfo:
    """Where validator ``index`` listens and keeps its files."""

    index: int
    grpc: str
    ops: str
    config: Path
    data_dir: Path
    log: Path

    @property
    def db_path(self) -> Path:
        return self.data_dir / "node.db"


@dataclass(frozen=True)
class Account:
    """A test account of the genesis (``testnet_account_keypair(seed, index)``)."""

    index: int
    keys: Ed25519KeyPair

    @property
    def address(self) -> bytes:
        return bytes(self.keys.public)


class LocalNetwork:
    """A network of ``validators`` real node processes; see the module docstring.

    ``mempool`` overrides the ``mempool:`` section per validator index, e.g. ``{2: {"max_txs":
    500}}``; ``byzantine`` sets the ``byzantine:`` key per validator index (a start-up attack,
    e.g. ``{3: {"behaviour": "equivocate"}}``); ``extra_env`` is added to every node's
    environment. ``base_timeout_ms`` sets the
    genesis' round timeout (None: the mode's default, 2.5 s in balanced mode, doubling up to
    8x): a short one keeps a network with a dead validator moving in a test's time.
    """

    def __init__(
        self,
        root: Path,
        *,
        validators: int = 4,
        authorities: int | None = None,
        accounts: int = 64,
        seed: str = "h7-node-tests",
        block_interval_ms: int | None = 200,
        epoch_length: int = 1000,
        base_timeout_ms: int | None = 1000,
        mode: str = "balanced",
        mempool: Mapping[int, Mapping[str, int]] | None = None,
        byzantine: Mapping[int, Mapping[str, object]] | None = None,
        log_level: str = "info",
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root
        self.seed = seed
        written = make_local_testnet(
            root,
            validators=validators,
            authorities=validators if authorities is None else authorities,
            seed=seed,
            accounts=accounts,
            epoch_length=epoch_length,
            block_interval_ms=block_interval_ms,
            log_level=log_level,
            mode=mode,
        )
        genesis = written.genesis
        if base_timeout_ms is not None:
            consensus = genesis.consensus.model_copy(update={"base_timeout_ms": base_timeout_ms})
            genesis = genesis.model_copy(update={"consensus": consensus})
            write_genesis(genesis, written.genesis_path)
        self.genesis: Genesis = genesis
        self.chain_id = written.genesis.chain_id
        self.admin_token = written.admin_token_path.read_text().strip()
        self.block_interval_s = genesis.consensus.effective_block_interval_ms() / 1000
        self.nodes: tuple[NodeInfo, ...] = tuple(
            NodeInfo(n.index, n.grpc, n.ops, n.config, n.data_dir, root / f"node-{n.index}.log")
            for n in written.nodes
        )
        for index, overrides in (mempool or {}).items():
            config = self.nodes[index].config
            fields = ", ".join(f"{key}: {value}" for key, value in overrides.items())
            config.write_text(config.read_text() + f"mempool: {{{fields}}}\n")
        for index, spec in (byzantine or {}).items():
            config = self.nodes[index].config
            config.write_text(config.read_text() + f"byzantine: {json.dumps(dict(spec))}\n")
        self.accounts: tuple[Account, ...] = tuple(
            Account(i, testnet_account_keypair(seed, i)) for i in range(accounts)
        )
        self.reward_addresses: tuple[bytes, ...] = tuple(
            bytes(testnet_account_keypair(seed, REWARD_ACCOUNT_OFFSET + i).public)
            for i in range(validators)
        )
        self._env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._channels: dict[int, grpc.Channel] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.nodes)

    # ------------------------------------------------------------------ processes

    def start(self, index: int) -> int:
        """Start validator ``index`` (appending to its log); returns its pid."""
        running = self._procs.get(index)
        if running is not None and running.poll() is None:
            raise TestnetError(f"validator {index} already runs as pid {running.pid}")
        node = self.nodes[index]
        with node.log.open("ab") as log:
            proc = subprocess.Popen(
                [*node_command(), "run", "--config", str(node.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env,
                cwd=self.root,
                start_new_session=True,
            )
        self._procs[index] = proc
        return proc.pid

    def start_all(self) -> None:
        for node in self.nodes:
            self.start(node.index)

    def pid(self, index: int) -> int:
        return self._procs[index].pid

    def alive(self, index: int) -> bool:
        proc = self._procs.get(index)
        return proc is not None and proc.poll() is None

    def kill(self, index: int) -> None:
        """SIGKILL validator ``index`` by pid and reap it."""
        proc = self._procs[index]
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        self._drop_channel(index)

    def terminate(self, index: int, timeout: float = 15.0) -> tuple[int, float]:
        """SIGTERM validator ``index``; returns (exit code, seconds it took to exit). Kills it
        with SIGKILL and raises ``TestnetError`` when it outlives ``timeout`` (at least
        MIN_PATIENCE_S)."""
        proc = self._procs[index]
        timeout = max(timeout, MIN_PATIENCE_S)
        began = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            raise TestnetError(
                f"validator {index} (pid {proc.pid}) ignored SIGTERM for {timeout} s: killed it"
            ) from None
        self._drop_channel(index)
        return code, time.monotonic() - began

    def close(self) -> None:
        """Kill every node process still running (by pid) and close the client channels."""
        for index, proc in self._procs.items():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
            self._drop_channel(index)

    def log_text(self, index: int) -> str:
        path = self.nodes[index].log
        return path.read_text(errors="replace") if path.exists() else ""

    def require_alive(self, indices: Iterable[int] | None = None) -> None:
        for index in self._indices(indices):
            if not self.alive(index):
                tail = "\n".join(self.log_text(index).splitlines()[-30:])
                raise TestnetError(f"validator {index} is not running; its log ends:\n{tail}")

    # ------------------------------------------------------------------ gRPC

    def channel(self, index: int) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(index)
            if channel is None:
                channel = grpc.insecure_channel(
                    self.nodes[index].grpc,
                    options=[
                        ("grpc.max_receive_message_length", 64 << 20),
                        ("grpc.max_send_message_length", 64 << 20),
                    ],
                )
                self._channels[index] = channel
            return channel

    def _drop_channel(self, index: int) -> None:
        with self._lock:
            channel = self._channels.pop(index, None)
        if channel is not None:
            channel.close()

    def stub(self, index: int) -> node_pb2_grpc.NodeStub:
        return node_pb2_grpc.NodeStub(self.channel(index))

    def peer_stub(self, index: int) -> node_pb2_grpc.PeerStub:
        return node_pb2_grpc.PeerStub(self.channel(index))

    def grpc_status(self, index: int) -> node_pb2.Status:
        status: node_pb2.Status = self.stub(index).GetStatus(
            node_pb2.StatusRequest(), timeout=RPC_TIMEOUT_S
        )
        return status

    def height(self, index: int) -> int:
        return int(self.grpc_status(index).height)

    def heights(self, indices: Iterable[int] | None = None) -> dict[int, int]:
        return {i: self.height(i) for i in self._indices(indices)}

    def committed_hashes(self, index: int, first: int, last: int) -> list[bytes]:
        """Committed block hashes ``first..last`` (in calls of at most 10,000)."""
        hashes: list[bytes] = []
        start = first
        while start <= last:
            reply = self.stub(index).GetCommittedHashes(
                node_pb2.BlockRangeRequest(from_height=start, to_height=last),
                timeout=RPC_TIMEOUT_S,
            )
            if not reply.hashes:
                break
            hashes.extend(reply.hashes)
            start += len(reply.hashes)
        return hashes

    def blocks(self, index: int, first: int, last: int) -> list[node_pb2.CommittedBlock]:
        """Committed blocks ``first..last`` with their transactions (256 per call)."""
        blocks: list[node_pb2.CommittedBlock] = []
        start = first
        while start <= last:
            reply = self.stub(index).GetBlocks(
                node_pb2.BlockRangeRequest(from_height=start, to_height=last),
                timeout=RPC_TIMEOUT_S,
            )
            if not reply.blocks:
                break
            blocks.extend(reply.blocks)
            start = reply.blocks[-1].height + 1
        return blocks

    def account(self, index: int, address: bytes) -> node_pb2.AccountState:
        state: node_pb2.AccountState = self.stub(index).GetAccount(
            node_pb2.AccountRequest(address=address), timeout=RPC_TIMEOUT_S
        )
        return state

    def balances_at_one_height(
        self, index: int, addresses: Sequence[bytes], attempts: int = 50
    ) -> tuple[int, list[int]]:
        """(height, balances) of ``addresses`` on node ``index``, all read at one committed
        height (re-read while a commit lands in between)."""
        for _ in range(attempts):
            states = [self.account(index, address) for address in addresses]
            heights = {state.height for state in states}
            if len(heights) == 1:
                return heights.pop(), [int(state.balance) for state in states]
        raise TestnetError(
            f"validator {index}: could not read {len(addresses)} balances at one height in "
            f"{attempts} attempts (it commits too fast): pause it with a fault first"
        )

    # ------------------------------------------------------------------ ops HTTP

    def _http(
        self, index: int, method: str, path: str, body: Any = None, *, admin: bool = False
    ) -> tuple[int, str]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://{self.nodes[index].ops}{path}", data=data, method=method
        )
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if admin:
            request.add_header("Authorization", f"Bearer {self.admin_token}")
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as reply:
                return int(reply.status), reply.read().decode()
        except urllib.error.HTTPError as error:
            return int(error.code), error.read().decode()

    def status(self, index: int) -> dict[str, Any]:
        code, text = self._http(index, "GET", "/status")
        if code != 200:
            raise TestnetError(f"validator {index}: GET /status answered {code}: {text}")
        document: dict[str, Any] = json.loads(text)
        return document

    def metrics_text(self, index: int) -> str:
        code, text = self._http(index, "GET", "/metrics")
        if code != 200:
            raise TestnetError(f"validator {index}: GET /metrics answered {code}: {text}")
        return text

    def metric_samples(self, index: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of ``/metrics``: (sample name, sorted labels) -> value."""
        samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(self.metrics_text(index)):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def metric(self, index: int, name: str, **labels: str) -> float:
        """One sample's value (0.0 when the node does not expose it)."""
        key = (name, tuple(sorted(labels.items())))
        return self.metric_samples(index).get(key, 0.0)

    def put_fault(self, index: int, spec: Mapping[str, Any]) -> dict[str, Any]:
        code, text = self._http(index, "PUT", "/admin/faults", dict(spec), admin=True)
        if code != 201:
            raise TestnetError(f"validator {index}: PUT /admin/faults {spec} -> {code}: {text}")
        document: dict[str, Any] = json.loads(text)
        return document

    def clear_faults(self, index: int) -> None:
        code, text = self._http(index, "DELETE", "/admin/faults", admin=True)
        if code not in (200, 204):
            raise TestnetError(f"validator {index}: DELETE /admin/faults -> {code}: {text}")

    # ------------------------------------------------------------------ waiting

    def _indices(self, indices: Iterable[int] | None) -> list[int]:
        return [n.index for n in self.nodes] if indices is None else list(indices)

    def wait_until(
        self,
        condition: Callable[[], bool],
        timeout: float,
        what: str,
        *,
        watch: Iterable[int] | None = None,
        poll_s: float = 0.1,
    ) -> float:
        """Poll ``condition`` until true; returns the seconds waited. Raises ``TestnetError``
        naming ``what`` after ``timeout`` (at least MIN_PATIENCE_S) or when a watched node
        dies."""
        watched = self._indices(watch)
        timeout = max(timeout, MIN_PATIENCE_S)
        began = time.monotonic()
        while True:
            self.require_alive(watched)
            try:
                if condition():
                    return time.monotonic() - began
            except (grpc.RpcError, OSError, TestnetError):
                pass
            if time.monotonic() - began > timeout:
                raise TestnetError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(poll_s)

    def wait_ready(self, timeout: float = 60.0, indices: Iterable[int] | None = None) -> None:
        """Every node (of ``indices``) answers /status as ready and has committed a block."""
        chosen = self._indices(indices)

        def ready() -> bool:
            return all(self.status(i).get("ready") and self.height(i) >= 1 for i in chosen)

        self.wait_until(ready, timeout, f"validators {chosen} to be ready", watch=chosen)

    def wait_height(
        self, height: int, timeout: float = 60.0, indices: Iterable[int] | None = None
    ) -> None:
        chosen = self._indices(indices)
        self.wait_until(
            lambda: min(self.heights(chosen).values()) >= height,
            timeout,
            f"validators {chosen} to reach height {height}",
            watch=chosen,
        )

    # ------------------------------------------------------------------ safety checks

    def caught_up(self, index: int, blocks: int) -> bool:
        """Validator ``index`` is within ``blocks`` of the highest other validator."""
        heights = self.heights()
        others = max(h for i, h in heights.items() if i != index)
        return heights[index] >= others - blocks

    def assert_no_equivocation(self, offender: int) -> None:
        """No validator slashed anyone, and none logged equivocation evidence against
        ``offender`` (it never signed twice in a round)."""
        for index in range(len(self)):
            assert self.metric(index, "aitbc_slashing_events_total") == 0, index
            log = self.log_text(index)
            assert re.search(rf"equivocation by validator {offender}\b", log) is None, index

    def assert_same_chain(self) -> None:
        """Every validator holds the same committed hashes up to the lowest height."""
        top = min(self.heights().values())
        reference = self.committed_hashes(0, 1, top)
        assert len(reference) == top
        for index in range(1, len(self)):
            assert self.committed_hashes(index, 1, top) == reference, index

    # ------------------------------------------------------------------ storage

    def read_safety(self, index: int) -> Any:
        """The persisted safety state of validator ``index`` (open the database read-side; safe
        while the node runs, SQLite WAL allows a concurrent reader)."""
        store = NodeStore(self.nodes[index].db_path)
        try:
            return store.load_safety()
        finally:
            store.close()

    def stored_height(self, index: int) -> int:
        """The committed height in validator ``index``'s database (read it while stopped)."""
        store = NodeStore(self.nodes[index].db_path)
        try:
            return store.committed_height()
        finally:
            store.close()

    # ------------------------------------------------------------------ transactions

    def owner(self, account: Account) -> int:
        """The validator every transaction of ``account`` goes to (sticky routing)."""
        return account.index % len(self.nodes)

    def sign_transfers(
        self,
        count: int,
        *,
        accounts: Sequence[Account] | None = None,
        first_nonces: Mapping[int, int] | None = None,
        chain_id: str | None = None,
    ) -> dict[int, list[bytes]]:
        """``count`` signed transfers spread over ``accounts`` (round robin), each account's in
        nonce order from ``first_nonces`` (default 0): account index -> encoded transactions.
        Account i pays TRANSFER_AMOUNT to account i+1 (within ``accounts``)."""
        chosen = list(self.accounts if accounts is None else accounts)
        nonces = {a.index: (first_nonces or {}).get(a.index, 0) for a in chosen}
        signed: dict[int, list[bytes]] = {a.index: [] for a in chosen}
        for n in range(count):
            sender = chosen[n % len(chosen)]
            recipient = chosen[(n + 1) % len(chosen)]
            tx = sign_transfer(
                sender.keys,
                chain_id or self.chain_id,
                recipient.address,
                TRANSFER_AMOUNT,
                nonces[sender.index],
            )
            nonces[sender.index] += 1
            signed[sender.index].append(tx.encode())
        return signed

    def next_nonces(self, index: int, accounts: Sequence[Account] | None = None) -> dict[int, int]:
        chosen = self.accounts if accounts is None else accounts
        return {a.index: int(self.account(index, a.address).nonce) for a in chosen}

    def sticky_batches(
        self, signed: Mapping[int, Sequence[bytes]], batch_size: int
    ) -> dict[int, list[list[bytes]]]:
        """Per validator, batches of at most ``batch_size`` transactions of the accounts it owns,
        interleaved by nonce so that every account's transactions stay in nonce order."""
        per_validator: dict[int, list[bytes]] = {n.index: [] for n in self.nodes}
        by_owner: dict[int, list[Sequence[bytes]]] = {n.index: [] for n in self.nodes}
        for account_index, txs in signed.items():
            by_owner[account_index % len(self.nodes)].append(txs)
        for owner, lists in by_owner.items():
            longest = max((len(txs) for txs in lists), default=0)
            for position in range(longest):
                per_validator[owner].extend(txs[position] for txs in lists if position < len(txs))
        return {
            owner: [txs[i : i + batch_size] for i in range(0, len(txs), batch_size)]
            for owner, txs in per_validator.items()
        }

    def submit_batches(
        self,
        batches: Mapping[int, Sequence[Sequence[bytes]]],
        *,
        retry_exhausted_s: float = 60.0,
    ) -> SubmitOutcome:
        """Send each validator's batches in order (one thread per validator); a batch answered
        with RESOURCE_EXHAUSTED is retried after a short back-off."""
        outcome = SubmitOutcome()
        errors: list[BaseException] = []

        def send(owner: int, owned: Sequence[Sequence[bytes]]) -> None:
            stub = self.stub(owner)
            try:
                for batch in owned:
                    deadline = time.monotonic() + retry_exhausted_s
                    while True:
                        try:
                            reply = stub.SubmitTransactions(
                                node_pb2.SubmitRequest(transactions=list(batch)),
                                timeout=RPC_TIMEOUT_S,
                            )
                            break
                        except grpc.RpcError as error:
                            code = error.code()
                            if code != grpc.StatusCode.RESOURCE_EXHAUSTED:
                                raise
                            if time.monotonic() > deadline:
                                raise
                            outcome.add_exhausted()
                            time.sleep(0.05)
                    outcome.add(reply)
            except BaseException as error:  # reported to the caller below
                errors.append(error)

        threads = [
            threading.Thread(target=send, args=(owner, owned), daemon=True)
            for owner, owned in batches.items()
            if owned
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise TestnetError(f"submitting batches failed: {errors[0]!r}") from errors[0]
        return outcome


#: ``make_network(**LocalNetwork options)`` (the conftest fixtures).
NetworkFactory = Callable[..., LocalNetwork]


class SubmitOutcome:
    """What ``submit_batches`` got back (thread-safe counters)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accepted_ids: list[bytes] = []
        self.rejected: dict[str, int] = {}
        self.exhausted = 0

    def add(self, reply: node_pb2.SubmitResponse) -> None:
        with self._lock:
            for result in reply.results:
                if result.status == node_pb2.TX_STATUS_ACCEPTED:
                    self.accepted_ids.append(bytes(result.tx_id))
                else:
                    self.rejected[result.reason] = self.rejected.get(result.reason, 0) + 1

    def add_exhausted(self) -> None:
        with self._lock:
            self.exhausted += 1


class BackgroundLoad:
    """Signed transfers sent continuously from a thread: every ``interval_s``, one batch of
    ``batch_size`` transactions per validator of ``owners`` from the accounts it owns (sticky
    routing, nonces tracked locally). Failed calls and rejections are counted in ``failures``,
    never raised: a test under faults keeps going. ``accepted_ids`` holds every accepted
    transaction; an account's next transaction follows its last accepted one, so every accepted
    transaction can commit."""

    def __init__(
        self,
        network: LocalNetwork,
        owners: Iterable[int],
        *,
        batch_size: int = 100,
        interval_s: float = 0.1,
    ) -> None:
        self.network = network
        self.owners = sorted(owners)
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.accounts = [a for a in network.accounts if network.owner(a) in self.owners]
        self.nonces = {a.index: 0 for a in self.accounts}
        self.accepted_ids: list[bytes] = []
        self.failures: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="background-load", daemon=True)

    def __enter__(self) -> BackgroundLoad:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        network = self.network
        while not self._stop.is_set():
            for owner in self.owners:
                owned = [a for a in self.accounts if network.owner(a) == owner]
                per_account = max(1, self.batch_size // max(1, len(owned)))
                signed = network.sign_transfers(
                    per_account * len(owned), accounts=owned, first_nonces=self.nonces
                )
                batch = [raw for txs in signed.values() for raw in txs]
                try:
                    reply = network.stub(owner).SubmitTransactions(
                        node_pb2.SubmitRequest(transactions=batch), timeout=RPC_TIMEOUT_S
                    )
                except grpc.RpcError as error:
                    self.failures[str(error.code())] += 1
                    continue
                results = iter(reply.results)
                for account_index, txs in signed.items():
                    # An account's nonce advances past its accepted prefix only: a rejected
                    # transaction (nonce_gap while commits stall) is signed again next time.
                    in_order = True
                    for _ in txs:
                        result = next(results)
                        if result.status == node_pb2.TX_STATUS_ACCEPTED and in_order:
                            self.accepted_ids.append(bytes(result.tx_id))
                            self.nonces[account_index] += 1
                        elif result.status != node_pb2.TX_STATUS_ACCEPTED:
                            in_order = False
                            self.failures[result.reason] += 1
            self._stop.wait(self.interval_s)
