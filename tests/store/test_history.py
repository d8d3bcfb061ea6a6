"""History in the store: paged reads, what a start loads, and retention (finding 8).

Seen before: memory and the database grew by about 5 KiB and 14.5 KiB per
fault cycle, nothing was pruned, ``GET /v1/alarms`` and ``/v1/faults``
ignored ``limit`` and ``marker`` (10.6 MB in one answer after 5,000 cycles),
and a restart loaded every fault and alarm ever raised. Now the history is
read from the store a page at a time, a start loads only what is open, and
history older than the retention period is pruned, never what is still open
or owed. On SQLite and PostgreSQL.
"""

from datetime import timedelta

from test_records import T0, alarm, batch_of, delivery, fault, fault_event

from vigil.controller.ports import ChangeBatch
from vigil.domain.alarms import AlarmState
from vigil.domain.deliveries import DeliveryState
from vigil.domain.events import EventAction, ResourceEvent
from vigil.domain.faults import FaultState, Outcome
from vigil.domain.findings import HostFindings
from vigil.domain.model import ResourceType
from vigil.domain.records import RecordKind
from vigil.store.sql import SqlStore

CLEARED_AT = T0 + timedelta(hours=1)


async def test_alarms_page_by_marker_in_raise_order_with_filters(store: SqlStore) -> None:
    alarms = [
        alarm(
            n,
            project="p1" if n % 2 else "p2",
            resource_id=f"group-{n}",
            resource_ids=[f"vm-{n}", "vm-shared"] if n % 3 == 0 else [f"vm-{n}"],
        )
        for n in range(1, 11)
    ]
    await store.save(batch_of(*alarms))
    first = await store.alarms(limit=4)
    second = await store.alarms(limit=4, marker=first[-1].id)
    rest = await store.alarms(limit=4, marker=second[-1].id)
    assert [a.id for a in first + second + rest] == [a.id for a in alarms]
    assert len(rest) == 2
    assert [a.id for a in await store.alarms(project="p1", admin=False)] == [a.id for a in alarms if a.project == "p1"]
    assert [a.id for a in await store.alarms(resource_id="vm-shared")] == ["alarm-3", "alarm-6", "alarm-9"]
    assert [a.id for a in await store.alarms(resource_id="vm-1")] == ["alarm-1"]
    assert [a.id for a in await store.alarms(resource_id="group-2")] == ["alarm-2"]  # its own resource too
    assert await store.alarms(marker="no-such-alarm") == []
    assert (await store.alarm("alarm-7")) == alarms[6]
    assert await store.alarm("nothing") is None


async def test_faults_and_fault_events_page_by_marker(store: SqlStore) -> None:
    faults = [fault(n) for n in range(1, 8)]
    events = [fault_event(n) for n in range(1, 8)]
    await store.save(batch_of(*faults, *events))
    page = await store.faults(limit=3)
    assert [f.id for f in page + await store.faults(limit=10, marker=page[-1].id)] == [f.id for f in faults]
    newest = await store.fault_events(limit=3)
    older = await store.fault_events(limit=10, marker=newest[-1].id)
    assert [e.id for e in newest + older] == [e.id for e in reversed(events)]


async def test_a_start_loads_only_the_open_faults_and_alarms(store: SqlStore) -> None:
    cleared = {"state": FaultState.CLEARED, "cleared_at": CLEARED_AT}
    await store.save(
        batch_of(
            fault(1),
            fault(2, **cleared),
            alarm(1),
            alarm(2, state=AlarmState.CLEARED, cleared_at=CLEARED_AT),
        )
    )
    assert [f.ident for f in await store.open_records(RecordKind.FAULT)] == ["fault-1"]
    assert [a.ident for a in await store.open_records(RecordKind.ALARM)] == ["alarm-1"]


async def test_retention_prunes_old_history_but_nothing_open_or_owed(store: SqlStore) -> None:
    old_clear = {"state": FaultState.CLEARED, "cleared_at": T0}
    late_clear = {"state": FaultState.CLEARED, "cleared_at": T0 + timedelta(days=40)}
    named = fault_event(5, outcome=Outcome.HELD)
    batch = batch_of(
        fault(1, **old_clear),
        fault(2, **late_clear),
        fault(3),  # open: kept however old
        alarm(1, state=AlarmState.CLEARED, cleared_at=T0),
        alarm(2),  # open
        fault_event(1, outcome=Outcome.FAULT_OPENED, seq=1),
        fault_event(4, outcome=Outcome.FAULT_OPENED),  # recorded before there was a journal (no seq)
        fault_event(6, outcome=Outcome.FAULT_CLEARED, seq=6),  # old, but the journal's newest seq: kept
        fault_event(2, outcome=Outcome.ACCEPTED),  # still journaled: kept
        fault_event(3, outcome=Outcome.DUPLICATE, received_at=T0 + timedelta(days=40)),
        named,  # a held recovery names it: kept
        delivery(1, state=DeliveryState.DELIVERED),
        delivery(2, state=DeliveryState.PENDING),  # still owed: kept
        delivery(3, state=DeliveryState.FAILED),
        HostFindings("compute-1", held={"compute.host": named.id}),
    )
    batch.events = [
        ResourceEvent(1, T0, ResourceType.HOST, "compute-1", EventAction.UPDATED, {"forced_down": (False, True)}),
        ResourceEvent(2, T0 + timedelta(days=40), ResourceType.HOST, "compute-1", EventAction.UPDATED, {}),
        ResourceEvent(3, T0, ResourceType.HOST, "compute-1", EventAction.UPDATED, {}),  # old, but the newest seq
    ]
    await store.save(batch)

    pruned = await store.prune(T0 + timedelta(days=30), chunk=1)
    assert pruned == {"faults": 1, "alarms": 1, "fault_events": 2, "deliveries": 2, "resource_events": 1}
    assert sorted(f.ident for f in await store.load_records(RecordKind.FAULT)) == ["fault-2", "fault-3"]
    assert [a.ident for a in await store.load_records(RecordKind.ALARM)] == ["alarm-2"]
    kept = sorted(e.ident for e in await store.load_records(RecordKind.FAULT_EVENT))
    assert kept == ["ev-002", "ev-003", "ev-005", "ev-006"]
    assert [d.ident for d in await store.load_records(RecordKind.DELIVERY)] == ["dl-002"]
    assert [e.seq for e in await store.events()] == [2, 3]  # the newest seq stays: numbering goes on from it
    assert await store.prune(T0 + timedelta(days=30)) == dict.fromkeys(pruned, 0)
    assert await store.save(ChangeBatch()) is None
