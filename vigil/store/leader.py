"""The leader's lease on PostgreSQL: several ``vigil serve`` processes on one database, one of them acting.

With high availability (settings ``ha``), the store's ``store_lease`` row is
a lease with an expiry, kept by the database's clock (so the controllers'
clocks need not agree):

* **taking it**: one statement inserts the row, or takes it over when it has
  expired, with the next ``epoch``; of several standbys polling at once,
  exactly one succeeds (the row's lock orders them);
* **renewing it**: the leader pushes ``expires_at`` to ``now() + lease_s``
  every ``renew_s``, only while the row still names its epoch and has not
  expired. A renewal that fails, or no renewal for ``lease_s``, means the
  lease is lost: the leader stops acting by itself (:meth:`LeaderLease.keep`
  calls ``on_lost``; ``vigil serve`` exits, and its supervisor starts it
  again as a standby). A renewal that a partition holds (no answer, no
  error) is given only what is left of the lease;
* **the fencing token**: every write transaction first reads the row
  ``FOR SHARE`` (:meth:`LeaderLease.check`) and is refused with
  :class:`LeaseLost` unless the row names this leader's epoch and is live.
  The share lock holds a takeover (an ``UPDATE`` of the row) until the write
  commits, so no write of an old leader commits after a new one took over,
  even one that was frozen (SIGSTOP) or cut off while it held the lease;
* **locally**: :meth:`LeaderLease.acting` says whether this process may still
  act, from its own monotonic clock: until ``lease_s`` after it *sent* its
  last successful renewal, which is never later than the database's expiry.
  What leaves the process without a write (a notification, a fence, a VIM
  call) asks it first, so a leader that wakes from a freeze longer than its
  lease does not act before its renewal fails.

A leader that stops cleanly expires its lease at once, so a standby takes
over within its poll interval rather than the lease's length. A standby is
cold: it takes the lease, then opens the store's state as a restart does.
"""

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from vigil.domain.errors import NotLeader
from vigil.store.lease import WRITER, Holder, me

log = logging.getLogger(__name__)

_TAKE = text(
    """
    INSERT INTO store_lease (name, host, pid, since, epoch, expires_at)
    VALUES (:name, :host, :pid, now(), 1, now() + make_interval(secs => :lease_s))
    ON CONFLICT (name) DO UPDATE
        SET host = excluded.host, pid = excluded.pid, since = now(), epoch = store_lease.epoch + 1,
            expires_at = excluded.expires_at
        WHERE store_lease.expires_at IS NOT NULL AND store_lease.expires_at < now()
    RETURNING epoch, since
    """
)
_RENEW = text(
    "UPDATE store_lease SET expires_at = now() + make_interval(secs => :lease_s)"
    " WHERE name = :name AND epoch = :epoch AND expires_at > now()"
)
_CHECK = text("SELECT epoch, expires_at > now() FROM store_lease WHERE name = :name FOR SHARE")
_EXPIRE = text("UPDATE store_lease SET expires_at = now() WHERE name = :name AND epoch = :epoch")


class LeaseLost(NotLeader):
    """This process no longer holds the leader's lease: its write is refused."""


@dataclass(frozen=True, slots=True)
class LeaseTimings:
    """``lease_s`` how long a lease lasts unrenewed, ``renew_s`` how often the leader renews it, ``poll_s`` how
    often a standby tries to take it."""

    lease_s: float = 1.5
    renew_s: float = 0.3
    poll_s: float = 0.1


class LeaderLease:
    """The leader's lease of one PostgreSQL store (see the module)."""

    def __init__(
        self, engine: AsyncEngine, timings: LeaseTimings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._engine = engine
        self.timings = timings
        self._clock = clock
        self.holder: Holder | None = None
        self._valid_until = 0.0
        self._conn: AsyncConnection | None = None  # its own connection: a busy pool never delays a renewal
        self._on_lost: Callable[[str], None] | None = None

    @property
    def epoch(self) -> int:
        return self.holder.epoch if self.holder is not None else 0

    def acting(self) -> bool:
        """Whether this process holds the lease by its own clock (see the module)."""
        return self.holder is not None and self._clock() < self._valid_until

    async def _connection(self) -> AsyncConnection:
        if self._conn is None or self._conn.closed:
            conn = await self._engine.connect()
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    async def take(self) -> Holder | None:
        """Take the lease if nobody holds it (or it expired): the new holder, with the next epoch; else None."""
        mine = me()
        sent = self._clock()
        conn = await self._connection()
        params = {"name": WRITER, "host": mine.host, "pid": mine.pid, "lease_s": self.timings.lease_s}
        row = (await conn.execute(_TAKE, params)).first()
        if row is None:
            return None
        self.holder = Holder(mine.host, mine.pid, row.since, int(row.epoch))
        self._valid_until = sent + self.timings.lease_s
        return self.holder

    async def acquire(self) -> Holder:
        """Wait as a standby until the lease is ours."""
        waited = False
        while (holder := await self.take()) is None:
            if not waited:
                log.info("standby: the leader's lease is held; taking it over once it expires")
                waited = True
            await asyncio.sleep(self.timings.poll_s)
        log.info("leader: took the lease, epoch %d", holder.epoch)
        return holder

    async def _renew_on(self, conn: AsyncConnection) -> bool:
        """Push the lease's expiry on; False if it is no longer ours (or had expired)."""
        if self.holder is None:
            return False
        sent = self._clock()
        params = {"name": WRITER, "epoch": self.holder.epoch, "lease_s": self.timings.lease_s}
        renewed = (await conn.execute(_RENEW, params)).rowcount == 1
        if renewed:
            self._valid_until = sent + self.timings.lease_s
        return renewed

    async def keep(self, on_lost: Callable[[str], None]) -> None:
        """Renew the lease every ``renew_s`` for as long as it is ours; call ``on_lost`` with why once it is not.

        The renewals run in a thread of their own, with their own event loop and connection: a blocked event
        loop (a start restoring a large store takes seconds; a long pause) never delays one, so it never costs a
        leader its lease. A renewal that cannot reach the database is tried again until the lease would have
        expired. A write refused by the fencing token calls ``on_lost`` too, at once. Cancelling this stops the
        renewals (before :meth:`release`)."""
        self._on_lost = on_lost
        loop = asyncio.get_running_loop()
        stop, ended = threading.Event(), asyncio.Event()

        def run() -> None:
            try:
                asyncio.run(self._renewing(stop))
            finally:
                with contextlib.suppress(RuntimeError):  # the caller's loop already closed
                    loop.call_soon_threadsafe(ended.set)

        thread = threading.Thread(target=run, name="vigil-leader-lease", daemon=True)
        thread.start()
        try:
            await ended.wait()
        finally:
            stop.set()
            await asyncio.to_thread(thread.join)  # at most one renewal's wait

    async def _renewing(self, stop: threading.Event) -> None:
        engine = create_async_engine(self._engine.url, poolclass=NullPool)
        conn: AsyncConnection | None = None

        async def renewed() -> bool:
            nonlocal conn
            if conn is None:
                conn = await (await engine.connect()).execution_options(isolation_level="AUTOCOMMIT")
            return await self._renew_on(conn)

        try:
            while not stop.is_set():
                await asyncio.sleep(self.timings.renew_s)
                if stop.is_set():
                    return
                try:
                    # A partition does not fail a call, it holds it: a renewal gets what is left of the lease.
                    left = max(self._valid_until - self._clock(), 0.001)
                    if await asyncio.wait_for(renewed(), left):
                        continue
                    why = f"the lease of epoch {self.epoch} was taken over or expired"
                except Exception as exc:  # the database unreachable: try again while the lease lasts
                    await _closed(conn, self.timings.renew_s)
                    conn = None
                    if self.acting():
                        log.warning("leader: renewing the lease failed, trying again: %s", exc)
                        continue
                    reason = str(exc) or "the database did not answer"
                    why = f"the lease of epoch {self.epoch} could not be renewed in {self.timings.lease_s} s: {reason}"
                if not stop.is_set():
                    self._lost(why)
                return
        finally:
            await _closed(conn, self.timings.renew_s)
            await engine.dispose()

    def _lost(self, why: str) -> None:
        self._valid_until = 0.0
        on_lost, self._on_lost = self._on_lost, None
        if on_lost is not None:
            on_lost(why)

    def check(self, conn: Connection) -> None:
        """The fencing token, first in a write transaction: raise :class:`LeaseLost` unless the lease is this
        leader's and live (the row stays share-locked until the transaction ends)."""
        if not self.acting():
            why = f"not the leader: the lease of epoch {self.epoch} lapsed by this process's clock"
        else:
            row = conn.execute(_CHECK, {"name": WRITER}).first()
            if row is not None and int(row[0]) == self.epoch and row[1]:
                return
            why = f"not the leader: the lease is no longer epoch {self.epoch}'s"
        self._lost(why)
        raise LeaseLost(why)

    async def release(self) -> None:
        """Expire the lease at once (a standby takes over within its poll), and close the lease's connection."""
        if self.holder is not None and self.acting():
            try:
                conn = await self._connection()
                await conn.execute(_EXPIRE, {"name": WRITER, "epoch": self.holder.epoch})
            except Exception as exc:  # gone with the database: the lease expires by itself
                log.warning("leader: could not give the lease back: %s", exc)
        self._valid_until = 0.0
        await self._drop_connection()

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        await _closed(conn, self.timings.renew_s)


async def _closed(conn: AsyncConnection | None, within_s: float) -> None:
    """Close ``conn`` if there is one, giving up after ``within_s`` (a connection a partition holds)."""
    if conn is not None:
        try:
            await asyncio.wait_for(conn.close(), within_s)
        except Exception as exc:  # a connection already broken, or one a partition holds
            log.debug("closing the lease's connection: %s", exc)


__all__ = ["LeaderLease", "LeaseLost", "LeaseTimings"]
