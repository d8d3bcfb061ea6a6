"""The committer: batches are written in order, and stopping loses none of them."""

import asyncio

from vigil.bus.memory import InProcessBus
from vigil.controller.changes import Changes, Committer, EventCounter
from vigil.controller.resource_map import ResourceMap
from vigil.domain.ids import HostName
from vigil.domain.model import Host
from vigil.store.sql import SqlStore

from .conftest import NOW


def host_batch(rmap: ResourceMap, counter: EventCounter, name: str) -> Changes:
    changes = Changes(rmap, counter, NOW, reason="test")
    changes.create(Host(HostName(name)))
    return changes


async def test_stop_waits_for_a_batch_whose_write_is_already_under_way(store: SqlStore) -> None:
    bus = InProcessBus()
    subscription = bus.subscribe()
    committer = Committer(store, bus)
    committer.start()
    rmap, counter = ResourceMap(), EventCounter()
    written = committer.submit(host_batch(rmap, counter, "compute-1").batch)
    await asyncio.sleep(0)  # the committer takes the batch and starts writing it
    await committer.stop()
    assert written.done()
    assert not written.cancelled()
    assert written.exception() is None
    assert [r.ident for r in (await store.load()).resources] == ["compute-1"]
    assert [e.resource_id for e in subscription.drain()] == ["compute-1"]


async def test_batches_submitted_together_are_written_and_published_in_order(store: SqlStore) -> None:
    bus = InProcessBus()
    subscription = bus.subscribe()
    committer = Committer(store, bus)
    committer.start()
    rmap, counter = ResourceMap(), EventCounter()
    try:
        futures = [committer.submit(host_batch(rmap, counter, f"compute-{n}").batch) for n in range(1, 6)]
        await asyncio.gather(*futures)
    finally:
        await committer.stop()
    published = subscription.drain()
    assert [e.seq for e in published] == [1, 2, 3, 4, 5]
    assert [e.seq for e in await store.events()] == [1, 2, 3, 4, 5]
    assert sorted(r.ident for r in (await store.load()).resources) == [f"compute-{n}" for n in range(1, 6)]
