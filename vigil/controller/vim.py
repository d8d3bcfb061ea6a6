"""The VIM port: what Vigil asks of a virtual infrastructure manager, whichever it is.

The embedded cloud (:class:`vigil.controller.cloud.EmbeddedCloud`) is one
driver, the zero-install default that plays Nova and Neutron itself; an
OpenStack driver is the next. The API and the wiring speak to a driver only
through this port, and the engines not at all: the inspector changes
Vigil's own map in its units of work (:mod:`vigil.controller.transactions`)
and the maintenance workflow states its own narrow needs
(:mod:`vigil.maintenance.ports`), which a driver meets structurally.

A driver keeps :attr:`Vim.map` true to its VIM: every operation changes the
map in a unit of work as it is accepted, so a query answers with the new
state at once, and an operation that takes time (boot, migrate, evacuate)
returns an :class:`Operation` whose ``done`` resolves when it ends.
"""

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from vigil.controller.ports import Clock
from vigil.controller.resource_map import ResourceMap
from vigil.domain.model import Host, Instance, Port, ServerGroup
from vigil.domain.states import DataPlaneStatus, InstanceState


@dataclass(slots=True)
class Operation:
    """A started operation: the instance after its first step, and its end."""

    instance: Instance
    done: asyncio.Task[Instance]


class Vim(Protocol):
    """A VIM driver: Nova's and Neutron's operations that Doctor and Fenix use, on Vigil's resource map."""

    @property
    def map(self) -> ResourceMap: ...

    @property
    def clock(self) -> Clock: ...

    async def boot(
        self,
        *,
        name: str,
        project: str,
        vcpus: int = 1,
        group: str | None = None,
        metadata: Mapping[str, str] | None = None,
        host: str | None = None,
        networks: Iterable[str] = ("data",),
    ) -> Operation: ...

    async def delete(self, instance_id: str) -> None: ...

    async def migrate(self, instance_id: str, *, target: str | None = None, live: bool = False) -> Operation: ...

    async def evacuate(self, instance_id: str, *, target: str | None = None) -> Operation: ...

    async def stop(self, instance_id: str) -> Instance: ...

    async def start(self, instance_id: str) -> Instance: ...

    async def reset_state(self, instance_id: str, state: InstanceState, *, reason: str | None = None) -> Instance: ...

    async def set_host_enabled(self, host: str, enabled: bool, *, reason: str | None = None) -> Host: ...

    async def set_host_forced_down(self, host: str, forced_down: bool, *, reason: str | None = None) -> Host: ...

    async def set_host_maintenance(self, host: str, in_maintenance: bool, *, reason: str | None = None) -> Host: ...

    async def set_port_status(self, port_id: str, status: DataPlaneStatus, *, reason: str | None = None) -> Port: ...

    async def set_group_alarm_threshold(self, group: str, threshold: int) -> ServerGroup:
        """Vigil's own setting on a server group (no VIM has it): a driver changes only the map."""
        ...
