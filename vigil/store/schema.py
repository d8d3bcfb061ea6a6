"""The store's tables, and the one mapping between their rows and the domain.

One table per resource type, whose columns are the dataclass's fields with
the same names and in the same order, so :func:`to_row` and :func:`from_row`
convert any resource generically (the :data:`RESOURCE_TABLES` registry says
which table holds which type and which columns hold str enums to coerce back
on load). ``resource_events`` is the event log, keyed by the controller's
``seq``.

There are no foreign keys. The resource map already refuses dangling
references before a change is made, and :meth:`vigil.store.sql.SqlStore.save`
writes a whole batch in one transaction, upserting parents first and deleting
children first; database-side checks would only add a lookup per row to
bootstraps of hundreds of thousands of rows, and would force an order on
merged batches that the map has already made consistent.

This module describes the *current* schema; the database is brought to it by
the Alembic revisions in ``migrations/versions`` (which are frozen history and
do not import this module). A test compares the two, so they cannot drift.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    TypeDecorator,
)

from vigil.domain.model import (
    Host,
    Instance,
    Port,
    Project,
    Resource,
    ResourceType,
    ServerGroup,
    Switch,
)
from vigil.domain.states import AdminState, DataPlaneStatus, GroupPolicy, InstanceState


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp that comes back aware and in UTC on every database.

    PostgreSQL keeps the offset (``timestamptz``); SQLite stores text without
    it, so values are normalised to UTC on the way in and tagged UTC on the
    way out. Naive datetimes are refused: a time without a zone is a bug.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps aware times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData()

switches = Table(
    "switches",
    metadata,
    Column("name", String, primary_key=True),
)

hosts = Table(
    "hosts",
    metadata,
    Column("name", String, primary_key=True),
    Column("zone", String, nullable=False),
    Column("switch", String, nullable=True),
    Column("vcpus", Integer, nullable=False),
    Column("admin_state", String, nullable=False),
    Column("forced_down", Boolean, nullable=False),
    Column("reachable", Boolean, nullable=False),
    Column("disabled_reason", String, nullable=True),
)

projects = Table(
    "projects",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
)

server_groups = Table(
    "server_groups",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("project", String, nullable=False),
    Column("policy", String, nullable=False),
)

instances = Table(
    "instances",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("project", String, nullable=False),
    Column("host", String, nullable=True),
    Column("vcpus", Integer, nullable=False),
    Column("state", String, nullable=False),
    Column("group", String, nullable=True),
    Column("metadata", JSON, nullable=False),
    Column("migrating_to", String, nullable=True),
)

ports = Table(
    "ports",
    metadata,
    Column("id", String, primary_key=True),
    Column("instance", String, nullable=False),
    Column("project", String, nullable=False),
    Column("host", String, nullable=True),
    Column("network", String, nullable=False),
    Column("data_plane_status", String, nullable=False),
)

resource_events = Table(
    "resource_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("time", UtcDateTime, nullable=False),
    Column("resource_type", String, nullable=False),
    Column("resource_id", String, nullable=False),
    Column("action", String, nullable=False),
    Column("project", String, nullable=True),
    Column("reason", String, nullable=True),
    Column("changes", JSON, nullable=False),
    Index("ix_resource_events_resource", "resource_type", "resource_id"),
    Index("ix_resource_events_project", "project"),
)


@dataclass(frozen=True, slots=True)
class ResourceTable:
    """Where one resource type lives and how its rows become dataclasses again."""

    kind: ResourceType
    table: Table
    cls: type[Resource]
    key: str
    enums: Mapping[str, type[StrEnum]]
    columns: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(c.name for c in self.table.columns))


# Parents before children: the order of upserts and of loading (deletes run reversed).
RESOURCE_TABLES: dict[ResourceType, ResourceTable] = {
    t.kind: t
    for t in (
        ResourceTable(ResourceType.SWITCH, switches, Switch, "name", {}),
        ResourceTable(ResourceType.HOST, hosts, Host, "name", {"admin_state": AdminState}),
        ResourceTable(ResourceType.PROJECT, projects, Project, "id", {}),
        ResourceTable(ResourceType.SERVER_GROUP, server_groups, ServerGroup, "id", {"policy": GroupPolicy}),
        ResourceTable(ResourceType.INSTANCE, instances, Instance, "id", {"state": InstanceState}),
        ResourceTable(ResourceType.PORT, ports, Port, "id", {"data_plane_status": DataPlaneStatus}),
    )
}


def check_tables() -> None:
    """Raise if a table's columns are not its dataclass's fields, by name and order."""
    for spec in RESOURCE_TABLES.values():
        names = [f.name for f in fields(spec.cls)]
        if names != list(spec.columns):
            raise TypeError(f"table {spec.table.name} has columns {list(spec.columns)}, {spec.kind} has {names}")


def to_row(resource: Resource, columns: Sequence[str]) -> dict[str, Any]:
    """The row for a resource: its fields by column name (enums bind as their str value)."""
    return {name: getattr(resource, name) for name in columns}


def row_converter(spec: ResourceTable) -> Callable[[Sequence[Any]], Resource]:
    """A function that builds the dataclass from a row of ``spec.table`` (columns in table order)."""
    cls = spec.cls
    coerce = [(i, spec.enums[name]) for i, name in enumerate(spec.columns) if name in spec.enums]
    if not coerce:
        return lambda row: cls(*row)

    def convert(row: Sequence[Any]) -> Resource:
        values = list(row)
        for i, enum in coerce:
            values[i] = enum(values[i])
        return cls(*values)

    return convert


check_tables()
