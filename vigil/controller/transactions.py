"""Units of work on the resource map and the records, made durable in order.

Every change Vigil makes, whoever makes it, is a
:class:`~vigil.controller.changes.Changes`: the map changes at once, and the
committer writes its rows, records and events in one transaction, in the
order units were submitted, then publishes the events. The inspector opens
one per report (its fault, alarms, resource changes and outbox together),
the notifier and the maintenance service save their records, the API
saves alarms and subscriptions, and a VIM driver makes its operations one.

This was part of the embedded cloud, which made every engine depend on the
one VIM driver for what has nothing to do with a VIM. It is its own piece
now, shared by all of them and by whichever driver runs.
"""

import asyncio
from collections.abc import Awaitable
from datetime import datetime

from vigil.controller.changes import Changes, Committer, EventCounter
from vigil.controller.ports import Clock
from vigil.controller.resource_map import ResourceMap
from vigil.domain.records import Record


class Transactions:
    """Opens units of work on one map and hands them to the one committer (the store's single writer)."""

    def __init__(self, rmap: ResourceMap, committer: Committer, clock: Clock) -> None:
        self.map = rmap
        self.counter = EventCounter()
        self._committer = committer
        self._clock = clock

    def begin(self, reason: str, *, now: datetime | None = None) -> Changes:
        """A unit of work stamped ``now`` (the inspector passes the time of the report it applies, so
        applying it again gives the same events), or the clock's time."""
        return Changes(self.map, self.counter, now or self._clock(), reason)

    async def commit(self, changes: Changes) -> None:
        """Make a unit of work durable and publish its events."""
        await self._committer.submit(changes.batch)

    def submit(self, changes: Changes, *, hold: Awaitable[None] | None = None) -> "asyncio.Future[None]":
        """Queue a unit of work for the committer (in submission order) and return its future;
        ``hold`` delays its write (bounded by the caller) while notifications go out."""
        return self._committer.submit(changes.batch, hold=hold)

    async def save_records(self, *records: Record) -> None:
        """Make records (deliveries, faults, subscriptions, sessions) durable in a transaction of their own."""
        changes = self.begin("record")
        for record in records:
            changes.record(record)
        await self.commit(changes)

    async def delete_records(self, *records: Record) -> None:
        changes = self.begin("delete record")
        for record in records:
            changes.forget(record)
        await self.commit(changes)
