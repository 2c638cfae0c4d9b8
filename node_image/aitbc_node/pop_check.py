"""The genesis proofs of possession, checked once per genesis and host, at node start.

A validator's BLS key without a valid PoP opens rogue-key attacks on the aggregated
signatures, so a node refuses to start on a genesis with one. Checking them costs about 1.6 ms
each (``Genesis.verify_pops``: 160 ms for 100 validators), and 100 validators on one host would
repeat the same 10,000 checks at every start. PoPs are not aggregated into one check: without
random coefficients a sum of proofs hides a pair that cancels out, which is the attack itself.
Instead the result is cached by genesis hash and scheme, in a marker file beside the genesis
(where every local validator finds it; a read-only mount such as a Kubernetes ConfigMap falls
back to the node's data directory). The first node to start takes a file lock, checks, and
writes the marker; the others wait on the lock and read it. A marker proves nothing an attacker
could not do better: whoever can write beside the genesis file can rewrite the genesis.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence
from pathlib import Path

from aitbc_node.crypto import SignatureScheme
from aitbc_node.genesis import Genesis

LOCK_FILE = ".aitbc-pops.lock"


def marker_name(genesis: Genesis, scheme: SignatureScheme) -> str:
    return f".aitbc-pops-{scheme.name}-{genesis.hash().hex()[:32]}.ok"


def check_genesis_pops(genesis: Genesis, scheme: SignatureScheme, folders: Sequence[Path]) -> bool:
    """Verify every genesis PoP unless a marker in one of ``folders`` (tried in order; the
    first writable one keeps the marker) says this genesis passed under ``scheme``. True when
    the proofs were checked now, False when a marker said so. Raises ``ConfigError`` naming the
    validator whose PoP fails (``Genesis.verify_pops``); no marker is written then."""
    name = marker_name(genesis, scheme)
    for folder in folders:
        if (folder / name).exists():
            return False
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            lock = open(folder / LOCK_FILE, "a")  # noqa: SIM115 (held across the check)
        except OSError:
            continue  # read-only: the next folder
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (folder / name).exists():
                return False  # another node checked while this one waited
            genesis.verify_pops(scheme)
            try:
                _write_marker(folder / name)
            except OSError:
                continue
            return True
    genesis.verify_pops(scheme)
    return True


def _write_marker(path: Path) -> None:
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text("verified\n", encoding="ascii")
    partial.replace(path)
