"""One writer per store: the writer's lease.

Two ``vigil serve`` processes on one store used to both start: every pending
delivery went out twice, ``resource_events.seq`` collided, and each process
showed its own truth. A store now has one writer at a time, whoever holds
its lease:

* **SQLite**: an exclusive ``flock`` on ``<database>.lock`` beside the
  database file. The kernel drops it when the holder's process ends, however
  it ends (``kill -9`` included), so a crashed writer never blocks the next.
* **PostgreSQL**: a session-level advisory lock, held on a connection of its
  own for as long as the writer runs. The server drops it when that
  connection ends (the holder exited or was killed).

Whoever takes the lease records itself in the ``store_lease`` row: host,
pid, when, and an ``epoch`` that grows by one at every taking. A process that
finds the lease taken reads that row and raises :class:`StoreInUse` naming
the holder. The epoch is the fencing token the high-availability work builds
on: a standby that waits for the lease instead of refusing
(:meth:`WriterLease.acquire` with ``wait``) becomes the writer of a newer epoch.
"""

import asyncio
import contextlib
import fcntl
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from vigil.domain.errors import DomainError
from vigil.store.schema import store_lease

# The advisory lock's key on PostgreSQL (hashtext of this name).
ADVISORY_KEY = "vigil.store.writer"
# The lease row's name: one writer per store.
WRITER = "writer"


class StoreInUse(DomainError):
    """Another process holds the store's writer lease."""


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds (or last held) a store's lease."""

    host: str
    pid: int
    since: datetime
    epoch: int

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}, since {self.since:%Y-%m-%d %H:%M:%S} UTC (epoch {self.epoch})"


def me(epoch: int = 0) -> Holder:
    return Holder(socket.gethostname(), os.getpid(), datetime.now(UTC), epoch)


class WriterLease:
    """The writer's lease of one store: :meth:`acquire` before the first write, :meth:`release` after the last."""

    def __init__(self, engine: AsyncEngine, database: str | None) -> None:
        self._engine = engine
        self._lock_path = Path(database).expanduser().with_name(Path(database).name + ".lock") if database else None
        self._fd: int | None = None
        self._conn: AsyncConnection | None = None
        self.holder: Holder | None = None

    @property
    def postgres(self) -> bool:
        return self._engine.dialect.name == "postgresql"

    async def lock(self, *, wait: bool = False, poll_s: float = 0.2) -> None:
        """Take the lock (not yet the row): raise StoreInUse if taken, or with ``wait`` wait for it."""
        while not await self._try_lock():
            if not wait:
                holder = await self.current()
                who = str(holder) if holder is not None else "another process"
                raise StoreInUse(
                    f"the store is in use by {who}; one writer per store: stop that server first, "
                    "or give this one another data_dir or store.url"
                )
            await asyncio.sleep(poll_s)

    async def record(self) -> Holder:
        """Write this process into the lease row with the next epoch (after the schema exists)."""
        async with self._engine.begin() as conn:
            previous = (await conn.execute(select(store_lease.c.epoch).where(store_lease.c.name == WRITER))).scalar()
            holder = me((previous or 0) + 1)
            values = {"host": holder.host, "pid": holder.pid, "since": holder.since, "epoch": holder.epoch}
            if previous is None:
                await conn.execute(store_lease.insert().values(name=WRITER, **values))
            else:
                await conn.execute(update(store_lease).where(store_lease.c.name == WRITER).values(**values))
        self.holder = holder
        return holder

    async def current(self) -> Holder | None:
        """The holder the lease row names, if the row (and its table) exists."""
        try:
            async with self._engine.connect() as conn:
                row = (await conn.execute(select(store_lease).where(store_lease.c.name == WRITER))).first()
        except Exception:  # an older schema without the table, or a store being created
            return None
        if row is None:
            return None
        since = row.since if row.since.tzinfo is not None else row.since.replace(tzinfo=UTC)
        return Holder(row.host, row.pid, since, row.epoch)

    async def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
        if self._conn is not None:
            with contextlib.suppress(Exception):  # a connection already gone has dropped the lock too
                await self._conn.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": ADVISORY_KEY})
            await self._conn.close()
            self._conn = None

    async def _try_lock(self) -> bool:
        if self.postgres:
            return await self._try_advisory()
        if self._lock_path is None:
            return True  # an in-memory database: nobody else can open it
        return self._try_flock(self._lock_path)

    def _try_flock(self, path: Path) -> bool:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def _try_advisory(self) -> bool:
        conn = await self._engine.connect()
        try:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            taken = await conn.scalar(text("SELECT pg_try_advisory_lock(hashtext(:key))"), {"key": ADVISORY_KEY})
        except BaseException:
            await conn.close()
            raise
        if not taken:
            await conn.close()
            return False
        self._conn = conn
        return True


__all__ = ["Holder", "StoreInUse", "WriterLease"]
