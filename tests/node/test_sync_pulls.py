"""At most ``MAX_PULLS`` sync calls in flight, whatever the peers: a node back from a
partition hears from every peer at once and must not ask all of them (each answer costs the
peer and this node blocks and batches to encode, send, decode and check)."""

from __future__ import annotations

import asyncio

from aitbc_node.ops.faults import FaultController
from aitbc_node.proto.aitbc.v1 import node_pb2
from aitbc_node.runtime.sync import MAX_PULLS, SyncClient


class HeldLink:
    """A peer whose Sync answer waits until released (an empty answer at height 0)."""

    def __init__(self, release: asyncio.Event, calls: list[int], peer: int) -> None:
        self.release = release
        self.calls = calls
        self.peer = peer

    async def sync(self, requester: int, from_height: int, max_blocks: int) -> object:
        self.calls.append(self.peer)
        await self.release.wait()
        return node_pb2.SyncResponse(peer_committed_height=0)


class NoBatches:
    async def admit_answer(self, peer: int, raws: object, wanted: object) -> bool:
        return False


async def _scenario() -> None:
    release = asyncio.Event()
    calls: list[int] = []
    peers = {peer: HeldLink(release, calls, peer) for peer in range(1, 6)}
    client = SyncClient(
        index=0,
        peers=peers,  # type: ignore[arg-type]
        faults=FaultController(),
        intake=NoBatches(),  # type: ignore[arg-type]
        rejections=None,  # type: ignore[arg-type]
        committed_height=lambda: 0,
        apply_sync=lambda peer, blocks, high_qc: None,
        spawn=lambda coro: None,
    )
    pulls = [asyncio.create_task(client.pull(peer, 1)) for peer in peers]
    for _ in range(100):
        await asyncio.sleep(0)
    assert calls == list(range(1, MAX_PULLS + 1))
    assert all(task.done() for task in pulls[MAX_PULLS:])  # refused at once, not queued
    release.set()
    await asyncio.gather(*pulls)
    await client.pull(5, 1)  # the slots are free again
    assert calls == [*range(1, MAX_PULLS + 1), 5]


def test_at_most_max_pulls_sync_calls_are_in_flight() -> None:
    asyncio.run(_scenario())
