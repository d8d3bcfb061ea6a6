"""The journal: records made durable ahead of everything they cause.

The inspector's intake appends each southbound report here before it acts
on it. A :class:`Journal` is a :class:`~vigil.controller.changes.Committer`
of its own over the same store: appends from concurrent requests are group
committed into one transaction, a value the store refuses fails only its own
append, and an unavailable store is waited for. It has its own queue and
connection, so an append never waits behind a large derived write still
being prepared by the main committer (on SQLite it may wait for the
database's write lock, which that write holds only while it runs).

The journal's rows are the same records the derived state later updates
(a report ``accepted`` here becomes ``fault_opened`` with its fault), so
"applied" is written atomically with the effects.
"""

from asyncio import Future
from collections.abc import Sequence

from vigil.controller.changes import Committer
from vigil.controller.ports import ChangeBatch, Snapshot, Store
from vigil.domain.copying import snapshot
from vigil.domain.events import ResourceEvent
from vigil.domain.records import Record, record_kind


class _NoEvents:
    """A journal append publishes no resource events."""

    async def publish(self, events: Sequence[ResourceEvent]) -> None:
        return None


class _Appending:
    """The store seen through its quick path for small writes, where it has one."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def save(self, batch: ChangeBatch) -> None:
        append = getattr(self._store, "append", None)
        await (append(batch) if append is not None else self._store.save(batch))

    async def load(self) -> Snapshot:
        return await self._store.load()


class Journal:
    def __init__(self, store: Store) -> None:
        self._committer = Committer(_Appending(store), _NoEvents(), crash_points=False)

    def start(self) -> None:
        self._committer.start()

    async def stop(self) -> None:
        await self._committer.stop()

    def append(self, records: Sequence[Record]) -> "Future[None]":
        """Queue ``records`` (as they are now) for the next journal write; resolves once written."""
        batch = ChangeBatch()
        for record in records:
            batch.upserts[(record_kind(record), record.ident)] = snapshot(record)
        return self._committer.submit(batch)
