"""The leader's lease on the real PostgreSQL (vigil.store.leader): one leader, a standby that takes over only once
the lease expired, and the fencing token that refuses a deposed leader's writes."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from support import fresh_postgres_database

from vigil.controller.ports import ChangeBatch
from vigil.domain.faults import EventId, EventStatus, FaultEvent
from vigil.domain.records import RecordKind
from vigil.settings import SettingsError, load_settings
from vigil.store.leader import LeaseLost, LeaseTimings
from vigil.store.sql import SqlStore, async_url

pytestmark = pytest.mark.postgres

QUICK = LeaseTimings(lease_s=0.6, renew_s=0.1, poll_s=0.05)


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with fresh_postgres_database() as fresh:
        yield fresh


def report(n: int) -> ChangeBatch:
    now = datetime.now(UTC)
    event = FaultEvent(EventId(f"ev-{n}"), now, "compute.host.down", "compute-1", EventStatus.DOWN, "m", str(n), now)
    return ChangeBatch(upserts={(RecordKind.FAULT_EVENT, event.id): event})


async def stored(url: str) -> list[str]:
    async with SqlStore(url, read_only=True) as reader:
        return sorted(e.id for e in await reader.fault_events())


async def test_a_standby_waits_while_the_leader_renews_and_takes_over_once_it_stops_renewing(url: str) -> None:
    first = SqlStore(url, leader=QUICK)
    await first.open()
    keeping = asyncio.create_task(first.leader.keep(lambda why: None))  # type: ignore[union-attr]
    second = SqlStore(url, leader=QUICK)
    opening = asyncio.create_task(second.open())
    await asyncio.sleep(QUICK.lease_s * 3)
    waited = not opening.done()
    keeping.cancel()  # the leader stops renewing (as if frozen): its lease runs out
    stopped = time.monotonic()
    await opening
    took = time.monotonic() - stopped
    epochs = (first.leader.epoch, second.leader.epoch)  # type: ignore[union-attr]
    await second.close()
    await first.close()

    assert waited, "a standby never takes a lease the leader keeps renewing"
    assert epochs == (1, 2)
    assert took < QUICK.lease_s + 1.0


async def test_a_deposed_leaders_write_is_refused_by_the_fencing_token_and_nothing_of_it_is_written(url: str) -> None:
    deposed = SqlStore(url, leader=QUICK)
    await deposed.open()
    lost: list[str] = []
    keeping = asyncio.create_task(deposed.leader.keep(lost.append))  # type: ignore[union-attr]
    await deposed.save(report(1))
    keeping.cancel()
    # Its clock still says it leads (a clock that lags, or a check made before a freeze): only the token stops it.
    deposed.leader._clock = lambda: 0.0  # type: ignore[union-attr]
    deposed.leader._valid_until = 1.0  # type: ignore[union-attr]
    async with SqlStore(url, leader=QUICK) as successor:
        with pytest.raises(LeaseLost, match="no longer epoch 1"):
            await deposed.save(report(2))
        await successor.save(report(3))
        found = await stored(url)
    await deposed.close()

    assert found == ["ev-1", "ev-3"]


async def test_a_leader_that_stops_hands_the_lease_over_at_once(url: str) -> None:
    slow = LeaseTimings(lease_s=30.0, renew_s=1.0, poll_s=0.05)
    first = SqlStore(url, leader=slow)
    await first.open()
    second = SqlStore(url, leader=slow)
    opening = asyncio.create_task(second.open())
    await asyncio.sleep(0.3)
    assert not opening.done()
    stopped = time.monotonic()
    await first.close()
    await asyncio.wait_for(opening, 10)  # not the lease's 30 s
    took = time.monotonic() - stopped
    await second.close()

    assert took < 5.0


async def test_a_leader_that_cannot_renew_in_time_is_told_so(url: str) -> None:
    store = SqlStore(url, leader=QUICK)
    await store.open()
    lost: list[str] = []
    other = create_async_engine(async_url(url))
    async with other.begin() as conn:  # someone else took the lease: the renewal finds it gone
        await conn.execute(text("UPDATE store_lease SET epoch = epoch + 1"))
    await other.dispose()
    await asyncio.wait_for(store.leader.keep(lost.append), 5)  # type: ignore[union-attr]
    acting = store.leader.acting()  # type: ignore[union-attr]
    await store.close()

    assert lost == ["the lease of epoch 1 was taken over or expired"]
    assert not acting


def test_high_availability_needs_postgresql_and_a_renewal_well_inside_the_lease() -> None:
    with pytest.raises(SettingsError, match="needs a PostgreSQL"):
        load_settings(None, ha={"enabled": True})
    with pytest.raises(SettingsError, match="at most a third"):
        load_settings(None, ha={"lease_s": 1.0, "renew_s": 0.5})


async def test_a_leader_whose_event_loop_is_blocked_longer_than_its_lease_keeps_it(url: str) -> None:
    """A start that restores a large store (1.7 s for 10,000 hosts) or a long pause blocks the event loop: the
    renewal must not wait for it, or every new leader of a large cloud is deposed during its own start."""
    leader = SqlStore(url, leader=QUICK)
    await leader.open()
    lost: list[str] = []
    keeping = asyncio.create_task(leader.leader.keep(lost.append))  # type: ignore[union-attr]
    await asyncio.sleep(QUICK.renew_s)
    time.sleep(QUICK.lease_s * 3)  # noqa: ASYNC251 (the point: the event loop blocked, as a restore blocks it)
    async with SqlStore(url, read_only=True) as reader, reader.engine.connect() as conn:
        epoch = (await conn.execute(text("SELECT epoch FROM store_lease"))).scalar()
    await leader.save(report(1))  # the token still takes its writes
    keeping.cancel()
    await asyncio.gather(keeping, return_exceptions=True)
    await leader.close()

    assert lost == []
    assert epoch == 1
