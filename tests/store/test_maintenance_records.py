"""SqlStore and maintenance records: sessions (with their per-host and
per-project progress), instance constraints and group constraints load back
equal from a new store, an upsert replaces and a delete removes them through
the change batch, and a database made by revision 0002 upgrades to 0003.

Every test runs on SQLite and on PostgreSQL (see ``conftest.py``).
"""

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from store.migrating import at_revision, revision_and_diff

from vigil.controller.changes import Changes, EventCounter
from vigil.controller.ports import ChangeBatch
from vigil.controller.resource_map import ResourceMap
from vigil.domain.maintenance import (
    GroupConstraints,
    HostMaintenanceState,
    HostProgress,
    InstanceAction,
    InstanceConstraints,
    MaintenanceSession,
    ProjectProgress,
    ProjectState,
    SessionId,
    SessionState,
)
from vigil.domain.records import Record, RecordKind, record_kind
from vigil.domain.retry import PermanentError
from vigil.domain.subscriptions import PayloadFormat, Subscription, SubscriptionId
from vigil.store.schema import RECORD_TABLES
from vigil.store.sql import SqlStore

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BERLIN = timezone(timedelta(hours=1))


def session(n: int, **overrides: Any) -> MaintenanceSession:
    values: dict[str, Any] = {
        "id": SessionId(f"session-{n}"),
        "hosts": [f"compute-{n}", f"compute-{n + 1}"],
        "state": SessionState.MAINTENANCE,
        "maintenance_at": T0 + timedelta(hours=1),
        "created_at": T0 + timedelta(seconds=n),
        "updated_at": T0 + timedelta(seconds=n),
    }
    values.update(overrides)
    return MaintenanceSession(**values)


def busy_session() -> MaintenanceSession:
    """A session part-way through: every field off its default, nested enums, aware times and Nones."""
    return session(
        7,
        state=SessionState.PLANNED_MAINTENANCE,
        maintenance_at=datetime(2025, 3, 1, 14, 30, 0, 125000, tzinfo=BERLIN),
        updated_at=T0 + timedelta(minutes=5, microseconds=1),
        workflow="vnf",
        metadata={"ticket": "CHG-1", "owner": "ops"},
        actions=[{"plugin": "upgrade", "duration_s": 5, "args": {"to": "2025.1", "reboot": True, "skip": None}}],
        reason=None,
        migrations=3,
        host_progress={
            "compute-7": HostProgress(
                "compute-7",
                HostMaintenanceState.ENABLED,
                maintained=True,
                was_enabled=True,
                started_at=T0 + timedelta(minutes=1),
                ended_at=datetime(2025, 3, 1, 13, 4, 0, 999999, tzinfo=BERLIN),
            ),
            "compute-8": HostProgress(
                "compute-8",
                HostMaintenanceState.GOING_TO_MAINTENANCE,
                was_enabled=False,
                started_at=T0 + timedelta(minutes=4),
            ),
            "compute-9": HostProgress("compute-9"),
        },
        projects={
            "project-1": ProjectProgress(
                "project-1",
                ProjectState.PLANNED_MAINTENANCE,
                reply="ACK_PLANNED_MAINTENANCE",
                replied_at=T0 + timedelta(minutes=3, milliseconds=250),
                instance_ids=["vm-1", "vm-2"],
            ),
            "project-2": ProjectProgress("project-2", ProjectState.SCALE_IN),
            "project-3": ProjectProgress("project-3"),
        },
    )


def instance_constraints(n: int, **overrides: Any) -> InstanceConstraints:
    values: dict[str, Any] = {"instance_id": f"vm-{n}", "project": "project-1"}
    values.update(overrides)
    return InstanceConstraints(**values)


def group_constraints(n: int, **overrides: Any) -> GroupConstraints:
    values: dict[str, Any] = {"group_id": f"group-{n}", "project": "project-1"}
    values.update(overrides)
    return GroupConstraints(**values)


def every_maintenance_kind() -> list[Record]:
    return [
        session(1),
        busy_session(),
        session(2, state=SessionState.MAINTENANCE_FAILED, reason="project-1 did not reply in time"),
        instance_constraints(1),
        instance_constraints(
            2,
            group_id="group-1",
            max_interruption_time=1.5,
            migration_type=InstanceAction.LIVE_MIGRATE,
            resource_mitigation=True,
            lead_time=30.25,
        ),
        group_constraints(1),
        group_constraints(
            2,
            project="project-2",
            anti_affinity_group=True,
            max_instances_per_host=2,
            max_impacted_members=3,
            recovery_time=12.5,
        ),
    ]


def batch_of(*records: Record) -> ChangeBatch:
    batch = ChangeBatch()
    for record in records:
        batch.upserts[(record_kind(record), record.ident)] = record
    return batch


def of_kind(records: list[Record], kind: RecordKind) -> list[Record]:
    return [r for r in records if record_kind(r) is kind]


# -- round trips ----------------------------------------------------------------


async def test_maintenance_records_load_back_equal_from_a_new_store(store_url: str) -> None:
    records = every_maintenance_kind()
    async with SqlStore(store_url) as store:
        await store.save(batch_of(*reversed(records)))

    async with SqlStore(store_url) as reopened:
        sessions = await reopened.maintenance_sessions()
        instances = await reopened.instance_constraints()
        groups = await reopened.group_constraints()
        by_kind = {kind: await reopened.load_records(kind) for kind in RecordKind}

    # Sessions oldest first; constraints by their key.
    assert [s.id for s in sessions] == ["session-1", "session-2", "session-7"]
    assert sessions == [records[0], records[2], records[1]]
    assert instances == of_kind(records, RecordKind.INSTANCE_CONSTRAINTS)
    assert groups == of_kind(records, RecordKind.GROUP_CONSTRAINTS)
    assert by_kind[RecordKind.MAINTENANCE_SESSION] == sessions
    assert by_kind[RecordKind.INSTANCE_CONSTRAINTS] == instances
    assert by_kind[RecordKind.GROUP_CONSTRAINTS] == groups
    assert {kind for kind, loaded in by_kind.items() if loaded} == {
        RecordKind.MAINTENANCE_SESSION,
        RecordKind.INSTANCE_CONSTRAINTS,
        RecordKind.GROUP_CONSTRAINTS,
    }


async def test_a_loaded_session_has_enums_nested_dataclasses_and_aware_utc_times(store: SqlStore) -> None:
    await store.save(batch_of(busy_session()))

    [loaded] = await store.maintenance_sessions()

    assert loaded == busy_session()
    assert dataclasses.asdict(loaded) == dataclasses.asdict(busy_session())
    assert type(loaded.state) is SessionState
    for when in (loaded.maintenance_at, loaded.created_at, loaded.updated_at):
        assert when.utcoffset() == timedelta(0)
    assert loaded.maintenance_at == datetime(2025, 3, 1, 13, 30, 0, 125000, tzinfo=UTC)

    assert list(loaded.host_progress) == ["compute-7", "compute-8", "compute-9"]
    done, going, idle = loaded.host_progress.values()
    assert all(type(h) is HostProgress and type(h.state) is HostMaintenanceState for h in (done, going, idle))
    assert going.state is HostMaintenanceState.GOING_TO_MAINTENANCE
    assert done.ended_at == datetime(2025, 3, 1, 12, 4, 0, 999999, tzinfo=UTC)
    assert done.ended_at.utcoffset() == timedelta(0)
    assert going.ended_at is None
    assert idle.started_at is None
    assert idle.ended_at is None

    acked, asked, untouched = loaded.projects.values()
    assert all(type(p) is ProjectProgress for p in (acked, asked, untouched))
    assert type(acked.state) is ProjectState
    assert type(asked.state) is ProjectState
    assert acked.replied_at is not None
    assert acked.replied_at.utcoffset() == timedelta(0)
    assert acked.instance_ids == ["vm-1", "vm-2"]
    assert untouched.state is None
    assert untouched.reply is None
    assert untouched.replied_at is None
    assert asked.replied_at is None

    assert loaded.actions == [
        {"plugin": "upgrade", "duration_s": 5, "args": {"to": "2025.1", "reboot": True, "skip": None}}
    ]
    assert loaded.metadata == {"ticket": "CHG-1", "owner": "ops"}
    assert loaded.percent_done == 33


async def test_a_session_with_defaults_only_loads_back_with_defaults(store: SqlStore) -> None:
    await store.save(batch_of(session(1)))

    [loaded] = await store.maintenance_sessions()

    assert loaded == session(1)
    assert loaded.reason is None
    assert loaded.host_progress == {}
    assert loaded.projects == {}
    assert loaded.metadata == {}
    assert loaded.actions == []


async def test_loaded_constraints_have_their_enum_and_none_group(store: SqlStore) -> None:
    await store.save(batch_of(*every_maintenance_kind()))

    plain, grouped = await store.instance_constraints()

    assert plain.group_id is None
    assert type(plain.migration_type) is InstanceAction
    assert grouped.migration_type is InstanceAction.LIVE_MIGRATE
    assert (grouped.max_interruption_time, grouped.lead_time) == (1.5, 30.25)
    assert [type(g) for g in await store.group_constraints()] == [GroupConstraints, GroupConstraints]


async def test_nothing_stored_loads_empty_lists(store: SqlStore) -> None:
    assert await store.maintenance_sessions() == []
    assert await store.instance_constraints() == []
    assert await store.group_constraints() == []


async def test_a_naive_time_in_the_progress_is_refused_before_anything_is_written(store: SqlStore) -> None:
    naive = session(1, host_progress={"compute-1": HostProgress("compute-1", started_at=datetime(2025, 3, 1, 12))})

    with pytest.raises(PermanentError, match="naive"):
        await store.save(batch_of(naive, group_constraints(1)))

    assert await store.maintenance_sessions() == []
    assert await store.group_constraints() == []


# -- upserts and deletes ----------------------------------------------------------


async def test_an_upsert_replaces_a_stored_session_and_constraints(store: SqlStore) -> None:
    first = session(7)
    await store.save(batch_of(first, session(1), instance_constraints(1), group_constraints(1)))
    latest = busy_session()
    assert latest.id == first.id
    moved = instance_constraints(1, group_id="group-2", migration_type=InstanceAction.OWN_ACTION, lead_time=60.0)
    tighter = group_constraints(1, max_impacted_members=2, recovery_time=5.0)

    await store.save(batch_of(latest, moved, tighter))

    assert await store.maintenance_sessions() == [session(1), latest]
    assert await store.instance_constraints() == [moved]
    assert await store.group_constraints() == [tighter]


async def test_the_latest_of_several_recorded_versions_wins(store: SqlStore) -> None:
    live = session(3)
    changes = Changes(ResourceMap(), EventCounter(), T0)
    changes.record(live)
    # The workflow moves on: a new progress entry, a new state, a later time.
    live.state = SessionState.START_MAINTENANCE
    live.host_progress = {"compute-3": HostProgress("compute-3", HostMaintenanceState.IN_MAINTENANCE, started_at=T0)}
    live.updated_at = T0 + timedelta(minutes=1)
    changes.record(live)
    live.state = SessionState.MAINTENANCE_DONE  # not recorded again: not saved

    await store.save(changes.batch)

    [loaded] = await store.maintenance_sessions()
    assert loaded.state is SessionState.START_MAINTENANCE
    assert loaded.host_progress == {
        "compute-3": HostProgress("compute-3", HostMaintenanceState.IN_MAINTENANCE, started_at=T0)
    }
    assert loaded.updated_at == T0 + timedelta(minutes=1)


async def test_forgotten_records_are_deleted_and_the_rest_stay(store: SqlStore) -> None:
    records = every_maintenance_kind()
    await store.save(batch_of(*records))
    doomed_session, doomed_instance, doomed_group = busy_session(), instance_constraints(2), group_constraints(1)
    changes = Changes(ResourceMap(), EventCounter(), T0)
    for record in (doomed_session, doomed_instance, doomed_group):
        changes.forget(record)

    await store.save(changes.batch)

    assert [s.id for s in await store.maintenance_sessions()] == ["session-1", "session-2"]
    assert await store.instance_constraints() == [instance_constraints(1)]
    assert [g.group_id for g in await store.group_constraints()] == ["group-2"]


async def test_a_merged_batch_that_records_then_forgets_leaves_the_record_absent(store: SqlStore) -> None:
    merged = batch_of(session(1), session(2), group_constraints(1))
    later = Changes(ResourceMap(), EventCounter(), T0)
    later.forget(session(2))
    later.forget(group_constraints(1))
    merged.merge(later.batch)

    await store.save(merged)

    assert await store.maintenance_sessions() == [session(1)]
    assert await store.group_constraints() == []


# -- migrating from 0002 --------------------------------------------------------------


OLD_SUBSCRIPTION = Subscription(
    SubscriptionId("sub-1"), "project-1", False, ["http://127.0.0.1:9/hook"], PayloadFormat.SOL003, T0, name="old"
)


async def test_a_database_at_revision_0002_upgrades_to_0003_keeping_its_records(store_url: str) -> None:
    async with at_revision(store_url, "0002") as conn:
        # The subscriptions table is as 0002 made it: the current spec writes its row, but for
        # the column a later revision (0005) added.
        spec = RECORD_TABLES[RecordKind.SUBSCRIPTION]
        row = spec.to_row(OLD_SUBSCRIPTION)
        del row["authentication"]
        await conn.execute(spec.table.insert(), [row])

    async with SqlStore(store_url) as store:
        revision, diff = await revision_and_diff(store)
        subscriptions = await store.load_records(RecordKind.SUBSCRIPTION)
        await store.save(batch_of(*every_maintenance_kind()))
        sessions = await store.maintenance_sessions()

    assert revision == "0009"
    assert diff == [], "the migrations and vigil/store/schema.py describe different schemas"
    assert subscriptions == [OLD_SUBSCRIPTION]
    assert [s.id for s in sessions] == ["session-1", "session-2", "session-7"]
