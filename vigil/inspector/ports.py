"""What the inspector needs from the controller, the notifier and the store.

The controller's transactions hand out units of work on the resource map
(the inspector's own fault actions, :mod:`vigil.inspector.fault_actions`,
work inside them); the notifier keeps alarms and publishes their changes;
the journal makes reports durable before they are applied. Each satisfies
these Protocols structurally; the wiring plugs them in. No VIM driver is
among them: the inspector never calls one.
"""

from asyncio import Future
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any, Protocol

from vigil.domain.alarms import Alarm, AlarmChange, AlarmKind
from vigil.domain.deliveries import Delivery
from vigil.domain.faults import Fault, FaultId, Severity
from vigil.domain.model import Host, Instance, Port, ServerGroup
from vigil.domain.records import Record


class ResourceView(Protocol):
    def host(self, name: str) -> Host: ...
    def hosts_behind(self, switch: str) -> list[Host]: ...
    def switch(self, name: str) -> Any: ...
    def group(self, ident: str) -> ServerGroup: ...
    def members(self, group: str) -> list[Instance]: ...
    def instance(self, ident: str) -> Instance: ...
    def groups(self, project: str | None = None) -> list[ServerGroup]: ...
    def instances_on(self, host: str) -> list[Instance]: ...
    def ports_of(self, instance: str) -> list[Port]: ...
    def port(self, ident: str) -> Port: ...


class UnitOfWork(Protocol):
    @property
    def map(self) -> ResourceView: ...

    def update(self, resource: Any, **fields: Any) -> Any: ...

    def record(self, record: Record) -> None: ...

    def forget(self, record: Record) -> None: ...


class Controller(Protocol):
    """Units of work on the resource map (:class:`vigil.controller.transactions.Transactions`)."""

    @property
    def map(self) -> ResourceView: ...

    def begin(self, reason: str, *, now: datetime | None = None) -> Any: ...

    async def commit(self, changes: Any) -> None: ...

    def submit(self, changes: Any, *, hold: Awaitable[None] | None = None) -> "Future[None]": ...


class Journal(Protocol):
    def append(self, records: Sequence[Record]) -> "Future[None]":
        """Make ``records`` durable in a transaction of their own, group-committed; resolves when written."""
        ...


class Alarms(Protocol):
    def raise_alarm(
        self,
        *,
        cause: str,
        kind: AlarmKind,
        project: str | None,
        resource_type: str,
        resource_id: str,
        severity: Severity,
        fault: FaultId,
        reason: str,
        now: datetime,
        resource_ids: list[str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> AlarmChange: ...

    def update(
        self, alarm: Alarm, now: datetime, *, severity: Severity | None = None, resource_ids: list[str] | None = None
    ) -> AlarmChange | None: ...

    def clear(self, alarm: Alarm, now: datetime) -> AlarmChange: ...

    def active(self, kind: AlarmKind, resource_id: str, project: str | None = None) -> Alarm | None: ...

    def of_fault(self, fault: str) -> list[Alarm]: ...


class Publisher(Protocol):
    def publish(
        self, changes: Sequence[AlarmChange], fault: Fault | None, uow: UnitOfWork, *, start: bool = True
    ) -> list[Delivery]: ...

    def deliver(self, deliveries: Sequence[Delivery], fault: Fault | None) -> None: ...

    async def settle(self, deliveries: Sequence[Delivery], timeout_s: float) -> None: ...
