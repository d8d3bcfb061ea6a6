"""SqlStore: what is saved loads back equal, batches are all-or-nothing, the
schema migrates itself, the event log pages, and a cloud survives a restart.

Every test runs on SQLite and on PostgreSQL (see ``conftest.py``).
"""

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from store.migrating import at_revision

from vigil.bus.memory import InProcessBus
from vigil.controller.changes import Committer
from vigil.controller.cloud import CloudTimings, EmbeddedCloud
from vigil.controller.generate import generate
from vigil.controller.ports import ChangeBatch
from vigil.controller.resource_map import ResourceMap
from vigil.domain.events import EventAction, ResourceEvent
from vigil.domain.ids import HostName, InstanceId, PortId, ProjectId
from vigil.domain.model import Host, Instance, Port, Resource, ResourceType, ServerGroup, as_dict, resource_type
from vigil.domain.retry import PermanentError
from vigil.domain.states import AdminState, DataPlaneStatus, GroupPolicy, InstanceState
from vigil.domain.topology import Topology
from vigil.store.schema import RESOURCE_TABLES, metadata
from vigil.store.sql import SqlStore, migrations_config
from vigil.vim.openstack.push import PUSH_MARK

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ORDER = list(RESOURCE_TABLES)  # parents before children


def small_cloud() -> list[Resource]:
    """A generated cloud with one port per instance and some non-default fields."""
    topo: Topology = generate(4, 2, 2)
    topo.hosts[0].admin_state = AdminState.DISABLED
    topo.hosts[0].disabled_reason = "maintenance"
    topo.hosts[1].forced_down = True
    topo.hosts[2].reachable = False
    topo.hosts[3].in_maintenance = True
    topo.groups[0].policy = GroupPolicy.AFFINITY
    topo.groups[0].alarm_threshold = 3
    topo.instances[0].state = InstanceState.ERROR
    topo.instances[1].migrating_to = topo.hosts[3].name
    topo.instances[1].state = InstanceState.MIGRATING
    ports = [Port(PortId(f"port-{i.id}"), i.id, i.project, i.host) for i in topo.instances]
    ports[0].data_plane_status = DataPlaneStatus.DOWN
    return [*topo.switches, *topo.hosts, *topo.projects, *topo.groups, *topo.instances, *ports]


def upserting(resources: list[Resource], events: list[ResourceEvent] | None = None) -> ChangeBatch:
    batch = ChangeBatch(events=list(events or []))
    for r in resources:
        batch.upserts[(resource_type(r), r.ident)] = r
    return batch


def deleting(resources: list[Resource]) -> ChangeBatch:
    return ChangeBatch(deletes={(resource_type(r), r.ident) for r in resources})


def contents(resources: Any) -> dict[tuple[ResourceType, str], dict[str, Any]]:
    return {(resource_type(r), r.ident): as_dict(r) for r in resources}


def event(seq: int, **overrides: Any) -> ResourceEvent:
    values: dict[str, Any] = {
        "seq": seq,
        "time": T0 + timedelta(seconds=seq),
        "resource_type": ResourceType.INSTANCE,
        "resource_id": f"vm-{seq % 3}",
        "action": EventAction.UPDATED,
        "changes": {"state": (InstanceState.ACTIVE, InstanceState.ERROR)},
        "project": ProjectId(f"project-{seq % 2}"),
        "reason": "test",
    }
    values.update(overrides)
    return ResourceEvent(**values)


async def stored(store: SqlStore) -> dict[tuple[ResourceType, str], dict[str, Any]]:
    return contents((await store.load()).resources)


# -- saving and loading -------------------------------------------------------


async def test_a_saved_cloud_loads_back_equal_from_a_new_store_on_the_same_database(store_url: str) -> None:
    cloud = small_cloud()
    async with SqlStore(store_url) as store:
        await store.save(upserting(cloud, [event(1), event(2), event(7)]))

    async with SqlStore(store_url) as reopened:
        snapshot = await reopened.load()

    assert contents(snapshot.resources) == contents(cloud)
    assert len(snapshot.resources) == len(cloud)
    assert snapshot.last_seq == 7


async def test_loaded_resources_have_enum_states_and_come_parents_first(store: SqlStore) -> None:
    await store.save(upserting(small_cloud()))

    resources = (await store.load()).resources

    kinds = [ORDER.index(resource_type(r)) for r in resources]
    assert kinds == sorted(kinds)
    for r in resources:
        match r:
            case Host():
                assert type(r.admin_state) is AdminState
            case ServerGroup():
                assert type(r.policy) is GroupPolicy
            case Instance():
                assert type(r.state) is InstanceState
                assert isinstance(r.metadata, dict)
            case Port():
                assert type(r.data_plane_status) is DataPlaneStatus
    assert {type(r.state) for r in resources if isinstance(r, Instance)} == {InstanceState}


async def test_an_empty_store_loads_nothing_with_last_seq_zero(store: SqlStore) -> None:
    snapshot = await store.load()

    assert snapshot.resources == []
    assert snapshot.last_seq == 0


async def test_the_store_is_empty_until_a_host_is_saved(store: SqlStore) -> None:
    cloud = small_cloud()
    assert await store.is_empty()

    await store.save(upserting([r for r in cloud if resource_type(r) is ResourceType.SWITCH]))
    assert await store.is_empty()

    await store.save(upserting([r for r in cloud if resource_type(r) is ResourceType.HOST]))
    assert not await store.is_empty()


async def test_an_upsert_replaces_the_stored_row(store: SqlStore) -> None:
    cloud = small_cloud()
    await store.save(upserting(cloud))
    inst = next(r for r in cloud if isinstance(r, Instance) and r.migrating_to is None)
    changed = Instance(
        id=inst.id,
        name="renamed",
        project=inst.project,
        host=HostName("compute-00004"),
        vcpus=3,
        state=InstanceState.SHUTOFF,
        group=None,
        metadata={"role": "STBY", "zone": "b"},
    )

    await store.save(upserting([changed]))

    rows = await stored(store)
    assert rows[(ResourceType.INSTANCE, inst.id)] == as_dict(changed)
    assert len(rows) == len(cloud)


async def test_a_delete_removes_the_rows_and_leaves_the_rest(store: SqlStore) -> None:
    cloud = small_cloud()
    await store.save(upserting(cloud))
    inst = next(r for r in cloud if isinstance(r, Instance))
    port = next(r for r in cloud if isinstance(r, Port) and r.instance == inst.id)

    await store.save(deleting([port, inst]))

    rows = await stored(store)
    assert (ResourceType.INSTANCE, inst.id) not in rows
    assert (ResourceType.PORT, port.id) not in rows
    assert rows == {k: v for k, v in contents(cloud).items() if k[1] not in (inst.id, port.id)}


async def test_a_merged_batch_that_deletes_then_recreates_a_resource_leaves_it_present(store: SqlStore) -> None:
    cloud = small_cloud()
    await store.save(upserting(cloud))
    inst = next(r for r in cloud if isinstance(r, Instance) and r.migrating_to is None)
    port = next(r for r in cloud if isinstance(r, Port) and r.instance == inst.id)
    recreated = Instance(inst.id, "again", inst.project, HostName("compute-00002"))
    merged = deleting([port, inst])
    merged.merge(upserting([recreated]))

    await store.save(merged)

    rows = await stored(store)
    assert rows[(ResourceType.INSTANCE, inst.id)] == as_dict(recreated)
    assert (ResourceType.PORT, port.id) not in rows


async def test_a_merged_batch_that_creates_then_deletes_a_resource_leaves_it_absent(store: SqlStore) -> None:
    cloud = small_cloud()
    await store.save(upserting(cloud))
    project = ProjectId("project-001")
    inst = Instance(InstanceId("short-lived"), "short", project, HostName("compute-00001"))
    port = Port(PortId("short-lived-port"), inst.id, project, inst.host)
    merged = upserting([inst, port])
    merged.merge(deleting([port, inst]))

    await store.save(merged)

    assert await stored(store) == contents(cloud)


async def test_a_batch_larger_than_one_statement_is_written_and_deleted_whole(store: SqlStore) -> None:
    # 9 instance columns allow 3,640 rows a statement under asyncpg's 32,767 parameters.
    project = ProjectId("p")
    base = upserting(small_cloud())
    many: list[Resource] = []
    for k in range(8_000):
        inst = Instance(InstanceId(f"vm-{k:05d}"), f"vm-{k}", project, None, metadata={"k": str(k)})
        many += [inst, Port(PortId(f"port-{k:05d}"), inst.id, project, None)]
    await store.save(base)

    await store.save(upserting(many))
    assert len(await stored(store)) == len(base.upserts) + len(many)

    await store.save(deleting(many))
    assert await stored(store) == contents(base.upserts.values())


async def test_a_failing_batch_writes_nothing(store: SqlStore) -> None:
    cloud = small_cloud()
    await store.save(upserting(cloud, [event(1)]))
    host = next(r for r in cloud if isinstance(r, Host))
    changed = Host(host.name, zone="elsewhere", vcpus=99)
    # The event reuses seq 1, so the transaction fails at its end, after the upsert ran.
    failing = upserting([changed], [event(1, reason="duplicate")])

    with pytest.raises(PermanentError) as refused:
        await store.save(failing)
    assert isinstance(refused.value.__cause__, DBAPIError)  # the driver's own error, refused for good

    assert await stored(store) == contents(cloud)
    assert [e.reason for e in await store.events()] == ["test"]


async def test_an_empty_batch_is_a_no_op(store: SqlStore) -> None:
    await store.save(ChangeBatch())

    assert await store.is_empty()
    assert (await store.load()).last_seq == 0


# -- the schema -------------------------------------------------------------


def _revision_and_diff(conn: Connection) -> tuple[str | None, list[Any]]:
    context = MigrationContext.configure(conn)
    return context.get_current_revision(), compare_metadata(context, metadata)


async def test_opening_an_existing_database_again_leaves_it_at_the_head_revision(store_url: str) -> None:
    head = ScriptDirectory.from_config(migrations_config()).get_current_head()
    async with SqlStore(store_url) as first:
        await first.save(upserting(small_cloud()))

    async with SqlStore(store_url) as second:
        async with second.engine.connect() as conn:
            revision, diff = await conn.run_sync(_revision_and_diff)
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        assert len((await second.load()).resources) == len(small_cloud())

    assert head is not None
    assert revision == head
    assert versions == [head]
    assert diff == [], "the migrations and vigil/store/schema.py describe different schemas"


async def test_a_writer_waiting_for_the_lease_opens_when_the_first_closes(store_url: str) -> None:
    """Two writers opening a new database at once, each waiting for the lease rather than
    refusing: one takes it and migrates, the other opens once the first is gone."""
    first, second = SqlStore(store_url, wait_for_lease=True), SqlStore(store_url, wait_for_lease=True)
    try:
        opening = [asyncio.ensure_future(first.open()), asyncio.ensure_future(second.open())]
        done, waiting = await asyncio.wait(opening, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        assert len(done) == 1
        assert len(waiting) == 1
        await asyncio.sleep(0.5)
        assert not waiting.pop().done()  # still waiting for the lease
        winner, standby = (first, second) if opening[0] in done else (second, first)
        await winner.save(upserting(small_cloud()))
        await winner.close()
        await asyncio.wait_for(asyncio.gather(*opening), 10)
        assert len((await standby.load()).resources) == len(small_cloud())
        assert standby.lease is not None
        assert standby.lease.holder is not None
        assert standby.lease.holder.epoch == 2
    finally:
        await first.close()
        await second.close()


async def test_migrating_leaves_the_logging_configuration_alone(store_url: str) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    existing = logging.getLogger("vigil.test.existing")

    async with SqlStore(store_url):
        pass

    assert root.handlers == handlers
    assert root.level == level
    assert not existing.disabled


async def test_a_store_can_be_opened_twice_and_closed_twice(store_url: str) -> None:
    store = SqlStore(store_url)
    await store.open()
    await store.open()
    await store.close()
    await store.close()

    with pytest.raises(RuntimeError, match="not open"):
        await store.load()


async def test_sqlite_creates_its_directory_and_runs_in_wal_mode(tmp_path: Any) -> None:
    path = tmp_path / "deep" / "er" / "vigil.db"
    async with SqlStore(f"sqlite:///{path}") as store:
        async with store.engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
            sync = (await conn.execute(text("PRAGMA synchronous"))).scalar()
        assert store.url.drivername == "sqlite+aiosqlite"

    assert path.exists()
    assert mode == "wal"
    assert sync == 1  # NORMAL


# -- the event log ----------------------------------------------------------


async def test_events_come_back_equal_with_their_changes_as_tuples(store: SqlStore) -> None:
    berlin = timezone(timedelta(hours=1))
    original = [
        event(
            1,
            time=datetime(2025, 3, 1, 13, 0, 0, 123456, tzinfo=berlin),
            changes={
                "state": (InstanceState.ACTIVE, InstanceState.ERROR),
                "metadata": (None, {"role": "ACT"}),
                "host": ("compute-00001", None),
                "vcpus": (1, 2),
                "forced_down": (False, True),
            },
        ),
        event(2, resource_type=ResourceType.HOST, resource_id="compute-1", project=None, reason=None, changes={}),
        event(3, action=EventAction.DELETED, changes={}),
    ]
    await store.save(ChangeBatch(events=original))

    loaded = await store.events()

    assert loaded == original
    first = loaded[0]
    assert all(type(change) is tuple for change in first.changes.values())
    assert first.changes["forced_down"] == (False, True)
    assert first.changes["metadata"] == (None, {"role": "ACT"})
    assert first.time == datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert first.time.utcoffset() == timedelta(0)
    assert type(first.resource_type) is ResourceType
    assert type(first.action) is EventAction
    assert loaded[1].project is None
    assert loaded[1].reason is None


async def test_events_page_in_seq_order_after_a_given_seq(store: SqlStore) -> None:
    await store.save(ChangeBatch(events=[event(seq) for seq in range(25, 0, -1)]))

    pages: list[list[int]] = []
    after = 0
    while page := await store.events(after_seq=after, limit=10):
        pages.append([e.seq for e in page])
        after = page[-1].seq

    assert pages == [list(range(1, 11)), list(range(11, 21)), list(range(21, 26))]


async def test_event_filters_combine(store: SqlStore) -> None:
    events = [event(seq) for seq in range(1, 13)]
    events += [event(13, resource_type=ResourceType.HOST, resource_id="vm-1", project=None)]
    await store.save(ChangeBatch(events=events))

    async def seqs(**filters: Any) -> list[int]:
        return [e.seq for e in await store.events(**filters)]

    assert await seqs(resource_type="host") == [13]
    assert await seqs(resource_type="instance", resource_id="vm-1") == [1, 4, 7, 10]
    assert await seqs(resource_id="vm-1") == [1, 4, 7, 10, 13]
    assert await seqs(project="project-0") == [2, 4, 6, 8, 10, 12]
    assert await seqs(project="project-0", resource_id="vm-1", after_seq=4) == [10]
    assert await seqs(project="nobody") == []
    assert await seqs(after_seq=13) == []


async def test_events_filter_by_the_start_of_their_reason(store: SqlStore) -> None:
    reasons = ["fault event d-1", "nova notification: instance.update", None, "held recovery released", "fault_%"]
    await store.save(ChangeBatch(events=[event(n, reason=r) for n, r in enumerate(reasons, 1)]))

    async def seqs(*starts: str) -> list[int]:
        return [e.seq for e in await store.events(reasons=starts)]

    assert await seqs("fault event", "held recovery") == [1, 4]
    assert await seqs("fault_") == [5]  # a wildcard of LIKE is a plain character here
    assert await seqs() == [1, 2, 3, 4, 5]


async def test_a_log_mark_only_moves_forward_and_survives_a_reopening(store_url: str) -> None:
    async with SqlStore(store_url) as store:
        assert await store.mark("vim.push") == 0
        await store.set_mark("vim.push", 7, T0)
        await store.set_mark("vim.push", 5, T0)  # a late writer of an older mark does not move it back
        await store.set_mark("other", 2, T0)
    async with SqlStore(store_url) as reopened:
        assert await reopened.mark("vim.push") == 7
        assert await reopened.mark("other") == 2
        await reopened.set_mark("vim.push", 9, T0)
        assert await reopened.mark("vim.push") == 9


async def test_a_database_upgraded_with_events_starts_the_pushers_mark_at_their_end(store_url: str) -> None:
    """The pusher resumes after its mark; a database that had events before it kept one (revision 0005) was
    pushed by the code before it, so its first start after the upgrade must not replay every retained event."""
    async with at_revision(store_url, "0005") as conn:
        for seq in (3, 8):
            await conn.execute(
                text(
                    "INSERT INTO resource_events (seq, time, resource_type, resource_id, action, changes)"
                    " VALUES (:seq, :time, 'host', 'compute-1', 'update', '{}')"
                ),
                {"seq": seq, "time": T0},
            )
    async with SqlStore(store_url) as store:
        assert await store.mark(PUSH_MARK) == 8


async def test_a_new_database_starts_the_pushers_mark_at_nothing(store: SqlStore) -> None:
    assert await store.mark(PUSH_MARK) == 0


async def test_events_refuse_a_limit_below_one(store: SqlStore) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.events(limit=0)


async def test_an_event_with_a_naive_time_is_refused(store: SqlStore) -> None:
    naive = event(1, time=datetime(2025, 3, 1, 12, 0))

    with pytest.raises(PermanentError, match="naive"):
        await store.save(ChangeBatch(events=[naive]))

    assert await store.events() == []


# -- a restart through the real engine ----------------------------------------


async def test_a_cloud_restored_after_a_restart_equals_the_one_that_stopped(store_url: str) -> None:
    timings = CloudTimings(boot_s=0, cold_migration_s=0.01, live_migration_s=0.01, evacuate_s=0.01)
    counter = iter(range(1_000_000))

    def new_id() -> str:
        return str(uuid.UUID(int=next(counter)))

    def clock() -> datetime:
        return datetime.now(UTC)

    # -- first life: bootstrap and operate
    store = SqlStore(store_url)
    await store.open()
    bus = InProcessBus()
    published = bus.subscribe()
    committer = Committer(store, bus)
    committer.start()
    cloud = EmbeddedCloud(ResourceMap(), committer, clock, timings=timings, new_id=new_id)
    try:
        assert await store.is_empty()
        await cloud.bootstrap(generate(4, 2, 2))
        assert not await store.is_empty()
        assert (await store.load()).last_seq == 0  # bootstrap is state, not events

        booted = await cloud.boot(name="extra", project="project-001", metadata={"role": "spare"})
        await booted.done
        loose = next(i for i in cloud.map.instances() if i.group is None and i.id != booted.instance.id)
        source = loose.host
        migration = await cloud.migrate(loose.id, live=True)
        await migration.done
        assert loose.host != source
        await cloud.set_host_forced_down("compute-00004", True, reason="fault")
        victim = cloud.map.instances_on("compute-00004")[0]
        await cloud.reset_state(victim.id, InstanceState.ERROR, reason="host down")
        await cloud.delete(booted.instance.id)
        await cloud.drain()
        first_life = published.drain()
        assert await store.events(limit=1000) == first_life
    finally:
        await cloud.aclose()
        await committer.stop()
        await store.close()
    before = contents(cloud.map.all())
    last_seq = first_life[-1].seq
    assert [e.seq for e in first_life] == list(range(1, last_seq + 1))

    # -- second life: restore and carry on
    async with SqlStore(store_url) as store2:
        committer2 = Committer(store2, InProcessBus())
        committer2.start()
        cloud2 = EmbeddedCloud(ResourceMap(), committer2, clock, timings=timings, new_id=new_id)
        try:
            snapshot = await store2.load()
            interrupted = cloud2.restore(snapshot)
            assert interrupted == []
            assert snapshot.last_seq == last_seq
            assert contents(cloud2.map.all()) == before
            assert cloud2.map.counts() == cloud.map.counts()
            assert cloud2.map.used_vcpus("compute-00001") == cloud.map.used_vcpus("compute-00001")
            assert cloud2.map.host("compute-00004").forced_down
            assert cloud2.map.instance(victim.id).state is InstanceState.ERROR

            await cloud2.set_host_forced_down("compute-00004", False, reason="repaired")
        finally:
            await cloud2.aclose()
            await committer2.stop()

        log = await store2.events(limit=1000)
        newer = await store2.events(after_seq=last_seq)

    assert [e.seq for e in log] == list(range(1, last_seq + 2))
    assert [(e.seq, e.resource_id, e.changes, e.reason) for e in newer] == [
        (last_seq + 1, "compute-00004", {"forced_down": (True, False)}, "repaired")
    ]


async def test_the_monitored_hosts_are_kept_with_their_timing_and_updated(store: SqlStore) -> None:
    assert await store.monitored_hosts() == {}
    await store.set_monitored("compute-1", 20.0, 3, T0)
    await store.set_monitored("compute-2", 100.0, 5, T0)
    await store.set_monitored("compute-1", 50.0, 4, T0)  # the agent changed its timing
    assert await store.monitored_hosts() == {"compute-1": (50.0, 4), "compute-2": (100.0, 5)}
