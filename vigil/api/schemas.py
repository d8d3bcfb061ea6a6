"""Request and response bodies of the REST API.

Responses are built from the domain dataclasses (``from_attributes``);
instances carry their host's ``host_status`` as Nova API 2.16 shows it.
Requests forbid unknown fields, so a misspelt option is a 422 rather than
silently ignored.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vigil.api.storable import StorableIn
from vigil.domain.states import AdminState, DataPlaneStatus, GroupPolicy, HostStatus, InstanceState


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class _In(StorableIn):
    """A request body: see :mod:`vigil.api.storable`."""


class HostOut(_Out):
    name: str
    zone: str
    switch: str | None
    vcpus: int
    vcpus_used: int
    instances: int
    admin_state: AdminState
    forced_down: bool
    reachable: bool
    disabled_reason: str | None
    in_maintenance: bool
    status: HostStatus


class InstanceOut(_Out):
    id: str
    name: str
    project: str
    host: str | None
    host_status: HostStatus | None = Field(description="Nova API 2.16 host_status of the instance's host")
    vcpus: int
    state: InstanceState
    group: str | None
    metadata: dict[str, str]
    migrating_to: str | None


class PortOut(_Out):
    id: str
    instance: str
    project: str
    host: str | None
    network: str
    data_plane_status: DataPlaneStatus


class ServerGroupOut(_Out):
    id: str
    name: str
    project: str
    policy: GroupPolicy
    alarm_threshold: int = Field(description="server_group.degraded is raised when this many members are down")
    members: list[str]


class ProjectOut(_Out):
    id: str
    name: str


class EventOut(_Out):
    seq: int
    time: str
    event_type: str
    resource_type: str
    resource_id: str
    project: str | None
    reason: str | None
    changes: dict[str, list[object]]


class BootRequest(_In):
    name: str = Field(min_length=1, max_length=255)
    project: str | None = Field(None, description="Admins boot into any project; members only into their own.")
    vcpus: int = Field(1, ge=1, le=1024)
    group: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    host: str | None = Field(None, description="Admin only: place on this host instead of scheduling.")
    networks: list[str] = Field(default_factory=lambda: ["data"], max_length=16)


class InstanceAction(_In):
    """Actions on an instance, as Nova's server actions. ``stop`` and
    ``start`` are open to the instance's project; the others are admin's."""

    action: Literal["stop", "start", "migrate", "live-migrate", "evacuate", "reset-state"]
    host: str | None = Field(None, description="Target host for migrate, live-migrate and evacuate.")
    state: InstanceState | None = Field(None, description="For reset-state: ACTIVE or ERROR.")


class GroupPatch(_In):
    alarm_threshold: int = Field(ge=1, le=10_000)


class HostAction(_In):
    """Admin actions on a host, as Nova's service enable/disable/force-down;
    ``maintenance-on``/``-off`` suppress the inspector's automatic fault actions."""

    action: Literal["enable", "disable", "force-down", "force-up", "maintenance-on", "maintenance-off"]
    reason: str | None = Field(None, max_length=255)
