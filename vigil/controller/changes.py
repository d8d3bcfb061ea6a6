"""Recording changes and committing them in order.

A :class:`Changes` is one operation's unit of work: it applies each change
to the resource map at once (so every query sees it immediately), and
records a row snapshot and a :class:`ResourceEvent` for it.

The :class:`Committer` then makes the operation durable and public. It is a
group commit: batches submitted while a write is under way are merged and
written in the next single transaction, and events are published strictly
in ``seq`` order after the write. One slow fsync therefore costs a burst of
changes one write, not one each. One unit of work the store refuses fails
alone; a store that is away is waited for.
"""

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable
from datetime import datetime
from typing import Any

from vigil.controller.ports import ChangeBatch, EventSink, Store
from vigil.controller.resource_map import Change, ResourceMap
from vigil.crashpoints import crash_point
from vigil.domain.copying import snapshot
from vigil.domain.errors import StoreRefused
from vigil.domain.events import EventAction, ResourceEvent
from vigil.domain.model import Resource, as_dict, owner, resource_type
from vigil.domain.records import Record, record_kind
from vigil.domain.retry import PermanentError, RetryPolicy, TemporaryError

log = logging.getLogger(__name__)

# Writes repeated while the store is unavailable: from 50 ms, doubling, to 2 s apart, without end.
STORE_RETRY = RetryPolicy(initial_s=0.05, factor=2.0, max_delay_s=2.0, max_attempts=1_000_000_000, jitter=0.2)
# How long stop() waits for pending writes when the store does not answer.
STOP_TIMEOUT_S = 10.0


class EventCounter:
    """The event sequence counter; restored from the store on start."""

    def __init__(self, last: int = 0) -> None:
        self.last = last

    def next(self) -> int:
        self.last += 1
        return self.last


class Changes:
    """Applies changes to the map and records what the store and bus must see."""

    def __init__(self, rmap: ResourceMap, seq: EventCounter, now: datetime, reason: str | None = None) -> None:
        self.map = rmap
        self._seq = seq
        self._now = now
        self._reason = reason
        self.batch = ChangeBatch()

    def create(self, resource: Resource, *, event: bool = True) -> None:
        self.map.add(resource)
        self._row(resource)
        if event:
            values = {k: (None, v) for k, v in as_dict(snapshot(resource)).items() if v is not None}
            self._event(resource, EventAction.CREATED, values)

    def update(self, resource: Resource, **fields: Any) -> dict[str, Change]:
        changes = self.map.update(resource, **fields)
        if changes:
            self._row(resource)
            self._event(resource, EventAction.UPDATED, changes)
        return changes

    def delete(self, resource: Resource) -> None:
        self.map.remove(resource)
        key = (resource_type(resource), resource.ident)
        self.batch.upserts.pop(key, None)
        self.batch.deletes.add(key)
        self._event(resource, EventAction.DELETED, {})

    def record(self, record: Record) -> None:
        """Make a fault, alarm, subscription or delivery durable with this change."""
        self.batch.upserts[(record_kind(record), record.ident)] = snapshot(record)

    def forget(self, record: Record) -> None:
        """Delete a record (a subscription that was removed) with this change."""
        key = (record_kind(record), record.ident)
        self.batch.upserts.pop(key, None)
        self.batch.deletes.add(key)

    def _row(self, resource: Resource) -> None:
        key = (resource_type(resource), resource.ident)
        self.batch.deletes.discard(key)
        self.batch.upserts[key] = snapshot(resource)

    def _event(self, resource: Resource, action: EventAction, changes: dict[str, Change]) -> None:
        self.batch.events.append(
            ResourceEvent(
                seq=self._seq.next(),
                time=self._now,
                resource_type=resource_type(resource),
                resource_id=resource.ident,
                action=action,
                changes=changes,
                project=owner(resource),
                reason=self._reason,
            )
        )


class Committer:
    """Writes change batches in submission order, merging those that queue up.

    A write that fails is handled by what the store says it means
    (``vigil.domain.retry``):

    * TemporaryError (the database is unreachable or busy): the same write
      is tried again, with capped backoff, for as long as it takes. Nothing
      is given up while the store is away; the waiters wait.
    * PermanentError (the database refused a value): if the write merged
      several units of work, each is written again on its own, so only the
      one that holds the value fails (with :class:`StoreRefused`) and the
      others are stored and published as if nothing happened.
    """

    def __init__(
        self,
        store: Store,
        sink: EventSink,
        *,
        retry: RetryPolicy = STORE_RETRY,
        rng: random.Random | None = None,
        crash_points: bool = True,
    ) -> None:
        self._store = store
        self._crash_points = crash_points  # the journal's committer is not the one ``before-commit`` names
        self._sink = sink
        self._retry = retry
        self._rng = rng or random.Random()
        self._pending: list[tuple[ChangeBatch, asyncio.Future[None]]] = []
        # Futures of the batches taken off _pending and being written now.
        self._writing: list[asyncio.Future[None]] = []
        self._holds: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="vigil.controller.committer")

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Write what is pending (for at most ``timeout_s`` if the store is away), then stop."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self.flush(), timeout_s)
        except TimeoutError:
            log.error("stopping with changes not written: the store did not answer within %.0f s", timeout_s)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def submit(self, batch: ChangeBatch, *, hold: Awaitable[None] | None = None) -> asyncio.Future[None]:
        """Queue a batch; the future resolves when it is written and published.

        ``hold``, if given, is awaited before the write that takes this batch
        (and whatever queued with it): the inspector passes its notifications'
        first attempts, already bounded, so the write's work on the event loop
        does not compete with them. Order is kept: batches submitted later are
        written with this one or after it.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not batch:  # nothing to write, nothing to hold back (``hold`` stays the caller's)
            future.set_result(None)
            return future
        if self._task is None:
            raise RuntimeError("committer is not started")
        self._pending.append((batch, future))
        if hold is not None:
            self._holds.append(asyncio.ensure_future(hold))
        self._wake.set()
        return future

    async def flush(self) -> None:
        """Wait until everything submitted so far is written, including the
        batches whose write is under way (``stop`` must not cancel that write)."""
        futures = [*self._writing, *(f for _, f in self._pending)]
        if futures:
            await asyncio.gather(*futures, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            taken, self._pending = self._pending, []
            if not taken:
                continue
            self._writing = [f for _, f in taken]
            holds, self._holds = self._holds, []
            try:
                if holds:
                    await asyncio.wait(holds)
                await self._write_taken(taken)
            finally:
                self._writing = []

    async def _write_taken(self, taken: list[tuple[ChangeBatch, asyncio.Future[None]]]) -> None:
        merged = ChangeBatch()
        for batch, _ in taken:
            merged.merge(batch)
        try:
            await self._save(merged)
        except PermanentError as exc:
            if len(taken) == 1:
                self._refused(taken[0], exc)
                return
            log.warning("the store refused a write of %d units of work; writing each alone: %s", len(taken), exc)
            for one in taken:
                try:
                    await self._save(one[0])
                except PermanentError as alone:
                    self._refused(one, alone)
                    continue
                await self._publish([one])
            return
        await self._publish(taken)

    async def _save(self, batch: ChangeBatch) -> None:
        """Write ``batch``; repeat it while the store is unavailable; raise PermanentError if refused."""
        attempt = 0
        while True:
            try:
                if self._crash_points:
                    crash_point("before-commit")
                await self._store.save(batch)
                if self._crash_points:
                    crash_point("after-commit")
                return
            except TemporaryError as exc:
                attempt += 1
                delay = self._retry.delay(attempt, self._rng)
                log.warning("store write failed (attempt %d), retrying in %.2f s: %s", attempt, delay, exc)
                await asyncio.sleep(delay)
            except PermanentError:
                raise
            except Exception as exc:  # a store that does not classify its failures: do not repeat
                raise PermanentError(f"the store failed: {exc!r}") from exc

    def _refused(self, entry: tuple[ChangeBatch, asyncio.Future[None]], exc: PermanentError) -> None:
        batch, future = entry
        log.error("the store refused a unit of work of %d changes; it is not stored: %s", len(batch.events), exc)
        if not future.done():
            future.set_exception(StoreRefused(f"the store refused this change: {exc}"))

    async def _publish(self, written: list[tuple[ChangeBatch, asyncio.Future[None]]]) -> None:
        events = [e for batch, _ in written for e in batch.events]
        error: Exception | None = None
        try:
            await self._sink.publish(events)
        except Exception as exc:  # the change is durable; a subscriber's failure is its own
            log.exception("publishing %d events failed", len(events))
            error = exc
        for _, future in written:
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
