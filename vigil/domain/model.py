"""The resources Vigil keeps in its map: switches, hosts, projects, server
groups, instances and their ports.

These are plain mutable dataclasses with ``slots`` (a hundred thousand
instances must fit in well under a gigabyte). They are changed only through
:class:`vigil.controller.resource_map.ResourceMap`, which checks state
transitions and keeps its indices true; code elsewhere reads them.
"""

import hashlib
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, TypeVar

from vigil.domain.ids import GroupId, HostName, InstanceId, PortId, ProjectId, SwitchName
from vigil.domain.states import (
    AdminState,
    DataPlaneStatus,
    GroupPolicy,
    HostStatus,
    InstanceState,
    derive_host_status,
)


class ResourceType(StrEnum):
    SWITCH = "switch"
    HOST = "host"
    PROJECT = "project"
    SERVER_GROUP = "server_group"
    INSTANCE = "instance"
    PORT = "port"


@dataclass(slots=True)
class Switch:
    """A top-of-rack switch; every host behind it fails with it."""

    name: SwitchName

    @property
    def ident(self) -> str:
        return self.name


@dataclass(slots=True)
class Host:
    """A compute host and the state of its compute service.

    ``reachable`` is the service's liveness as the monitors see it; together
    with the admin state and ``forced_down`` it gives Nova's ``host_status``.
    ``in_maintenance`` is set by the maintenance workflow while the host is
    being maintained: the inspector takes no automatic fault action on it.
    """

    name: HostName
    zone: str = "nova"
    switch: SwitchName | None = None
    vcpus: int = 8
    admin_state: AdminState = AdminState.ENABLED
    forced_down: bool = False
    reachable: bool = True
    disabled_reason: str | None = None
    in_maintenance: bool = False

    @property
    def ident(self) -> str:
        return self.name

    @property
    def status(self) -> HostStatus:
        return derive_host_status(admin_state=self.admin_state, forced_down=self.forced_down, reachable=self.reachable)

    @property
    def schedulable(self) -> bool:
        """Whether new instances may be placed here."""
        return self.status is HostStatus.UP


@dataclass(slots=True)
class Project:
    """A tenant: owns instances, groups and ports, and sees only those."""

    id: ProjectId
    name: str

    @property
    def ident(self) -> str:
        return self.id


@dataclass(slots=True)
class ServerGroup:
    """A set of instances placed together (affinity) or apart (anti-affinity).

    ``alarm_threshold``: a ``server_group.degraded`` alarm is raised once at
    least this many members are down (Doctor's "notify only when more than
    two standby VMs of an N+M deployment failed" is a threshold of 3).
    """

    id: GroupId
    name: str
    project: ProjectId
    policy: GroupPolicy = GroupPolicy.ANTI_AFFINITY
    alarm_threshold: int = 1

    @property
    def ident(self) -> str:
        return self.id


@dataclass(slots=True)
class Instance:
    """A virtual machine.

    While MIGRATING it still runs on ``host`` and holds capacity on
    ``migrating_to`` too, so the scheduler cannot overbook the target.
    """

    id: InstanceId
    name: str
    project: ProjectId
    host: HostName | None
    vcpus: int = 1
    state: InstanceState = InstanceState.ACTIVE
    group: GroupId | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    migrating_to: HostName | None = None

    @property
    def ident(self) -> str:
        return self.id


@dataclass(slots=True)
class Port:
    """A Neutron-style port of an instance; it follows the instance's host."""

    id: PortId
    instance: InstanceId
    project: ProjectId
    host: HostName | None
    network: str = "data"
    data_plane_status: DataPlaneStatus = DataPlaneStatus.ACTIVE

    @property
    def ident(self) -> str:
        return self.id


Resource = Switch | Host | Project | ServerGroup | Instance | Port

RESOURCE_TYPES: dict[type[Resource], ResourceType] = {
    Switch: ResourceType.SWITCH,
    Host: ResourceType.HOST,
    Project: ResourceType.PROJECT,
    ServerGroup: ResourceType.SERVER_GROUP,
    Instance: ResourceType.INSTANCE,
    Port: ResourceType.PORT,
}


R = TypeVar("R", bound=Resource)


def resource_type(resource: Resource) -> ResourceType:
    return RESOURCE_TYPES[type(resource)]


def owner(resource: Resource) -> ProjectId | None:
    """The project a resource belongs to; None for infrastructure."""
    if isinstance(resource, Instance | Port | ServerGroup):
        return resource.project
    if isinstance(resource, Project):
        return resource.id
    return None


def as_dict(resource: Resource) -> dict[str, Any]:
    """The resource's fields as plain values (enums stay ``str`` subclasses)."""
    return {f.name: getattr(resource, f.name) for f in fields(resource)}


def opaque_host_id(project: str, host: str) -> str:
    """Nova's ``hostId``: tells a tenant whether two of its instances share a host, not which host.

    Every answer to a tenant that would name a host names this instead (its
    instances and ports, their events, its alarms)."""
    return hashlib.sha224(f"{project}{host}".encode()).hexdigest()
