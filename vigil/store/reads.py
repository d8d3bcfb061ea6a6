"""The store's reads beyond the resource map: the history an admin pages through, and what a
start needs of it.

:class:`Reads` is a part of :class:`vigil.store.sql.SqlStore`: every list is
filtered, ordered and paged in the database (``limit``, and ``marker`` the id
of the last item of the previous page; the event log pages by ``seq``), so no
answer and no memory grows with history. What a start loads is bounded the
same way: only the open faults and alarms (:meth:`Reads.open_records`), the
journal's unapplied tail and the newest dedup keys.
"""

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, and_, exists, func, literal, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from vigil.domain.alarms import Alarm, AlarmState
from vigil.domain.deliveries import Delivery
from vigil.domain.events import EventAction, ResourceEvent
from vigil.domain.faults import DedupKey, Fault, FaultEvent, FaultState, Outcome, dedup_key
from vigil.domain.ids import ProjectId
from vigil.domain.maintenance import GroupConstraints, InstanceConstraints, MaintenanceSession
from vigil.domain.model import ResourceType
from vigil.domain.records import Record, RecordKind
from vigil.store.schema import RECORD_TABLES, TableSpec, resource_events

# Rows per IN (...) list when looking records up by id.
MAX_IDS = 10_000


class Reads:
    """The queries of :class:`~vigil.store.sql.SqlStore` (which provides ``engine``)."""

    @property
    def engine(self) -> AsyncEngine:
        raise NotImplementedError

    async def load_records(self, kind: RecordKind) -> list[Record]:
        """Every stored record of a kind, oldest first (by its time field, if it has one, then its key)."""
        spec = RECORD_TABLES[kind]
        c = spec.table.c
        query = select(spec.table).order_by(*(c[name] for name in spec.order), c[spec.key])
        return await self._select(spec, query)

    async def deliveries(
        self,
        *,
        state: str | None = None,
        subscription: str | None = None,
        fault: str | None = None,
        project: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """Deliveries that match every filter given, by ``created_at`` then id, at most ``limit``.

        Page by passing the last id of one page as ``after`` of the next; an
        ``after`` that names no delivery gives an empty page.
        """
        _check_limit(limit)
        spec = RECORD_TABLES[RecordKind.DELIVERY]
        c = spec.table.c
        query = select(spec.table).order_by(c.created_at, c.id).limit(limit)
        for column, value in (("state", state), ("subscription", subscription), ("fault", fault), ("project", project)):
            if value is not None:
                query = query.where(c[column] == value)
        return cast(list[Delivery], await self._select(spec, _after(query, c.created_at, c.id, after)))

    async def delivery(self, ident: str) -> Delivery | None:
        """One delivery of the log by id, if there is one."""
        spec = RECORD_TABLES[RecordKind.DELIVERY]
        found = await self._select(spec, select(spec.table).where(spec.table.c.id == ident))
        return cast(Delivery, found[0]) if found else None

    async def fault_events(
        self, *, limit: int = 100, outcome: str | None = None, marker: str | None = None
    ) -> list[FaultEvent]:
        """The newest fault events (by when Vigil received them), with the given outcome if any,
        older than the one ``marker`` names."""
        _check_limit(limit)
        spec = RECORD_TABLES[RecordKind.FAULT_EVENT]
        c = spec.table.c
        query = select(spec.table).order_by(c.received_at.desc(), c.id.desc()).limit(limit)
        if outcome is not None:
            query = query.where(c.outcome == outcome)
        query = _after(query, c.received_at, c.id, marker, descending=True)
        return cast(list[FaultEvent], await self._select(spec, query))

    async def journal_pending(self) -> list[FaultEvent]:
        """The reports journaled but not yet applied (outcome ``accepted``), in journal order."""
        spec = RECORD_TABLES[RecordKind.FAULT_EVENT]
        c = spec.table.c
        query = select(spec.table).where(c.outcome == Outcome.ACCEPTED).order_by(c.seq)
        return cast(list[FaultEvent], await self._select(spec, query))

    async def journal_state(self, keys: int) -> tuple[int, list[DedupKey]]:
        """The journal's last seq, and the dedup keys ``(monitor, monitor_event_id, time)`` of the
        newest ``keys`` reports that were taken in (not refused), oldest first."""
        c = RECORD_TABLES[RecordKind.FAULT_EVENT].table.c
        refused = (Outcome.UNKNOWN_HOST, Outcome.NOT_APPLIED)
        query = (
            select(c.monitor, c.monitor_event_id, c.time)
            .where(c.outcome.not_in(refused))
            .order_by(c.received_at.desc(), c.seq.desc())
            .limit(keys)
        )
        async with self.engine.connect() as conn:
            last = await conn.scalar(select(func.coalesce(func.max(c.seq), 0)))
            rows = (await conn.execute(query)).all()
        return int(last or 0), [dedup_key(row[0], row[1], row[2]) for row in reversed(rows)]

    async def fault_events_by_id(self, ids: Iterable[str]) -> dict[str, FaultEvent]:
        """The fault events with these ids, by id (missing ones are left out)."""
        wanted = sorted(set(ids))
        spec = RECORD_TABLES[RecordKind.FAULT_EVENT]
        found: dict[str, FaultEvent] = {}
        for chunk in (wanted[i : i + MAX_IDS] for i in range(0, len(wanted), MAX_IDS)):
            query = select(spec.table).where(spec.table.c.id.in_(chunk))
            for found_event in cast(list[FaultEvent], await self._select(spec, query)):
                found[found_event.id] = found_event
        return found

    async def maintenance_sessions(self) -> list[MaintenanceSession]:
        """Every stored maintenance session, oldest first (by ``created_at``, then id), finished ones too."""
        return cast(list[MaintenanceSession], await self.load_records(RecordKind.MAINTENANCE_SESSION))

    async def instance_constraints(self) -> list[InstanceConstraints]:
        """Every stored instance's FEAT03 constraints, by instance id."""
        return cast(list[InstanceConstraints], await self.load_records(RecordKind.INSTANCE_CONSTRAINTS))

    async def group_constraints(self) -> list[GroupConstraints]:
        """Every stored instance group's FEAT03 constraints, by group id."""
        return cast(list[GroupConstraints], await self.load_records(RecordKind.GROUP_CONSTRAINTS))

    async def _select(self, spec: TableSpec[Record], query: Select[Any]) -> list[Record]:
        async with self.engine.connect() as conn:
            result = await conn.execute(query)
            return [spec.from_row(row) for row in result]

    # -- reading the event log ---------------------------------------------

    async def events(
        self,
        *,
        after_seq: int = 0,
        resource_type: str | None = None,
        resource_id: str | None = None,
        project: str | None = None,
        reasons: Sequence[str] = (),
        limit: int = 100,
    ) -> list[ResourceEvent]:
        """Events with ``seq > after_seq`` that match every filter given, oldest first, at most ``limit``;
        ``reasons``: only those whose reason starts with one of them.

        Page through the log by passing the last ``seq`` of one page as ``after_seq`` of the next.
        """
        _check_limit(limit)
        c = resource_events.c
        query = select(resource_events).where(c.seq > after_seq).order_by(c.seq).limit(limit)
        if resource_type is not None:
            query = query.where(c.resource_type == resource_type)
        if resource_id is not None:
            query = query.where(c.resource_id == resource_id)
        if project is not None:
            query = query.where(c.project == project)
        if reasons:
            query = query.where(or_(*(c.reason.startswith(r, autoescape=True) for r in reasons)))
        async with self.engine.connect() as conn:
            result = await conn.execute(query)
            return [_event_from_row(row._mapping) for row in result]

    async def alarms(
        self,
        *,
        project: str | None = None,
        admin: bool = True,
        resource_id: str | None = None,
        severity: str | None = None,
        state: str | None = None,
        kind: str | None = None,
        marker: str | None = None,
        limit: int = 100,
    ) -> list[Alarm]:
        """Alarms in raise order (``raised_at``, then id) that match every filter, at most ``limit``,
        after the alarm ``marker`` names. A non-admin sees only ``project``'s alarms;
        ``resource_id`` matches the alarm's resource or one of its affected resources."""
        _check_limit(limit)
        spec = RECORD_TABLES[RecordKind.ALARM]
        c = spec.table.c
        query = select(spec.table).order_by(c.raised_at, c.id).limit(limit)
        if not admin or project is not None:
            query = query.where(c.project == project)
        for column, value in (("severity", severity), ("state", state), ("kind", kind)):
            if value is not None:
                query = query.where(c[column] == value)
        if resource_id is not None:
            query = query.where(or_(c.resource_id == resource_id, self._json_has(c.resource_ids, resource_id)))
        query = _after(query, c.raised_at, c.id, marker)
        return cast(list[Alarm], await self._select(spec, query))

    async def alarm(self, ident: str) -> Alarm | None:
        return cast(Alarm | None, await self._one(RecordKind.ALARM, ident))

    async def faults(self, *, state: str | None = None, marker: str | None = None, limit: int = 100) -> list[Fault]:
        """Faults in the order they opened (``opened_at``, then id), at most ``limit``, after ``marker``."""
        _check_limit(limit)
        spec = RECORD_TABLES[RecordKind.FAULT]
        c = spec.table.c
        query = select(spec.table).order_by(c.opened_at, c.id).limit(limit)
        if state is not None:
            query = query.where(c.state == state)
        return cast(list[Fault], await self._select(spec, _after(query, c.opened_at, c.id, marker)))

    async def fault(self, ident: str) -> Fault | None:
        return cast(Fault | None, await self._one(RecordKind.FAULT, ident))

    async def open_records(self, kind: RecordKind) -> list[Record]:
        """The ACTIVE faults, or the ACTIVE alarms, oldest first: what a start keeps in memory."""
        spec = RECORD_TABLES[kind]
        c = spec.table.c
        active = FaultState.ACTIVE if kind is RecordKind.FAULT else AlarmState.ACTIVE
        query = select(spec.table).where(c.state == active).order_by(*(c[n] for n in spec.order), c[spec.key])
        return await self._select(spec, query)

    def _json_has(self, column: Any, value: str) -> ColumnElement[bool]:
        """Whether the JSON list in ``column`` holds ``value``."""
        if self.engine.dialect.name == "postgresql":
            return column.cast(JSONB).contains([value])  # type: ignore[no-any-return]
        items = func.json_each(column).table_valued("value")
        return exists(select(literal(1)).select_from(items).where(items.c.value == value))

    async def _one(self, kind: RecordKind, ident: str) -> Record | None:
        spec = RECORD_TABLES[kind]
        found = await self._select(spec, select(spec.table).where(spec.table.c[spec.key] == ident))
        return found[0] if found else None


def _after(
    query: Select[Any], time_column: Any, id_column: Any, marker: str | None, *, descending: bool = False
) -> Select[Any]:
    """Rows after the one ``marker`` names, in (time, id) order; none if it names no row."""
    if marker is None:
        return query
    since = select(time_column).where(id_column == marker).scalar_subquery()
    if descending:
        return query.where(or_(time_column < since, and_(time_column == since, id_column < marker)))
    return query.where(or_(time_column > since, and_(time_column == since, id_column > marker)))


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")


def _event_from_row(row: Any) -> ResourceEvent:
    # JSON has no tuples: each change comes back as a two-item list.
    changes = {name: (old, new) for name, (old, new) in row["changes"].items()}
    return ResourceEvent(
        seq=row["seq"],
        time=row["time"],
        resource_type=ResourceType(row["resource_type"]),
        resource_id=row["resource_id"],
        action=EventAction(row["action"]),
        changes=changes,
        project=ProjectId(row["project"]) if row["project"] is not None else None,
        reason=row["reason"],
    )
