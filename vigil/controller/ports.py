"""The controller's ports: what it needs from the outside world.

Adapters implement these (``vigil.store`` the :class:`Store`, ``vigil.bus``
the :class:`EventSink`); the wiring in ``vigil.wiring`` plugs them in. Tests
use the real adapters too, so these Protocols are the whole contract.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from vigil.domain.events import ResourceEvent
from vigil.domain.model import Resource
from vigil.domain.records import Record

Clock = Callable[[], datetime]
"""Returns the current time (UTC, aware). Passed in so timers are testable."""


Key = tuple[str, str]
"""``(kind, ident)``: kind is a ResourceType or a RecordKind (both ``str`` enums)."""


@dataclass(slots=True)
class ChangeBatch:
    """What one transaction writes: final rows by key, deletions, and events in order.

    ``upserts`` holds resources and records (faults, alarms, subscriptions,
    deliveries) alike, each a snapshot taken when the change was made.
    """

    upserts: dict[Key, Resource | Record] = field(default_factory=dict)
    deletes: set[Key] = field(default_factory=set)
    events: list[ResourceEvent] = field(default_factory=list)

    def merge(self, later: "ChangeBatch") -> None:
        """Fold a later batch into this one; the later state of a resource wins."""
        for key, row in later.upserts.items():
            self.deletes.discard(key)
            self.upserts[key] = row
        for key in later.deletes:
            self.upserts.pop(key, None)
            self.deletes.add(key)
        self.events.extend(later.events)

    def __bool__(self) -> bool:
        return bool(self.upserts or self.deletes or self.events)


@dataclass(slots=True)
class Snapshot:
    """Everything a store holds, to rebuild the resource map after a restart."""

    resources: list[Resource]
    last_seq: int


class Store(Protocol):
    """Durable state of the resource map and its event log."""

    async def save(self, batch: ChangeBatch) -> None:
        """Write the whole batch in one transaction, or raise and write nothing."""
        ...

    async def load(self) -> Snapshot: ...


class EventSink(Protocol):
    """Where resource events go once they are durable."""

    async def publish(self, events: Sequence[ResourceEvent]) -> None: ...
