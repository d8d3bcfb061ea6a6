"""The maintenance engine's ports: what it needs from the cloud, the notifier and the store.

The embedded cloud (``vigil.controller.cloud.EmbeddedCloud``) is the
:class:`Cloud`; its resource map the :class:`Inventory`; the notifier the
:class:`Messenger`. The wiring plugs them in; tests use the same real parts.
"""

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from vigil.domain.maintenance import MaintenanceMessage
from vigil.domain.model import Host, Instance, ServerGroup
from vigil.domain.records import Record

Clock = Callable[[], datetime]


class Inventory(Protocol):
    """Reads of the resource map."""

    def host(self, name: str) -> Host: ...

    def hosts(self) -> list[Host]: ...

    def instance(self, ident: str) -> Instance: ...

    def instances(self, project: str | None = None) -> list[Instance]: ...

    def instances_on(self, host: str) -> list[Instance]: ...

    def group(self, ident: str) -> ServerGroup: ...

    def project(self, ident: str) -> object: ...


class Migration(Protocol):
    """A migration under way; ``done`` resolves to the instance as it ends."""

    @property
    def done(self) -> "asyncio.Future[Instance]": ...


class Cloud(Protocol):
    @property
    def map(self) -> Inventory: ...

    async def migrate(self, instance_id: str, *, target: str | None = None, live: bool = False) -> Migration: ...

    async def set_host_enabled(self, host: str, enabled: bool, *, reason: str | None = None) -> Host: ...

    async def set_host_maintenance(self, host: str, in_maintenance: bool, *, reason: str | None = None) -> Host: ...


class Records(Protocol):
    """Where sessions and constraints are made durable (the controller's transactions), apart from the VIM."""

    async def save_records(self, *records: Record) -> None: ...

    async def delete_records(self, *records: Record) -> None: ...


class Messenger(Protocol):
    """Sends a message to its subscribers through the notifier's durable outbox."""

    async def send_message(self, message: MaintenanceMessage) -> object: ...
