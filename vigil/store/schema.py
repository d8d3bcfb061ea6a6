"""The store's tables, and the one mapping between their rows and the domain.

One table per resource type and per record kind (faults, alarms,
subscriptions, deliveries, maintenance sessions and constraints:
:class:`vigil.domain.records.RecordKind`), whose
columns are the dataclass's fields with the same names and in the same order.
A :class:`TableSpec` per kind says which table holds it, its key column, which
columns hold str enums to coerce back on load, and which need a
:class:`Codec` (a nested dataclass kept as one JSON object, such as a
subscription's filter with its lists of enums, or a maintenance session's
per-host and per-project progress, a JSON object of such objects by name);
from that it converts any object to a row and back generically.
:data:`TABLES` is the registry by kind. Lists and dicts of plain values are
JSON columns that need no codec, times are :class:`UtcDateTime` (and, inside
JSON, ISO 8601 strings in UTC), integers are 64-bit (``BigInteger``: whatever
the API accepts fits, ``vigil.domain.limits``). ``resource_events`` is the event log, keyed by the
controller's ``seq``; ``store_lease`` names the writer (``vigil.store.lease``);
``log_marks`` says how far a follower of the event log has acted on it (the
OpenStack fault pusher: ``vim.push``).

There are no foreign keys. The resource map already refuses dangling
references before a change is made, and :meth:`vigil.store.sql.SqlStore.save`
writes a whole batch in one transaction, upserting parents first and deleting
children first; database-side checks would only add a lookup per row to
bootstraps of hundreds of thousands of rows, and would force an order on
merged batches that the map has already made consistent. Records refer to
each other (a delivery to its alarm and subscription) by id only, for the
same reasons, and a delivery outlives a deleted subscription as history.

This module describes the *current* schema; the database is brought to it by
the Alembic revisions in ``migrations/versions`` (which are frozen history and
do not import this module). A test compares the two, so they cannot drift.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Double,
    Index,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
    text,
)

from vigil.domain.alarms import AckState, Alarm, AlarmKind, AlarmState, Lifecycle
from vigil.domain.deliveries import Delivery, DeliveryState
from vigil.domain.faults import EventStatus, Fault, FaultEvent, FaultState, Outcome, Severity
from vigil.domain.findings import HostFindings
from vigil.domain.maintenance import (
    GroupConstraints,
    HostMaintenanceState,
    HostProgress,
    InstanceAction,
    InstanceConstraints,
    MaintenanceSession,
    ProjectProgress,
    ProjectState,
    SessionState,
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
from vigil.domain.records import Record, RecordKind
from vigil.domain.states import AdminState, DataPlaneStatus, GroupPolicy, InstanceState
from vigil.domain.subscriptions import Authentication, AuthType, PayloadFormat, Subscription, SubscriptionFilter


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
    Column("vcpus", BigInteger, nullable=False),
    Column("admin_state", String, nullable=False),
    Column("forced_down", Boolean, nullable=False),
    Column("reachable", Boolean, nullable=False),
    Column("disabled_reason", String, nullable=True),
    Column("in_maintenance", Boolean, nullable=False, server_default=false()),
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
    Column("alarm_threshold", BigInteger, nullable=False, server_default=text("1")),
)

instances = Table(
    "instances",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("project", String, nullable=False),
    Column("host", String, nullable=True),
    Column("vcpus", BigInteger, nullable=False),
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

# Who holds the store's writer lease (vigil.store.lease): one row, ``writer``.
store_lease = Table(
    "store_lease",
    metadata,
    Column("name", String, primary_key=True),
    Column("host", String, nullable=False),
    Column("pid", BigInteger, nullable=False),
    Column("since", UtcDateTime, nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),  # the leader's lease (vigil.store.leader); else empty
)

# How far a follower of the event log has acted on it: the ``seq`` of the last event done (one row per follower).
log_marks = Table(
    "log_marks",
    metadata,
    Column("name", String, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("at", UtcDateTime, nullable=False),
)


# The hosts the heartbeat monitor has heard from, with the timing they beat at: after a restart (or a takeover)
# each is expected to beat again, and one silent past the restart's grace is declared lost.
monitored_hosts = Table(
    "monitored_hosts",
    metadata,
    Column("host", String, primary_key=True),
    Column("interval_ms", Double, nullable=False),
    Column("mult", BigInteger, nullable=False),
    Column("since", UtcDateTime, nullable=False),
)


# -- records ----------------------------------------------------------------

fault_events = Table(
    "fault_events",
    metadata,
    Column("id", String, primary_key=True),
    Column("time", UtcDateTime, nullable=False),
    Column("type", String, nullable=False),
    Column("hostname", String, nullable=False),
    Column("status", String, nullable=False),
    Column("monitor", String, nullable=False),
    Column("monitor_event_id", String, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("severity", String, nullable=True),
    Column("cause", String, nullable=True),
    Column("related_to", String, nullable=True),
    Column("injected_at", Double, nullable=True),
    Column("outcome", String, nullable=False),
    Column("fault", String, nullable=True),
    Column("seq", BigInteger, nullable=True),
    Column("alarm", JSON, nullable=False),
    # Not unique: a repeated report is recorded too, as a duplicate.
    Index("ix_fault_events_monitor", "monitor", "monitor_event_id"),
    Index("ix_fault_events_received_at", "received_at"),
    Index("ix_fault_events_seq", "seq", unique=True),
    Index("ix_fault_events_outcome", "outcome"),  # a start reads the journal's unapplied tail by it
)

host_findings = Table(
    "host_findings",
    metadata,
    Column("host", String, primary_key=True),
    Column("failures", JSON, nullable=False),
    Column("suppressed", JSON, nullable=False),
    Column("held", JSON, nullable=False),
)

faults = Table(
    "faults",
    metadata,
    Column("id", String, primary_key=True),
    Column("type", String, nullable=False),
    Column("resource_type", String, nullable=False),
    Column("resource_id", String, nullable=False),
    Column("severity", String, nullable=False),
    Column("state", String, nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("cleared_at", UtcDateTime, nullable=True),
    Column("events", JSON, nullable=False),
    Column("hosts", JSON, nullable=False),
    Column("instances", JSON, nullable=False),
    Column("checkpoints", JSON, nullable=False),
    Index("ix_faults_state", "state"),
)

alarms = Table(
    "alarms",
    metadata,
    Column("id", String, primary_key=True),
    Column("kind", String, nullable=False),
    Column("project", String, nullable=True),
    Column("resource_type", String, nullable=False),
    Column("resource_id", String, nullable=False),
    Column("severity", String, nullable=False),
    Column("state", String, nullable=False),
    Column("ack_state", String, nullable=False),
    Column("fault", String, nullable=False),
    Column("raised_at", UtcDateTime, nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("cleared_at", UtcDateTime, nullable=True),
    Column("version", BigInteger, nullable=False),
    Column("reason", String, nullable=False),
    Column("resource_ids", JSON, nullable=False),
    Column("details", JSON, nullable=False),
    Index("ix_alarms_project", "project"),
    Index("ix_alarms_fault", "fault"),
    Index("ix_alarms_state", "state"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String, primary_key=True),
    Column("project", String, nullable=False),
    Column("admin", Boolean, nullable=False),
    Column("callbacks", JSON, nullable=False),
    Column("format", String, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("filter", JSON, nullable=False),
    Column("name", String, nullable=False),
    Column("authentication", JSON, nullable=True),  # secrets: the database is the owner's only (0600)
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String, primary_key=True),
    Column("notification", String, nullable=False),
    Column("subscription", String, nullable=False),
    Column("url", String, nullable=False),
    Column("alarm", String, nullable=False),
    Column("alarm_version", BigInteger, nullable=False),
    Column("lifecycle", String, nullable=False),
    Column("project", String, nullable=True),
    Column("fault", String, nullable=True),
    Column("body", Text, nullable=False),
    Column("state", String, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("attempts", BigInteger, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("delivered_at", UtcDateTime, nullable=True),
    Column("last_status", BigInteger, nullable=True),
    Column("last_error", String, nullable=True),
    Column("retry_since", UtcDateTime, nullable=True),
    Index("ix_deliveries_state", "state"),
    Index("ix_deliveries_subscription", "subscription"),
    Index("ix_deliveries_fault", "fault"),
    Index("ix_deliveries_created_at", "created_at", "id"),
)

# A session's hosts, metadata and actions are lists and dicts of plain values;
# its per-host and per-project progress are JSON objects keyed by host name and
# by project (see _HOST_PROGRESS and _PROJECT_PROGRESS).
maintenance_sessions = Table(
    "maintenance_sessions",
    metadata,
    Column("id", String, primary_key=True),
    Column("hosts", JSON, nullable=False),
    Column("state", String, nullable=False),
    Column("maintenance_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("workflow", String, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("actions", JSON, nullable=False),
    Column("reason", String, nullable=True),
    Column("migrations", BigInteger, nullable=False),
    Column("host_progress", JSON, nullable=False),
    Column("projects", JSON, nullable=False),
    Index("ix_maintenance_sessions_state", "state"),
    Index("ix_maintenance_sessions_created_at", "created_at", "id"),
)

instance_constraints = Table(
    "instance_constraints",
    metadata,
    Column("instance_id", String, primary_key=True),
    Column("project", String, nullable=False),
    Column("group_id", String, nullable=True),
    Column("max_interruption_time", Double, nullable=False),
    Column("migration_type", String, nullable=False),
    Column("resource_mitigation", Boolean, nullable=False),
    Column("lead_time", Double, nullable=False),
    Index("ix_instance_constraints_project", "project"),
    Index("ix_instance_constraints_group_id", "group_id"),
)

group_constraints = Table(
    "group_constraints",
    metadata,
    Column("group_id", String, primary_key=True),
    Column("project", String, nullable=False),
    Column("anti_affinity_group", Boolean, nullable=False),
    Column("max_instances_per_host", BigInteger, nullable=False),
    Column("max_impacted_members", BigInteger, nullable=False),
    Column("recovery_time", Double, nullable=False),
    Index("ix_group_constraints_project", "project"),
)


# -- the mapping ------------------------------------------------------------

Stored = Resource | Record
"""Anything kept in a table of its kind: a resource or a record."""

T = TypeVar("T", bound=Stored, covariant=True)


@dataclass(frozen=True, slots=True)
class Codec:
    """How a column differs from its field: ``encode`` makes the column value, ``decode`` the field's.

    Neither is called for None (a nullable column stays None both ways).
    """

    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def _encode_time(value: datetime) -> str:
    """An aware datetime as ISO 8601 in UTC (naive ones are refused, as by :class:`UtcDateTime`)."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the store keeps aware times only")
    return value.astimezone(UTC).isoformat()


def _decode_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def json_dataclass(
    cls: type[Any],
    enum_lists: Mapping[str, type[StrEnum]] | None = None,
    *,
    enums: Mapping[str, type[StrEnum]] | None = None,
    times: Sequence[str] = (),
) -> Codec:
    """A dataclass kept as one JSON object of its fields.

    ``enum_lists`` names fields that are lists of str enums, ``enums`` fields
    that are one str enum, and ``times`` fields that are aware datetimes (kept
    as ISO 8601 strings in UTC); a None in an enum or time field stays None.
    On load, keys the dataclass no longer has are dropped and missing ones take
    their defaults, so a field added later reads old rows.
    """
    names = tuple(f.name for f in fields(cls))
    unknown = (set(enum_lists or ()) | set(enums or ()) | set(times)) - set(names)
    if unknown:
        raise TypeError(f"{cls.__name__} has no fields {sorted(unknown)}")
    encoders: dict[str, Callable[[Any], Any]] = dict.fromkeys(enums or (), str)
    encoders.update(dict.fromkeys(times, _encode_time))
    decoders: dict[str, Callable[[Any], Any]] = dict(enums or {})
    decoders.update(dict.fromkeys(times, _decode_time))
    lists = dict(enum_lists or {})

    def encode(value: Any) -> dict[str, Any]:
        data = {n: getattr(value, n) for n in names}
        for n in lists:
            data[n] = [str(v) for v in data[n]]
        for n, convert in encoders.items():
            if data[n] is not None:
                data[n] = convert(data[n])
        return data

    def decode(data: Mapping[str, Any]) -> Any:
        values = {n: data[n] for n in names if n in data}
        for n, enum in lists.items():
            if n in values:
                values[n] = [enum(v) for v in values[n]]
        for n, convert in decoders.items():
            if values.get(n) is not None:
                values[n] = convert(values[n])
        return cls(**values)

    return Codec(encode, decode)


def json_dict_of(codec: Codec) -> Codec:
    """A dict whose values ``codec`` converts (such as progress by host name), kept as one JSON object."""

    def encode(value: Mapping[str, Any]) -> dict[str, Any]:
        return {key: codec.encode(item) for key, item in value.items()}

    def decode(data: Mapping[str, Any]) -> dict[str, Any]:
        return {key: codec.decode(item) for key, item in data.items()}

    return Codec(encode, decode)


@dataclass(frozen=True)  # no slots: typing sets __orig_class__ on TableSpec[X](...) instances
class TableSpec(Generic[T]):
    """Where one kind lives and how its objects become rows and rows become objects again.

    ``enums`` are str-enum columns (coerced back on load), ``codecs`` the
    columns a :class:`Codec` converts, and ``order`` the columns a whole kind
    is loaded in (the key breaks ties). :meth:`to_row` and :meth:`from_row`
    are built once here, so the per-row work is a getattr per column.
    """

    kind: ResourceType | RecordKind
    table: Table
    cls: type[T]
    key: str
    enums: Mapping[str, type[StrEnum]] = field(default_factory=dict)
    codecs: Mapping[str, Codec] = field(default_factory=dict)
    order: tuple[str, ...] = ()
    columns: tuple[str, ...] = field(init=False)
    from_row: Callable[[Sequence[Any]], T] = field(init=False)

    def __post_init__(self) -> None:
        columns = tuple(c.name for c in self.table.columns)
        names = [f.name for f in fields(self.cls)]
        if names != list(columns):
            raise TypeError(f"table {self.table.name} has columns {list(columns)}, {self.kind} has {names}")
        unknown = (set(self.enums) | set(self.codecs) | set(self.order)) - set(columns)
        if unknown:
            raise TypeError(f"table {self.table.name} has no columns {sorted(unknown)}")
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "from_row", _row_converter(self.cls, columns, self.enums, self.codecs))

    def to_row(self, obj: Stored) -> dict[str, Any]:
        """The row for an object: its fields by column name (enums bind as their str value)."""
        row = {name: getattr(obj, name) for name in self.columns}
        for name, codec in self.codecs.items():
            if row[name] is not None:
                row[name] = codec.encode(row[name])
        return row


def _row_converter(
    cls: type[T], columns: Sequence[str], enums: Mapping[str, type[StrEnum]], codecs: Mapping[str, Codec]
) -> Callable[[Sequence[Any]], T]:
    """A function that builds ``cls`` from a row whose values are in ``columns`` order."""
    decoders: dict[str, Callable[[Any], Any]] = {**enums, **{name: c.decode for name, c in codecs.items()}}
    coerce = [(i, decoders[name]) for i, name in enumerate(columns) if name in decoders]
    if not coerce:
        return lambda row: cls(*row)

    def convert(row: Sequence[Any]) -> T:
        values = list(row)
        for i, decode in coerce:
            if values[i] is not None:
                values[i] = decode(values[i])
        return cls(*values)

    return convert


# By kind (the enum members, which equal their str values as keys).
# Parents before children: the order of upserts and of loading (deletes run reversed).
RESOURCE_TABLES: dict[str, TableSpec[Resource]] = {
    t.kind: t
    for t in (
        TableSpec[Resource](ResourceType.SWITCH, switches, Switch, "name"),
        TableSpec[Resource](ResourceType.HOST, hosts, Host, "name", {"admin_state": AdminState}),
        TableSpec[Resource](ResourceType.PROJECT, projects, Project, "id"),
        TableSpec[Resource](ResourceType.SERVER_GROUP, server_groups, ServerGroup, "id", {"policy": GroupPolicy}),
        TableSpec[Resource](ResourceType.INSTANCE, instances, Instance, "id", {"state": InstanceState}),
        TableSpec[Resource](ResourceType.PORT, ports, Port, "id", {"data_plane_status": DataPlaneStatus}),
    )
}

_SUBSCRIPTION_FILTER = json_dataclass(SubscriptionFilter, {"severities": Severity, "lifecycles": Lifecycle})
_AUTHENTICATION = json_dataclass(Authentication, enums={"type": AuthType})
_HOST_PROGRESS = json_dict_of(
    json_dataclass(HostProgress, enums={"state": HostMaintenanceState}, times=("started_at", "ended_at"))
)
_PROJECT_PROGRESS = json_dict_of(
    json_dataclass(ProjectProgress, enums={"state": ProjectState}, times=("replied_at", "asked_at"))
)

RECORD_TABLES: dict[str, TableSpec[Record]] = {
    t.kind: t
    for t in (
        TableSpec[Record](
            RecordKind.FAULT_EVENT,
            fault_events,
            FaultEvent,
            "id",
            {"status": EventStatus, "outcome": Outcome},
            order=("received_at",),
        ),
        TableSpec[Record](
            RecordKind.FAULT, faults, Fault, "id", {"severity": Severity, "state": FaultState}, order=("opened_at",)
        ),
        TableSpec[Record](
            RecordKind.ALARM,
            alarms,
            Alarm,
            "id",
            {"kind": AlarmKind, "severity": Severity, "state": AlarmState, "ack_state": AckState},
            order=("raised_at",),
        ),
        TableSpec[Record](
            RecordKind.SUBSCRIPTION,
            subscriptions,
            Subscription,
            "id",
            {"format": PayloadFormat},
            {"filter": _SUBSCRIPTION_FILTER, "authentication": _AUTHENTICATION},
            order=("created_at",),
        ),
        TableSpec[Record](
            RecordKind.DELIVERY,
            deliveries,
            Delivery,
            "id",
            {"lifecycle": Lifecycle, "state": DeliveryState},
            order=("created_at",),
        ),
        TableSpec[Record](
            RecordKind.MAINTENANCE_SESSION,
            maintenance_sessions,
            MaintenanceSession,
            "id",
            {"state": SessionState},
            {"host_progress": _HOST_PROGRESS, "projects": _PROJECT_PROGRESS},
            order=("created_at",),
        ),
        TableSpec[Record](
            RecordKind.INSTANCE_CONSTRAINTS,
            instance_constraints,
            InstanceConstraints,
            "instance_id",
            {"migration_type": InstanceAction},
        ),
        TableSpec[Record](RecordKind.GROUP_CONSTRAINTS, group_constraints, GroupConstraints, "group_id"),
        TableSpec[Record](RecordKind.HOST_FINDINGS, host_findings, HostFindings, "host"),
    )
}

# Every kind: resources parent-first, then records.
TABLES: dict[str, TableSpec[Stored]] = {t.kind: t for t in (*RESOURCE_TABLES.values(), *RECORD_TABLES.values())}
if len(TABLES) != len(RESOURCE_TABLES) + len(RECORD_TABLES):
    raise TypeError("a record kind has the name of a resource type")
