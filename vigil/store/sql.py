"""The SQL store: resources, records and the event log, on SQLite or PostgreSQL.

One implementation of :class:`vigil.controller.ports.Store` on SQLAlchemy Core
serves both defaults of the design: SQLite for the single-process ``vigil
serve`` and PostgreSQL for scale-out. Only two things differ by dialect, and
both are chosen at :meth:`SqlStore.open`: the ``INSERT … ON CONFLICT DO
UPDATE`` construct, and SQLite's connection set-up.

Writes come from the :class:`~vigil.controller.changes.Committer`, which
merges every batch submitted while a write is under way into the next one:
:meth:`SqlStore.save` is therefore one transaction per burst of changes, with
each table's rows sent as ``executemany`` of one cached statement, in chunks
of at most 32,767 bind parameters' worth of rows (asyncpg's limit for one
statement, should a driver fold the rows into a multi-row INSERT; it also
bounds what one call holds when a bootstrap writes 200,000 rows). A batch
holds resources and records (fault events, faults, alarms, subscriptions,
deliveries, maintenance sessions and constraints) alike, keyed by
``(kind, ident)``; every kind goes through the same
:class:`~vigil.store.schema.TableSpec` machinery, so a fault, the resource
changes it caused, its alarms and the deliveries that announce them become
durable together. Upserts go parent-first and deletes child-first,
and there are no foreign keys to check (see :mod:`vigil.store.schema`).

Reading: :meth:`SqlStore.load` gives the resource map's snapshot; the
paged, filtered queries of the admin API and what a start reads of the
history (open faults and alarms, the journal's unapplied tail, the outbox)
are in ``vigil.store.reads``. Old history is pruned by
``vigil.store.retention``.

On SQLite, writes run in one thread of their own (a transaction is one
hand-off), and the journal's small appends go through
``vigil.store.quick`` on the caller's thread when the lock is free. On
PostgreSQL they go through the async engine.

SQLite runs in WAL mode with ``synchronous=NORMAL``: readers (the admin API
paging the event log) never block the writer, and a commit appends to the
log without an fsync of the database file each time; a power cut may lose
the last commits but never corrupts the database. ``busy_timeout`` makes a
second connection wait for the writer instead of failing at once. Python's
``sqlite3`` does not begin transactions for SELECT or DDL by itself, so the
store emits ``BEGIN`` itself: a load reads one consistent snapshot, and the
migrations are transactional (``BEGIN IMMEDIATE`` for writers, which take the
write lock up front rather than failing to upgrade a read lock).

The schema is brought to the newest Alembic revision on every open
(``migrations/``); concurrent openers are serialised (a transaction-scoped
advisory lock on PostgreSQL, the write lock on SQLite).
"""

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Table, create_engine, delete, event, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool
from sqlalchemy.sql.dml import Insert

from vigil.controller.ports import ChangeBatch, Snapshot
from vigil.domain.errors import DomainError
from vigil.domain.events import ResourceEvent
from vigil.domain.model import Resource, ResourceType
from vigil.domain.retry import PermanentError, TemporaryError
from vigil.store.leader import LeaderLease, LeaseLost, LeaseTimings
from vigil.store.lease import StoreInUse, WriterLease
from vigil.store.quick import QuickWriter
from vigil.store.reads import Reads
from vigil.store.retention import prune
from vigil.store.schema import (
    RESOURCE_TABLES,
    TABLES,
    Stored,
    TableSpec,
    log_marks,
    monitored_hosts,
    resource_events,
)

MIGRATIONS = Path(__file__).with_name("migrations")

T = TypeVar("T")

# asyncpg refuses statements with more bind parameters than this.
MAX_PARAMETERS = 32_767
# Rows per statement, at most; few enough that one chunk stays a modest allocation.
MAX_ROWS = 10_000
# How long a SQLite connection waits for another's write lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 5_000
# Serialises migrations of several Vigil processes sharing one PostgreSQL database.
MIGRATION_LOCK = "vigil.store.migrations"

_BEGIN = "vigil_sqlite_begin"  # execution option: the BEGIN statement our SQLite hook emits

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}


class StoreNotReady(DomainError):
    """A read-only opener found no schema, or an older one than this code reads."""


def async_url(url: str | URL) -> URL:
    """The URL with the async driver Vigil uses if none is named (``sqlite://`` → ``sqlite+aiosqlite://``)."""
    parsed = make_url(url)
    driver = _DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver is not None else parsed


def migrations_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for Vigil's migrations (no ``alembic.ini`` involved)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": MIGRATION_LOCK})
    command.upgrade(migrations_config(connection), "head")


async def _check_revision(engine: AsyncEngine) -> None:
    """Refuse (StoreNotReady) a database this code's reader cannot read: not created, or at an older revision."""

    def current(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with engine.connect() as conn:
        revision = await conn.run_sync(current)
    head = ScriptDirectory.from_config(migrations_config()).get_current_head()
    if revision != head:
        found = "no schema" if revision is None else f"schema revision {revision}"
        raise StoreNotReady(f"the store has {found}, this Vigil reads {head}: start 'vigil serve' on it first")


def _owner_only(database: Path) -> Path:
    """The database file (and its WAL and shared-memory files) readable by its owner only:
    it holds callback credentials. A missing directory is made 0700, a missing file 0600."""
    database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not database.exists():
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
    for path in (database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")):
        if path.exists():
            path.chmod(0o600)
    return database


def _chunks(rows: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _rows_per_statement(table: Table) -> int:
    return max(1, min(MAX_ROWS, MAX_PARAMETERS // len(table.columns)))


class SqlStore(Reads):
    """The durable resource map and event log (implements ``vigil.controller.ports.Store``).

    ``SqlStore(url)`` does nothing until :meth:`open` (or ``async with``);
    ``url`` is any SQLAlchemy URL, e.g. ``sqlite:///var/vigil.db`` or
    ``postgresql://vigil@db/vigil`` (the async driver is filled in).
    """

    def __init__(
        self,
        url: str | URL,
        *,
        read_only: bool = False,
        wait_for_lease: bool = False,
        busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
        leader: LeaseTimings | None = None,
    ) -> None:
        self.url = async_url(url)
        self.read_only = read_only
        self.lease: WriterLease | None = None
        self._leader_timings = leader
        self.leader: LeaderLease | None = None  # with high availability: the leader's lease (vigil.store.leader)
        self._wait_for_lease = wait_for_lease
        self._busy_timeout_ms = busy_timeout_ms
        self._file: str | None = None  # the SQLite database file, if there is one
        # SQLite file databases are written by one thread of their own (see _create_engine):
        # this process's writers (the committer and the journal) take turns there instead of
        # meeting SQLite's busy handler, which sleeps (1, 2, 5 ... 100 ms) between tries.
        self._writer: Engine | None = None
        self._writer_thread: ThreadPoolExecutor | None = None
        self._quick: QuickWriter | None = None
        self._engine: AsyncEngine | None = None
        self._upserts: dict[str, Insert] = {}

    # -- open and close ----------------------------------------------------

    async def open(self) -> None:
        """Connect; as the writer, take the lease and migrate the schema to the newest revision.

        A writer raises :class:`~vigil.store.lease.StoreInUse` naming the holder
        if another process holds the store's lease (before touching the schema).
        A reader (``read_only``) takes no lease, migrates nothing and can write
        nothing; it refuses a schema older than this code's.
        """
        if self._engine is not None:
            return
        engine = self._create_engine()
        if self._leader_timings is not None and not self.read_only:
            await self._open_as_leader(engine, self._leader_timings)
            return
        lease = None if self.read_only else WriterLease(engine, self._file)
        try:
            if lease is None:
                await _check_revision(engine)
            else:
                await lease.lock(wait=self._wait_for_lease)
                async with self._transaction(engine, write=True) as conn:
                    await conn.run_sync(_upgrade)
                await lease.record()
        except BaseException:
            if lease is not None:
                await lease.release()
            await engine.dispose()
            self._drop_writer()
            raise
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._upserts = {kind: _upsert(dialect.insert(spec.table), spec) for kind, spec in TABLES.items()}
        if self._writer is not None and self._file is not None:
            # Small writes (the journal's) are tried at once on the event loop's thread,
            # never waiting for the lock: no hand-off at all when the database is free.
            self._quick = QuickWriter(self._file, self._upserts)
        self._engine = engine
        self.lease = lease

    async def _open_as_leader(self, engine: AsyncEngine, timings: LeaseTimings) -> None:
        """High availability: migrate (openers take turns), then wait as a standby until the leader's lease is
        ours; from then on every write checks it (:meth:`in_write_transaction`)."""
        if engine.dialect.name != "postgresql":
            await engine.dispose()
            raise ValueError("high availability needs PostgreSQL: SQLite has one process, under its own lock")
        leader = LeaderLease(engine, timings)
        try:
            async with self._transaction(engine, write=True) as conn:
                await conn.run_sync(_upgrade)
            await leader.acquire()
        except BaseException:
            await leader.release()
            await engine.dispose()
            raise
        self._upserts = {kind: _upsert(postgresql.insert(spec.table), spec) for kind, spec in TABLES.items()}
        self._engine = engine
        self.leader = leader

    async def close(self) -> None:
        """Close every connection and give the lease back; the store may be opened again."""
        leader, self.leader = self.leader, None
        if leader is not None:
            await leader.release()
        engine, self._engine = self._engine, None
        if self._writer is not None and self._writer_thread is not None:
            await asyncio.get_running_loop().run_in_executor(self._writer_thread, self._writer.dispose)
        if self._quick is not None:
            self._quick.close()
        self._drop_writer()
        lease, self.lease = self.lease, None
        if lease is not None:
            await lease.release()
        if engine is not None:
            await engine.dispose()

    def _drop_writer(self) -> None:
        self._writer = self._quick = None
        thread, self._writer_thread = self._writer_thread, None
        if thread is not None:
            thread.shutdown(wait=True)

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the store is not open")
        return self._engine

    def _create_engine(self) -> AsyncEngine:
        url = self.url
        if url.get_backend_name() != "sqlite":
            if self.read_only:
                settings = {"default_transaction_read_only": "on"}
                return create_async_engine(url, connect_args={"server_settings": settings})
            return create_async_engine(url)
        database = url.database or ""
        in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
        if in_memory:
            engine = create_async_engine(url, poolclass=StaticPool)
        elif self.read_only:
            path = Path(database).expanduser().resolve()
            if not path.exists():
                raise FileNotFoundError(f"no database at {path}")
            self._file = str(path)
            engine = create_async_engine(url.set(database=f"file:{path}?mode=ro", query={"uri": "true"}))
        else:
            self._file = str(_owner_only(Path(database).expanduser()))
            engine = create_async_engine(url)

        self._set_up_sqlite(engine.sync_engine, in_memory=in_memory)
        if self._file is not None and not self.read_only:
            # Writes go through a plain sqlite3 connection in one thread of their own: a
            # whole transaction is one hand-off to that thread, not one per statement.
            self._writer = create_engine(url.set(drivername="sqlite+pysqlite"))
            self._set_up_sqlite(self._writer, in_memory=False)
            self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="vigil-sqlite-writer")
        return engine

    def _set_up_sqlite(self, engine: Engine, *, in_memory: bool, busy_timeout_ms: int | None = None) -> None:
        """Every SQLite connection: our own transaction control, a busy timeout, WAL, ``synchronous=NORMAL``."""
        busy = self._busy_timeout_ms if busy_timeout_ms is None else busy_timeout_ms

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
            # Take transaction control away from sqlite3 (see the module docstring).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout = {int(busy)}")
                if not in_memory and not self.read_only:
                    cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
            finally:
                cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql(conn.get_execution_options().get(_BEGIN, "BEGIN"))

    @staticmethod
    @asynccontextmanager
    async def _transaction(engine: AsyncEngine, *, write: bool) -> AsyncIterator[AsyncConnection]:
        """A connection in one transaction: a writer's on SQLite takes the write lock at BEGIN;
        a reader's on PostgreSQL sees one snapshot across its statements."""
        async with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                await conn.execution_options(**{_BEGIN: "BEGIN IMMEDIATE" if write else "BEGIN"})
            elif not write:
                await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                yield conn

    # -- the Store port ----------------------------------------------------

    async def save(self, batch: ChangeBatch) -> None:
        """Write a batch in one transaction: upserts parent-first, deletes child-first, then events.

        Records (faults, alarms, subscriptions, deliveries, maintenance sessions
        and constraints) are upserted after the resources and deleted before
        them; every key's kind must be a :class:`~vigil.domain.model.ResourceType`
        or a :class:`~vigil.domain.records.RecordKind`.

        A failure says whether repeating the write may help (:func:`classify_failure`):
        TemporaryError when the database could not be reached or was busy,
        PermanentError when it refused the batch's values. Nothing is written either way.
        """
        if not batch:
            return
        try:
            await self.in_write_transaction(lambda conn: self._write(conn, batch))
        except LeaseLost:
            raise  # not the leader any more: nothing to repeat, nothing wrong with the batch
        except Exception as exc:
            raise classify_failure(exc) from exc

    async def in_write_transaction(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` (synchronous SQLAlchemy Core on ``conn``) in one write transaction: on
        SQLite in the writer thread, so this process's writers take turns; elsewhere through
        the async engine. Raises what the database raised."""
        if self._writer is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._writer_thread, self._in_writer_thread, work)
        leader = self.leader
        async with self._transaction(self.engine, write=True) as conn:
            if leader is None:
                return await conn.run_sync(work)

            def fenced(sync: Connection) -> T:
                leader.check(sync)  # the fencing token: refused unless the lease is still ours
                return work(sync)

            return await conn.run_sync(fenced)

    async def prune(self, before: datetime, *, chunk: int = 5_000) -> dict[str, int]:
        """Delete the history older than ``before`` (``vigil.store.retention``), a chunk per transaction."""
        return await prune(self, before, chunk=chunk)

    async def append(self, batch: ChangeBatch) -> None:
        """As :meth:`save`, for a small batch that must be durable quickly (the journal's).

        On SQLite it is written at once on this thread if the database's write
        lock is free (a fraction of a millisecond, less than handing it to the
        writer thread costs); if another write holds the lock, it queues for the
        writer thread like any other. Elsewhere it is :meth:`save`.
        """
        if self._quick is not None and batch and not (batch.deletes or batch.events):
            rows: dict[str, list[dict[str, Any]]] = {}
            for (kind, _), obj in batch.upserts.items():
                spec = _spec(kind)
                rows.setdefault(spec.kind, []).append(spec.to_row(obj))
            if self._quick.write(rows):
                return
        await self.save(batch)

    async def mark(self, name: str) -> int:
        """How far the follower ``name`` of the event log has acted on it: its last event's seq (0: none yet)."""
        async with self._transaction(self.engine, write=False) as conn:
            seq = await conn.scalar(select(log_marks.c.seq).where(log_marks.c.name == name))
        return int(seq or 0)

    async def set_mark(self, name: str, seq: int, at: datetime) -> None:
        """Record that the follower ``name`` has acted on the event log up to ``seq`` (a later mark only)."""

        def work(conn: Connection) -> None:
            table = log_marks.c
            done = conn.execute(
                update(log_marks).where(table.name == name, table.seq < seq).values(seq=seq, at=at)
            ).rowcount
            if not done and conn.scalar(select(table.seq).where(table.name == name)) is None:
                conn.execute(log_marks.insert().values(name=name, seq=seq, at=at))

        try:
            await self.in_write_transaction(work)
        except Exception as exc:
            raise classify_failure(exc) from exc

    async def monitored_hosts(self) -> dict[str, tuple[float, int]]:
        """The hosts the heartbeat monitor has heard from: host -> (interval_ms, mult) they beat at."""
        async with self._transaction(self.engine, write=False) as conn:
            rows = (await conn.execute(select(monitored_hosts))).all()
        return {row.host: (float(row.interval_ms), int(row.mult)) for row in rows}

    async def set_monitored(self, host: str, interval_ms: float, mult: int, at: datetime) -> None:
        """Record that the heartbeat monitor hears from ``host`` (at that timing)."""
        values = {"interval_ms": interval_ms, "mult": mult, "since": at}
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(monitored_hosts)
            .values(host=host, **values)
            .on_conflict_do_update(index_elements=["host"], set_=values)
        )
        try:
            await self.in_write_transaction(lambda conn: conn.execute(statement))
        except LeaseLost:
            raise
        except Exception as exc:
            raise classify_failure(exc) from exc

    def _in_writer_thread(self, work: Callable[[Connection], T]) -> T:
        assert self._writer is not None
        with self._writer.connect() as conn:
            conn = conn.execution_options(**{_BEGIN: "BEGIN IMMEDIATE"})
            with conn.begin():
                return work(conn)

    def _write(self, conn: Connection, batch: ChangeBatch) -> None:
        """The statements of one batch, in a transaction the caller holds."""
        rows: dict[str, list[dict[str, Any]]] = {}
        for (kind, _), obj in batch.upserts.items():
            spec = _spec(kind)
            rows.setdefault(spec.kind, []).append(spec.to_row(obj))
        doomed: dict[str, list[str]] = {}
        for kind, ident in batch.deletes:
            doomed.setdefault(_spec(kind).kind, []).append(ident)
        events = [_event_row(e) for e in batch.events]
        for kind, spec in TABLES.items():
            for chunk in _chunks(rows.get(kind, ()), _rows_per_statement(spec.table)):
                conn.execute(self._upserts[kind], chunk)
        for kind, spec in reversed(TABLES.items()):
            key = spec.table.c[spec.key]
            for idents in _chunks(sorted(doomed.get(kind, ())), _rows_per_statement(spec.table)):
                conn.execute(delete(spec.table).where(key.in_(idents)))
        for chunk in _chunks(events, _rows_per_statement(resource_events)):
            conn.execute(resource_events.insert(), chunk)

    async def load(self) -> Snapshot:
        """Every stored resource, parents before children, and the last event's seq (0 if none)."""
        resources: list[Resource] = []
        async with self._transaction(self.engine, write=False) as conn:
            for spec in RESOURCE_TABLES.values():
                result = await conn.execute(select(spec.table))
                resources.extend(map(spec.from_row, result))
            last_seq = await conn.scalar(select(func.coalesce(func.max(resource_events.c.seq), 0)))
        return Snapshot(resources=resources, last_seq=int(last_seq or 0))

    async def is_empty(self) -> bool:
        """Whether no host is stored yet, i.e. the cloud has not been bootstrapped."""
        hosts = RESOURCE_TABLES[ResourceType.HOST].table
        async with self.engine.connect() as conn:
            first = await conn.scalar(select(hosts.c.name).limit(1))
        return first is None


def classify_failure(exc: BaseException) -> TemporaryError | PermanentError:
    """What a failed write means: worth repeating (the connection, a lock, a timeout) or not (the values).

    SQLAlchemy raises OperationalError and InterfaceError for the database's
    state (SQLite's "database is locked", a PostgreSQL server gone) and marks
    an error that invalidated the connection; other driver errors (DataError,
    IntegrityError, ProgrammingError) and errors converting a value before it
    reaches the driver (StatementError, OverflowError, ValueError) come from
    the batch itself.
    """
    reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
    if isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    ):
        return TemporaryError(f"the store is unavailable: {reason}")
    if isinstance(exc, StatementError | ValueError | TypeError | ArithmeticError):
        return PermanentError(f"the store refused the values: {reason}")
    if isinstance(exc, OSError | TimeoutError):
        return TemporaryError(f"the store is unavailable: {reason}")
    return PermanentError(f"the store refused the write: {reason}")


def _spec(kind: str) -> TableSpec[Stored]:
    try:
        return TABLES[kind]
    except KeyError:
        raise ValueError(f"the store keeps no kind {kind!r}") from None


def _upsert(insert: postgresql.Insert | sqlite.Insert, spec: TableSpec[Stored]) -> Insert:
    """``INSERT … ON CONFLICT (key) DO UPDATE`` every other column to the new row's value."""
    others = {name: insert.excluded[name] for name in spec.columns if name != spec.key}
    if not others:
        return insert.on_conflict_do_nothing(index_elements=[spec.key])
    return insert.on_conflict_do_update(index_elements=[spec.key], set_=others)


def _event_row(e: ResourceEvent) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "time": e.time,
        "resource_type": str(e.resource_type),
        "resource_id": e.resource_id,
        "action": str(e.action),
        "project": e.project,
        "reason": e.reason,
        "changes": {name: [old, new] for name, (old, new) in e.changes.items()},
    }


__all__ = ["MIGRATIONS", "SqlStore", "StoreInUse", "StoreNotReady", "async_url", "migrations_config"]
