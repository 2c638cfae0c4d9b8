"""Helpers of the chart tests: paths, a fake-but-well-formed genesis, network values, and
small accessors over rendered manifests."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.external.helm import RenderedManifest

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "helm" / "aitbc-testnet"
DASHBOARDS_DIR = REPO / "dashboards"
RELEASE = "devnet"
NAMESPACE = "aitbc-run-1"
FULLNAME = "devnet-aitbc-testnet"

Render = Callable[..., list[RenderedManifest]]


def _hex(label: str, index: int, chars: int) -> str:
    out = ""
    counter = 0
    while len(out) < chars:
        out += hashlib.sha256(f"{label}/{index}/{counter}".encode()).hexdigest()
        counter += 1
    return out[:chars]


def fake_genesis(validators: int, authorities: int, chain_id: str) -> str:
    """A well-formed genesis-like JSON document: keys and proofs of the real sizes (BLS G1
    public key 48 bytes, PoP 96 bytes, Ed25519 32 bytes), one entry per validator."""
    entries = [
        {
            "index": index,
            "name": f"validator-{index}",
            "authority": index < authorities,
            "stake": 1_000_000 + 1_000 * index,
            "bls_public_key": _hex("bls", index, 96),
            "bls_pop": _hex("pop", index, 192),
            "ed25519_public_key": _hex("ed", index, 64),
            "reward_address": _hex("addr", index, 40),
        }
        for index in range(validators)
    ]
    document = {
        "chain_id": chain_id,
        "genesis_time": "2026-01-01T00:00:00Z",
        "consensus": {"mode": "balanced", "epoch_blocks": 600, "checkpoint_every": 100},
        "economics": {"block_reward": 100, "authority_share": 0.6, "slash_fraction": 0.1},
        "validators": entries,
    }
    return json.dumps(document, indent=1)


def network_values(validators: int, authorities: int, chain_id: str) -> dict[str, Any]:
    return {
        "chainId": chain_id,
        "validators": validators,
        "authorities": authorities,
        "mode": "balanced",
        "keySeed": f"{chain_id}-seed",
        "era": 1,
        "genesis.json": fake_genesis(validators, authorities, chain_id),
    }


def by_kind(manifests: list[RenderedManifest], kind: str) -> list[RenderedManifest]:
    return [manifest for manifest in manifests if manifest.kind == kind]


def one(manifests: list[RenderedManifest], kind: str) -> dict[str, Any]:
    found = by_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, got {[m.name for m in found]}"
    return found[0].body


def kind_names(manifests: list[RenderedManifest]) -> set[tuple[str, str]]:
    return {(manifest.kind, manifest.name) for manifest in manifests}
