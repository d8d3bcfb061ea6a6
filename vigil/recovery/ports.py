"""What recovery needs from the controller, the inspector, the notifier and a fence device.

Each is satisfied structurally by the wiring: the controller's transactions
(units of work on the resource map), the inspector's open faults, the
notifier's alarm book and publisher, and :class:`vigil.fencing.fencer.AgentFencer`.
"""

from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any, Protocol

from vigil.domain.alarms import Alarm, AlarmChange, AlarmKind
from vigil.domain.deliveries import Delivery
from vigil.domain.faults import Fault, FaultId, Severity
from vigil.domain.fencing import FenceOutcome
from vigil.domain.model import Host, Instance, ServerGroup
from vigil.domain.records import Record
from vigil.domain.states import InstanceState


class HostView(Protocol):
    def host(self, name: str) -> Host: ...


class UnitOfWork(Protocol):
    @property
    def map(self) -> HostView: ...

    def update(self, resource: Any, **fields: Any) -> Any: ...

    def record(self, record: Record) -> None: ...


class Controller(Protocol):
    @property
    def map(self) -> HostView: ...

    def begin(self, reason: str, *, now: datetime | None = None) -> Any: ...

    async def commit(self, changes: Any) -> None: ...


class Faults(Protocol):
    def open_faults(self) -> list[Fault]: ...


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

    def update(self, alarm: Alarm, now: datetime, *, details: dict[str, Any] | None = None) -> AlarmChange | None: ...

    def of_fault(self, fault: str) -> list[Alarm]: ...


class Publisher(Protocol):
    def publish(
        self, changes: Sequence[AlarmChange], fault: Fault | None, uow: Any, *, start: bool = True
    ) -> list[Delivery]: ...

    def deliver(self, deliveries: Sequence[Delivery], fault: Fault | None) -> None: ...


class Inventory(Protocol):
    """Reads of the resource map that recovery plans on."""

    def host(self, name: str) -> Host: ...

    def hosts(self) -> list[Host]: ...

    def instances_on(self, host: str) -> list[Instance]: ...

    def instance(self, ident: str) -> Instance: ...

    def group(self, ident: str) -> ServerGroup: ...


class Started(Protocol):
    """An operation a VIM started (:class:`vigil.controller.vim.Operation`): its end is awaited."""

    @property
    def done(self) -> Awaitable[Instance]: ...


class RecoveryVim(Protocol):
    """The VIM's operations recovery uses (the embedded cloud, or the OpenStack driver through Nova)."""

    @property
    def map(self) -> Inventory: ...

    async def evacuate(self, instance_id: str, *, target: str | None = None) -> Started: ...

    async def set_host_enabled(self, host: str, enabled: bool, *, reason: str | None = None) -> Host: ...


class RestartVim(Protocol):
    """The VIM's operations a restart in place uses."""

    @property
    def map(self) -> Inventory: ...

    async def reset_state(self, instance_id: str, state: InstanceState, *, reason: str | None = None) -> Instance: ...

    async def stop(self, instance_id: str) -> Instance: ...

    async def start(self, instance_id: str) -> Instance: ...


class Fencer(Protocol):
    def configured(self, host: str) -> bool: ...

    async def fence(self, host: str) -> FenceOutcome: ...

    async def aclose(self) -> None: ...
