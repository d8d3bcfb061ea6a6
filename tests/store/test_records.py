"""SqlStore and records: fault events, faults, alarms, subscriptions and
deliveries load back equal, share the resources' transaction, are deleted on
request, and the delivery log and fault-event queries filter and page; a
database made by revision 0001 upgrades to the fault-management schema.

Every test runs on SQLite and on PostgreSQL (see ``conftest.py``).
"""

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from store.migrating import at_revision, revision_and_diff

from vigil.controller.ports import ChangeBatch
from vigil.domain.alarms import AckState, Alarm, AlarmId, AlarmKind, AlarmState, Lifecycle
from vigil.domain.deliveries import Delivery, DeliveryId, DeliveryState, NotificationId
from vigil.domain.events import EventAction, ResourceEvent
from vigil.domain.faults import (
    Checkpoint,
    EventId,
    EventStatus,
    Fault,
    FaultEvent,
    FaultId,
    FaultState,
    Outcome,
    Severity,
)
from vigil.domain.ids import GroupId, HostName, ProjectId
from vigil.domain.model import Host, ResourceType, ServerGroup, resource_type
from vigil.domain.records import Record, RecordKind, record_kind
from vigil.domain.retry import PermanentError
from vigil.domain.states import AdminState, GroupPolicy
from vigil.domain.subscriptions import PayloadFormat, Subscription, SubscriptionFilter, SubscriptionId
from vigil.store.schema import RECORD_TABLES
from vigil.store.sql import SqlStore

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BERLIN = timezone(timedelta(hours=1))


def fault_event(n: int, **overrides: Any) -> FaultEvent:
    values: dict[str, Any] = {
        "id": EventId(f"ev-{n:03d}"),
        "time": T0 + timedelta(seconds=n),
        "type": "compute.host.down",
        "hostname": f"compute-{n % 3}",
        "status": EventStatus.DOWN,
        "monitor": "agent",
        "monitor_event_id": str(n),
        "received_at": T0 + timedelta(seconds=n, milliseconds=5),
    }
    values.update(overrides)
    return FaultEvent(**values)


def fault(n: int, **overrides: Any) -> Fault:
    values: dict[str, Any] = {
        "id": FaultId(f"fault-{n}"),
        "type": "compute.host.down",
        "resource_type": "host",
        "resource_id": f"compute-{n}",
        "severity": Severity.CRITICAL,
        "state": FaultState.ACTIVE,
        "opened_at": T0 + timedelta(minutes=n),
    }
    values.update(overrides)
    return Fault(**values)


def alarm(n: int, **overrides: Any) -> Alarm:
    values: dict[str, Any] = {
        "id": AlarmId(f"alarm-{n}"),
        "kind": AlarmKind.INSTANCE_DOWN,
        "project": "project-1",
        "resource_type": "instance",
        "resource_id": "vm-1",
        "severity": Severity.MAJOR,
        "state": AlarmState.ACTIVE,
        "ack_state": AckState.UNACKNOWLEDGED,
        "fault": FaultId("fault-1"),
        "raised_at": T0 + timedelta(seconds=n),
        "changed_at": T0 + timedelta(seconds=n),
    }
    values.update(overrides)
    return Alarm(**values)


def subscription(n: int, **overrides: Any) -> Subscription:
    values: dict[str, Any] = {
        "id": SubscriptionId(f"sub-{n}"),
        "project": "project-1",
        "admin": False,
        "callbacks": [f"http://127.0.0.1:9/hook/{n}"],
        "format": PayloadFormat.SOL003,
        "created_at": T0 + timedelta(seconds=n),
    }
    values.update(overrides)
    return Subscription(**values)


def delivery(n: int, **overrides: Any) -> Delivery:
    values: dict[str, Any] = {
        "id": DeliveryId(f"dl-{n:03d}"),
        "notification": NotificationId(f"note-{n}"),
        "subscription": SubscriptionId("sub-1"),
        "url": "http://127.0.0.1:9/hook",
        "alarm": AlarmId("alarm-1"),
        "alarm_version": 1,
        "lifecycle": Lifecycle.RAISED,
        "project": "project-1",
        "fault": FaultId("fault-1"),
        "body": '{"notificationType": "AlarmNotification"}',
        "state": DeliveryState.PENDING,
        "created_at": T0 + timedelta(seconds=n),
    }
    values.update(overrides)
    return Delivery(**values)


def every_kind() -> list[Record]:
    """Records of every kind, with non-default, None and nested values."""
    return [
        fault_event(1),
        fault_event(
            2,
            time=datetime(2025, 3, 1, 13, 0, 0, 250000, tzinfo=BERLIN),
            status=EventStatus.UP,
            severity="critical",
            cause="link down",
            related_to="switch-1",
            injected_at=1740830400.123456,
            outcome=Outcome.FAULT_CLEARED,
            fault=FaultId("fault-1"),
            seq=2,
        ),
        fault(1, events=["ev-001", "ev-002"], hosts=["compute-1"], instances=["vm-1", "vm-2"]),
        fault(
            2,
            state=FaultState.CLEARED,
            severity=Severity.MINOR,
            cleared_at=T0 + timedelta(hours=1),
            checkpoints={Checkpoint.T01: 1740830400.5, Checkpoint.T04: 1740830400.501234, "T09": 1740830400.6},
        ),
        alarm(1),
        alarm(
            2,
            kind=AlarmKind.HOST_DOWN,
            project=None,
            resource_type="host",
            resource_id="compute-1",
            severity=Severity.CRITICAL,
            state=AlarmState.CLEARED,
            ack_state=AckState.ACKNOWLEDGED,
            cleared_at=T0 + timedelta(minutes=3),
            version=3,
            reason="host compute-1 is down",
            resource_ids=["vm-1", "vm-2"],
            details={"monitor": "agent", "nested": {"list": [1, 2.5, None, True]}, "cause": None},
        ),
        subscription(1),
        subscription(
            2,
            admin=True,
            callbacks=["http://a.example/hook", "http://b.example/hook"],
            format=PayloadFormat.AODH,
            name="ops",
            filter=SubscriptionFilter(
                resource_ids=["vm-1"],
                resource_types=["instance"],
                event_types=["instance.down"],
                severities=[Severity.CRITICAL, Severity.MAJOR],
                lifecycles=[Lifecycle.RAISED, Lifecycle.CLEARED],
            ),
        ),
        delivery(1),
        delivery(
            2,
            lifecycle=Lifecycle.CLEARED,
            project=None,
            fault=None,
            state=DeliveryState.DELIVERED,
            attempts=2,
            next_attempt_at=T0 + timedelta(seconds=5),
            delivered_at=T0 + timedelta(seconds=6),
            last_status=200,
            last_error="timeout (first attempt)",
        ),
    ]


def batch_of(*objs: Any, events: list[ResourceEvent] | None = None) -> ChangeBatch:
    batch = ChangeBatch(events=list(events or []))
    for obj in objs:
        kind = record_kind(obj) if isinstance(obj, Record) else resource_type(obj)
        batch.upserts[(kind, obj.ident)] = obj
    return batch


def as_dicts(records: list[Any]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(r) for r in records]


async def stored(store: SqlStore, kind: RecordKind) -> dict[str, dict[str, Any]]:
    return {r.ident: dataclasses.asdict(r) for r in await store.load_records(kind)}


# -- every kind round-trips ---------------------------------------------------


async def test_every_record_kind_loads_back_equal_from_a_new_store(store_url: str) -> None:
    records = every_kind()
    async with SqlStore(store_url) as store:
        await store.save(batch_of(*records))

    async with SqlStore(store_url) as reopened:
        loaded = {kind: await reopened.load_records(kind) for kind in RecordKind}

    for kind in RecordKind:
        expected = [r for r in records if record_kind(r) is kind]
        assert as_dicts(loaded[kind]) == as_dicts(expected), kind
        assert all(type(r) is type(expected[0]) for r in loaded[kind])


async def test_loaded_records_have_enums_aware_utc_times_and_a_filter_dataclass(store: SqlStore) -> None:
    await store.save(batch_of(*every_kind()))

    events = await store.load_records(RecordKind.FAULT_EVENT)
    subscriptions = await store.load_records(RecordKind.SUBSCRIPTION)
    deliveries = await store.load_records(RecordKind.DELIVERY)
    alarms = await store.load_records(RecordKind.ALARM)

    second = events[1]
    assert isinstance(second, FaultEvent)
    assert type(second.status) is EventStatus
    assert second.time == datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
    assert second.time.utcoffset() == timedelta(0)
    assert second.injected_at == 1740830400.123456
    ops = subscriptions[1]
    assert isinstance(ops, Subscription)
    assert type(ops.format) is PayloadFormat
    assert type(ops.filter) is SubscriptionFilter
    assert [type(s) for s in ops.filter.severities] == [Severity, Severity]
    assert [type(s) for s in ops.filter.lifecycles] == [Lifecycle, Lifecycle]
    plain = subscriptions[0]
    assert isinstance(plain, Subscription)
    assert plain.filter == SubscriptionFilter()
    first = deliveries[0]
    assert isinstance(first, Delivery)
    assert first.next_attempt_at is None
    assert first.delivered_at is None
    assert first.last_status is None
    assert type(first.state) is DeliveryState
    assert type(first.lifecycle) is Lifecycle
    for a in alarms:
        assert isinstance(a, Alarm)
        assert {type(a.kind), type(a.severity), type(a.state), type(a.ack_state)} == {
            AlarmKind,
            Severity,
            AlarmState,
            AckState,
        }


async def test_records_of_a_kind_load_oldest_first_with_the_id_breaking_ties(store: SqlStore) -> None:
    same = T0 + timedelta(minutes=5)
    faults = [
        fault(3, opened_at=same),
        fault(1, opened_at=T0 + timedelta(minutes=9)),
        fault(2, opened_at=same),
        fault(4, opened_at=T0),
    ]
    events = [fault_event(n, received_at=T0 - timedelta(seconds=n)) for n in range(1, 6)]
    await store.save(batch_of(*faults, *events))

    assert [r.ident for r in await store.load_records(RecordKind.FAULT)] == ["fault-4", "fault-2", "fault-3", "fault-1"]
    assert [r.ident for r in await store.load_records(RecordKind.FAULT_EVENT)] == [
        "ev-005",
        "ev-004",
        "ev-003",
        "ev-002",
        "ev-001",
    ]


async def test_a_kind_with_nothing_stored_loads_an_empty_list(store: SqlStore) -> None:
    for kind in RecordKind:
        assert await store.load_records(kind) == []


# -- upserts, deletes and the shared transaction -----------------------------


async def test_an_upsert_replaces_a_stored_record(store: SqlStore) -> None:
    pending = delivery(1)
    await store.save(batch_of(pending, delivery(2)))
    done = dataclasses.replace(
        pending, state=DeliveryState.DELIVERED, attempts=1, delivered_at=T0 + timedelta(seconds=9), last_status=204
    )

    await store.save(batch_of(done))

    rows = await stored(store, RecordKind.DELIVERY)
    assert rows == {"dl-001": dataclasses.asdict(done), "dl-002": dataclasses.asdict(delivery(2))}


async def test_a_deleted_subscription_is_gone_and_the_rest_stay(store: SqlStore) -> None:
    kept, doomed = subscription(1), subscription(2, filter=SubscriptionFilter(severities=[Severity.MINOR]))
    await store.save(batch_of(kept, doomed, delivery(1, subscription=doomed.id)))
    assert set(await stored(store, RecordKind.SUBSCRIPTION)) == {"sub-1", "sub-2"}

    await store.save(ChangeBatch(deletes={(RecordKind.SUBSCRIPTION, doomed.id)}))

    assert await stored(store, RecordKind.SUBSCRIPTION) == {"sub-1": dataclasses.asdict(kept)}
    # The delivery log keeps what was sent to the subscription.
    assert [d.subscription for d in await store.deliveries()] == ["sub-2"]


async def test_a_merged_batch_that_creates_then_deletes_a_subscription_leaves_it_absent(store: SqlStore) -> None:
    merged = batch_of(subscription(1), subscription(2))
    merged.merge(ChangeBatch(deletes={(RecordKind.SUBSCRIPTION, "sub-2")}))

    await store.save(merged)

    assert list(await stored(store, RecordKind.SUBSCRIPTION)) == ["sub-1"]


async def test_records_and_resources_of_a_batch_are_written_together_or_not_at_all(store: SqlStore) -> None:
    first = ResourceEvent(1, T0, ResourceType.HOST, "compute-1", EventAction.UPDATED, {"forced_down": (False, True)})
    await store.save(batch_of(Host(HostName("compute-1")), events=[first]))
    host = Host(HostName("compute-1"), forced_down=True, in_maintenance=True)
    # The event reuses seq 1, so the transaction fails at its end, after every upsert ran.
    failing = batch_of(host, *every_kind(), events=[first])

    with pytest.raises(PermanentError) as refused:
        await store.save(failing)
    assert isinstance(refused.value.__cause__, DBAPIError)  # the driver's own error, refused for good

    for kind in RecordKind:
        assert await store.load_records(kind) == []
    assert [dataclasses.asdict(r) for r in (await store.load()).resources] == [
        dataclasses.asdict(Host(HostName("compute-1")))
    ]

    await store.save(batch_of(host, *every_kind()))
    assert len(await store.load_records(RecordKind.DELIVERY)) == 2
    assert (await store.load()).resources == [host]


async def test_a_batch_with_an_unknown_kind_is_refused_before_anything_is_written(store: SqlStore) -> None:
    batch = batch_of(subscription(1))
    batch.deletes.add(("nonsense", "x"))

    with pytest.raises(PermanentError, match="nonsense"):
        await store.save(batch)

    assert await store.load_records(RecordKind.SUBSCRIPTION) == []


# -- the new resource fields ---------------------------------------------------


async def test_host_maintenance_and_group_alarm_threshold_load_back(store: SqlStore) -> None:
    resting = Host(HostName("compute-1"), in_maintenance=True, admin_state=AdminState.DISABLED)
    working = Host(HostName("compute-2"))
    group = ServerGroup(GroupId("g-1"), "standby", ProjectId("p-1"), GroupPolicy.ANTI_AFFINITY, alarm_threshold=3)
    await store.save(batch_of(resting, working, group))

    loaded = {r.ident: r for r in (await store.load()).resources}

    assert loaded == {"compute-1": resting, "compute-2": working, "g-1": group}
    rested = loaded["compute-1"]
    assert isinstance(rested, Host)
    assert type(rested.in_maintenance) is bool


# -- upgrading a database from revision 0001 -----------------------------------


async def test_a_database_at_revision_0001_upgrades_keeping_its_rows_with_the_new_defaults(store_url: str) -> None:
    async with at_revision(store_url, "0001") as conn:
        await conn.execute(
            text(
                "INSERT INTO hosts (name, zone, switch, vcpus, admin_state, forced_down, reachable,"
                " disabled_reason) VALUES ('compute-1', 'nova', NULL, 16, 'disabled', true, false, 'old')"
            )
        )
        await conn.execute(
            text("INSERT INTO server_groups (id, name, project, policy) VALUES ('g-1', 'db', 'p-1', 'affinity')")
        )

    async with SqlStore(store_url) as store:
        resources = (await store.load()).resources
        revision, diff = await revision_and_diff(store)
        await store.save(batch_of(*every_kind()))
        assert len(await store.load_records(RecordKind.ALARM)) == 2

    assert revision == "0009"
    assert diff == []
    assert resources == [
        Host(
            HostName("compute-1"),
            zone="nova",
            vcpus=16,
            admin_state=AdminState.DISABLED,
            forced_down=True,
            reachable=False,
            disabled_reason="old",
            in_maintenance=False,
        ),
        ServerGroup(GroupId("g-1"), "db", ProjectId("p-1"), GroupPolicy.AFFINITY, alarm_threshold=1),
    ]


# -- the delivery log ----------------------------------------------------------


def delivery_log() -> list[Delivery]:
    """30 deliveries: every third shares its predecessor's created_at (ids break the tie)."""
    log = []
    for n in range(30):
        at = T0 + timedelta(seconds=n - (n % 3 == 2))
        log.append(
            delivery(
                n,
                created_at=at,
                subscription=SubscriptionId(f"sub-{n % 2}"),
                fault=FaultId(f"fault-{n % 3}") if n % 5 else None,
                project=f"project-{n % 4}" if n % 4 else None,
                state=(DeliveryState.PENDING, DeliveryState.DELIVERED, DeliveryState.FAILED)[n % 3],
            )
        )
    return log


async def test_deliveries_page_in_created_order_with_ids_breaking_ties(store: SqlStore) -> None:
    log = delivery_log()
    await store.save(batch_of(*reversed(log)))
    expected = [d.id for d in sorted(log, key=lambda d: (d.created_at, d.id))]

    pages: list[list[str]] = []
    after: str | None = None
    while page := await store.deliveries(after=after, limit=7):
        pages.append([d.id for d in page])
        after = page[-1].id

    assert [len(p) for p in pages] == [7, 7, 7, 7, 2]
    assert [i for p in pages for i in p] == expected
    assert as_dicts(await store.deliveries(limit=100)) == as_dicts(sorted(log, key=lambda d: (d.created_at, d.id)))


async def test_delivery_filters_combine_and_page(store: SqlStore) -> None:
    log = delivery_log()
    await store.save(batch_of(*log))
    by_created = sorted(log, key=lambda d: (d.created_at, d.id))

    async def ids(**filters: Any) -> list[str]:
        return [d.id for d in await store.deliveries(limit=100, **filters)]

    def where(test: Any) -> list[str]:
        return [d.id for d in by_created if test(d)]

    assert await ids(state="PENDING") == where(lambda d: d.state is DeliveryState.PENDING)
    assert await ids(state=DeliveryState.FAILED) == where(lambda d: d.state is DeliveryState.FAILED)
    assert await ids(subscription="sub-1") == where(lambda d: d.subscription == "sub-1")
    assert await ids(fault="fault-2") == where(lambda d: d.fault == "fault-2")
    assert await ids(project="project-3") == where(lambda d: d.project == "project-3")
    both = where(lambda d: d.subscription == "sub-0" and d.state is DeliveryState.PENDING)
    assert await ids(subscription="sub-0", state="PENDING") == both
    assert len(both) > 2
    assert await ids(subscription="sub-0", state="PENDING", after=both[1]) == both[2:]
    assert await ids(project="nobody") == []
    assert await ids(after="no-such-delivery") == []


async def test_pending_deliveries_are_the_outbox_to_resume(store: SqlStore) -> None:
    log = delivery_log()
    await store.save(batch_of(*log))

    pending = await store.deliveries(state=DeliveryState.PENDING, limit=1_000_000)

    assert {d.id for d in pending} == {d.id for d in log if d.state is DeliveryState.PENDING}
    assert all(isinstance(d, Delivery) and d.state is DeliveryState.PENDING for d in pending)


async def test_record_queries_refuse_a_limit_below_one(store: SqlStore) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.deliveries(limit=0)
    with pytest.raises(ValueError, match="limit"):
        await store.fault_events(limit=0)


# -- the fault-event log -------------------------------------------------------


async def test_fault_events_come_newest_first_filtered_by_outcome(store: SqlStore) -> None:
    opened, duplicate, cleared = Outcome.FAULT_OPENED, Outcome.DUPLICATE, Outcome.FAULT_CLEARED
    outcomes = [opened, duplicate, Outcome.NOT_APPLIED, duplicate, opened, duplicate, cleared]
    events = [
        fault_event(n, outcome=outcome, received_at=T0 + timedelta(seconds=n // 2))
        for n, outcome in enumerate(outcomes)
    ]
    await store.save(batch_of(*events))
    newest_first = sorted(events, key=lambda e: (e.received_at, e.id), reverse=True)

    assert as_dicts(await store.fault_events()) == as_dicts(newest_first)
    assert [e.id for e in await store.fault_events(limit=3)] == [e.id for e in newest_first[:3]]
    assert [e.id for e in await store.fault_events(outcome="duplicate")] == ["ev-005", "ev-003", "ev-001"]
    assert [e.id for e in await store.fault_events(outcome="duplicate", limit=2)] == ["ev-005", "ev-003"]
    assert await store.fault_events(outcome="nothing") == []


async def test_a_fault_event_keeps_the_alarm_as_its_monitor_named_it(store: SqlStore) -> None:
    zabbix = {
        "name": "Zabbix agent on compute-1 is unreachable",
        "rawtext": "Zabbix agent on {HOST.NAME} ...",
        "severity": "HIGH",
    }
    await store.save(batch_of(fault_event(1, monitor="zabbix", alarm=zabbix), fault_event(2)))

    found = await store.fault_events_by_id(["ev-001", "ev-002"])

    assert (found["ev-001"].alarm, found["ev-002"].alarm) == (zabbix, {})


async def test_a_fault_event_journaled_at_revision_0006_upgrades_with_no_monitor_alarm(store_url: str) -> None:
    async with at_revision(store_url, "0006") as conn:
        await conn.execute(
            text(
                "INSERT INTO fault_events (id, time, type, hostname, status, monitor, monitor_event_id, received_at,"
                " outcome, seq) VALUES ('ev-1', :t, 'compute.host.down', 'compute-1', 'down', 'zabbix', 'z1', :t,"
                " 'accepted', 1)"
            ),
            {"t": T0},
        )
    async with SqlStore(store_url) as store:
        [pending] = await store.journal_pending()

    assert (pending.id, pending.alarm) == ("ev-1", {})


def test_every_record_kind_has_a_table() -> None:
    assert set(RECORD_TABLES) == set(RecordKind)
