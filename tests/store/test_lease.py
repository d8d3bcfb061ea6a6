"""One writer per store (finding 5 of the crash-safety issue): the lease.

Seen before: two ``vigil serve`` on one data dir or one database both
started, sent every pending delivery twice, collided on
``resource_events.seq`` and split the truth. Now the second writer is
refused with the holder named; a holder killed with SIGKILL leaves the lease
free for the next, whose epoch is higher; a reader needs no lease and cannot
write.
"""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import text

from vigil.controller.ports import ChangeBatch
from vigil.domain.ids import HostName
from vigil.domain.model import Host, ResourceType
from vigil.store.lease import StoreInUse
from vigil.store.sql import SqlStore, StoreNotReady


async def test_a_second_writer_is_refused_with_the_holder_named(store_url: str) -> None:
    async with SqlStore(store_url) as first:
        assert first.lease is not None
        held = first.lease.holder
        assert held is not None
        assert held.pid == os.getpid()
        second = SqlStore(store_url)
        with pytest.raises(StoreInUse) as refused:
            await second.open()
        message = str(refused.value)
        assert f"pid {os.getpid()}" in message
        assert f"epoch {held.epoch}" in message
    async with SqlStore(store_url) as third:  # given back: the next writer takes it, one epoch on
        assert third.lease is not None
        assert third.lease.holder is not None
        assert third.lease.holder.epoch == held.epoch + 1


HOLD = textwrap.dedent(
    """
    import asyncio, sys
    from vigil.store.sql import SqlStore

    async def main() -> None:
        store = SqlStore(sys.argv[1])
        await store.open()
        print("held", store.lease.holder.epoch, flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


async def test_a_writer_killed_with_sigkill_leaves_the_lease_to_the_next(store_url: str) -> None:
    holder = await asyncio.create_subprocess_exec(sys.executable, "-c", HOLD, store_url, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None
        line = (await asyncio.wait_for(holder.stdout.readline(), 30)).decode()
        assert line.startswith("held"), line
        epoch = int(line.split()[1])
        with pytest.raises(StoreInUse, match=f"pid {holder.pid}"):
            await SqlStore(store_url).open()
        holder.send_signal(signal.SIGKILL)
        await asyncio.wait_for(holder.wait(), 10)
        store = SqlStore(store_url, wait_for_lease=True)
        await asyncio.wait_for(store.open(), 10)  # PostgreSQL notices the dead connection within moments
        try:
            assert store.lease is not None
            assert store.lease.holder is not None
            assert store.lease.holder.epoch == epoch + 1
        finally:
            await store.close()
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()


async def test_a_reader_needs_no_lease_and_cannot_write(store_url: str) -> None:
    with pytest.raises((StoreNotReady, FileNotFoundError)):
        await SqlStore(store_url, read_only=True).open()  # nothing created yet: nothing to read
    async with SqlStore(store_url) as writer:
        batch = ChangeBatch()
        batch.upserts[(ResourceType.HOST, "compute-1")] = Host(HostName("compute-1"))
        await writer.save(batch)
        async with SqlStore(store_url, read_only=True) as reader:
            assert reader.lease is None
            assert [r.ident for r in (await reader.load()).resources] == ["compute-1"]
            other = ChangeBatch()
            other.upserts[(ResourceType.HOST, "compute-2")] = Host(HostName("compute-2"))
            with pytest.raises(Exception):  # noqa: B017, PT011 (the driver's own read-only error)
                await reader.save(other)
            async with reader.engine.connect() as conn:
                assert (await conn.execute(text("SELECT count(*) FROM hosts"))).scalar() == 1
