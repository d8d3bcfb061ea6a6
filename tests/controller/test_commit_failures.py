"""A commit that fails: only the unit of work that caused it fails; the others are written.

Seen before: one value the store could not hold (an integer of 2^63 in a
group constraint) failed the whole merged batch after 1.6 s of retries, so 25
of 40 concurrent subscription creations got 500. Now the committer tells a
refused value (PermanentError from the store) from a store it cannot reach
(TemporaryError): a refused merged batch is written again one unit of work
at a time, so only the culprit fails, and a busy or unreachable store is
waited for, never given up on. Real SQLite and PostgreSQL throughout.
"""

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support import fresh_postgres_database

from vigil.bus.memory import InProcessBus
from vigil.controller.changes import Changes, Committer, EventCounter
from vigil.controller.resource_map import ResourceMap
from vigil.domain.errors import StoreRefused
from vigil.domain.ids import GroupId, HostName, ProjectId
from vigil.domain.maintenance import GroupConstraints
from vigil.domain.model import Host
from vigil.domain.records import RecordKind
from vigil.domain.retry import PermanentError, TemporaryError
from vigil.store.sql import SqlStore

NOW = datetime(2026, 12, 7, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    if request.param == "sqlite":
        async with SqlStore(f"sqlite:///{tmp_path / 'vigil.db'}") as store:
            yield store
        return
    async with fresh_postgres_database() as url, SqlStore(url) as store:
        yield store


def constraints(group: str, per_host: int) -> GroupConstraints:
    return GroupConstraints(
        group_id=GroupId(group), project=ProjectId("p"), anti_affinity_group=False, max_instances_per_host=per_host
    )


def unit(rmap: ResourceMap, counter: EventCounter, host: str, per_host: int = 1) -> Changes:
    """A host created and a group constraint recorded: a unit of work with a resource event and a record."""
    changes = Changes(rmap, counter, NOW, reason="test")
    changes.create(Host(HostName(host)))
    changes.record(constraints(f"group-of-{host}", per_host))
    return changes


async def test_the_store_says_whether_a_failed_write_is_worth_repeating(any_store: SqlStore) -> None:
    rmap, counter = ResourceMap(), EventCounter()
    with pytest.raises(PermanentError):
        await any_store.save(unit(rmap, counter, "compute-1", per_host=2**63).batch)
    assert (await any_store.load()).resources == []


async def test_only_the_unit_of_work_with_a_value_the_store_refuses_fails(any_store: SqlStore) -> None:
    bus = InProcessBus()
    published = bus.subscribe()
    committer = Committer(any_store, bus)
    committer.start()
    rmap, counter = ResourceMap(), EventCounter()
    try:
        units = [unit(rmap, counter, f"compute-{n}", per_host=2**63 if n == 7 else n) for n in range(1, 41)]
        outcomes = await asyncio.gather(*(committer.submit(u.batch) for u in units), return_exceptions=True)
    finally:
        await committer.stop()
    failed = [n for n, outcome in enumerate(outcomes, start=1) if isinstance(outcome, Exception)]
    assert failed == [7]
    assert isinstance(outcomes[6], StoreRefused)
    assert "refused" in str(outcomes[6])
    stored = sorted(r.ident for r in (await any_store.load()).resources)
    assert stored == sorted(f"compute-{n}" for n in range(1, 41) if n != 7)
    kept = {r.ident for r in await any_store.load_records(RecordKind.GROUP_CONSTRAINTS)}
    assert "group-of-compute-7" not in kept
    assert len(kept) == 39
    # Only what was written is published, in seq order.
    seqs = [e.seq for e in published.drain()]
    assert seqs == sorted(seqs)
    assert {e.resource_id for e in await any_store.events(limit=100)} == set(stored)


async def test_a_busy_store_is_waited_for_not_given_up_on(tmp_path: Path) -> None:
    path = tmp_path / "vigil.db"
    async with SqlStore(f"sqlite:///{path}", busy_timeout_ms=50) as store:
        rmap, counter = ResourceMap(), EventCounter()
        with sqlite3.connect(path, isolation_level=None) as blocker:
            blocker.execute("BEGIN EXCLUSIVE")
            with pytest.raises(TemporaryError):
                await store.save(unit(rmap, counter, "compute-0").batch)
            committer = Committer(store, InProcessBus())
            committer.start()
            try:
                written = committer.submit(unit(rmap, counter, "compute-1").batch)
                await asyncio.sleep(2.0)  # longer than the old 1.6 s of retries before giving up
                assert not written.done()
                blocker.execute("COMMIT")
                await asyncio.wait_for(written, 10)
            finally:
                await committer.stop()
        assert [r.ident for r in (await store.load()).resources] == ["compute-1"]
