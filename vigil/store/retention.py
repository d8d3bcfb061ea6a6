"""Retention: history older than the retention period is deleted, a chunk at a time.

What is kept forever would make memory, disk and restarts grow with every
fault cycle. :func:`prune` deletes, older than a cut-off:

* cleared faults (by ``cleared_at``) and cleared alarms (by ``cleared_at``);
* fault events (by ``received_at``) that are applied (never one the journal
  still holds ``accepted``) and that no host's findings still name;
* finished deliveries (by ``created_at``; a PENDING one is still owed);
* resource events (by ``time``).

The newest fault event and resource event are always kept: their ``seq`` is
where the journal's and the event log's numbering goes on after a restart.

Open faults and alarms, pending deliveries, and the resources themselves are
never pruned. Each chunk is its own short transaction, so a prune never holds
the writer for long. ``vigil.wiring`` runs it at start and then hourly, for
``store.retention_days`` (30 by default).
"""

from datetime import datetime
from functools import partial
from typing import Any, Protocol

from sqlalchemy import Connection, and_, delete, func, or_, select

from vigil.domain.alarms import AlarmState
from vigil.domain.deliveries import DeliveryState
from vigil.domain.faults import FaultState, Outcome
from vigil.domain.records import RecordKind
from vigil.store.schema import RECORD_TABLES, resource_events


class Writer(Protocol):
    async def in_write_transaction(self, work: Any) -> Any: ...


def _targets(before: datetime, named: set[str]) -> list[tuple[str, Any, Any]]:
    """(name, table key column, condition) of each kind of history to prune; ``named``: the
    events some host's findings still name (suppressed or held), never pruned."""
    faults = RECORD_TABLES[RecordKind.FAULT].table.c
    alarms = RECORD_TABLES[RecordKind.ALARM].table.c
    events = RECORD_TABLES[RecordKind.FAULT_EVENT].table.c
    deliveries = RECORD_TABLES[RecordKind.DELIVERY].table.c
    return [
        ("faults", faults.id, and_(faults.state == FaultState.CLEARED, faults.cleared_at < before)),
        ("alarms", alarms.id, and_(alarms.state == AlarmState.CLEARED, alarms.cleared_at < before)),
        (
            "fault_events",
            events.id,
            and_(
                events.received_at < before,
                events.outcome != Outcome.ACCEPTED,
                events.id.not_in(sorted(named)),
                or_(events.seq.is_(None), events.seq < _newest(events.seq)),  # no seq: from before the journal
            ),
        ),
        ("deliveries", deliveries.id, and_(deliveries.state != DeliveryState.PENDING, deliveries.created_at < before)),
        (
            "resource_events",
            resource_events.c.seq,
            and_(resource_events.c.time < before, resource_events.c.seq < _newest(resource_events.c.seq)),
        ),
    ]


def _newest(seq: Any) -> Any:
    """The highest seq: its row is kept, so the numbering goes on from it after a restart."""
    return select(func.max(seq)).scalar_subquery()


async def prune(store: Writer, before: datetime, *, chunk: int = 5_000) -> dict[str, int]:
    """Delete history older than ``before``; return how many rows of each kind went."""
    counts: dict[str, int] = {}
    named = await store.in_write_transaction(_findings_events)
    for name, key, condition in _targets(before, named):
        total = 0
        while True:
            removed = await store.in_write_transaction(
                partial(_delete_chunk, key=key, condition=condition, chunk=chunk)
            )
            total += removed
            if removed < chunk:
                break
        counts[name] = total
    return counts


def _delete_chunk(conn: Connection, *, key: Any, condition: Any, chunk: int) -> int:
    ids = [row[0] for row in conn.execute(select(key).where(condition).limit(chunk))]
    if not ids:
        return 0
    conn.execute(delete(key.table).where(key.in_(ids)))
    return len(ids)


def _findings_events(conn: Connection) -> set[str]:
    """The events some host's findings still name (suppressed or held): never pruned."""
    table = RECORD_TABLES[RecordKind.HOST_FINDINGS].table
    named: set[str] = set()
    for row in conn.execute(select(table.c.suppressed, table.c.held)):
        for mapping in row:
            named.update((mapping or {}).values())
    return named
