"""Recording changes and committing them in order.

A :class:`Changes` is one operation's unit of work: it applies each change
to the resource map at once (so every query sees it immediately), and
records a row snapshot and a :class:`ResourceEvent` for it.

The :class:`Committer` then makes the operation durable and public. It is a
group commit: batches submitted while a write is under way are merged and
written in the next single transaction, and events are published strictly
in ``seq`` order after the write. One slow fsync therefore costs a burst of
changes one write, not one each.
"""

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from vigil.controller.ports import ChangeBatch, EventSink, Store
from vigil.controller.resource_map import Change, ResourceMap
from vigil.domain.copying import snapshot
from vigil.domain.events import EventAction, ResourceEvent
from vigil.domain.model import Resource, as_dict, owner, resource_type
from vigil.domain.records import Record, record_kind

log = logging.getLogger(__name__)


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
    """Writes change batches in submission order, merging those that queue up."""

    def __init__(self, store: Store, sink: EventSink, *, retries: int = 5, backoff_s: float = 0.05) -> None:
        self._store = store
        self._sink = sink
        self._retries = retries
        self._backoff_s = backoff_s
        self._pending: list[tuple[ChangeBatch, asyncio.Future[None]]] = []
        # Futures of the batches taken off _pending and being written now.
        self._writing: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="vigil.controller.committer")

    async def stop(self) -> None:
        """Write what is pending, then stop."""
        if self._task is None:
            return
        await self.flush()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def submit(self, batch: ChangeBatch) -> asyncio.Future[None]:
        """Queue a batch; the future resolves when it is written and published."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not batch:
            future.set_result(None)
            return future
        if self._task is None:
            raise RuntimeError("committer is not started")
        self._pending.append((batch, future))
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
            merged = ChangeBatch()
            for batch, _ in taken:
                merged.merge(batch)
            error = await self._write(merged)
            self._writing = []
            for _, future in taken:
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

    async def _write(self, batch: ChangeBatch) -> Exception | None:
        for attempt in range(self._retries + 1):
            try:
                await self._store.save(batch)
                break
            except Exception as exc:  # the store's error is reported to every waiter
                if attempt == self._retries:
                    log.error("giving up writing %d changes: %s", len(batch.events), exc)
                    return exc
                log.warning("store write failed (attempt %d), retrying: %s", attempt + 1, exc)
                await asyncio.sleep(self._backoff_s * 2**attempt)
        try:
            await self._sink.publish(batch.events)
        except Exception as exc:  # the change is durable; a subscriber's failure is its own
            log.exception("publishing %d events failed", len(batch.events))
            return exc
        return None
