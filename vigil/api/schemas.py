"""Request and response bodies of the REST API.

Responses are built from the domain dataclasses (``from_attributes``);
instances carry their host's ``host_status`` as Nova API 2.16 shows it.
Requests forbid unknown fields, so a misspelt option is a 422 rather than
silently ignored.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from vigil.api.storable import JSON_NUMBER, StorableIn
from vigil.domain.states import AdminState, DataPlaneStatus, GroupPolicy, HostStatus, InstanceState


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class _In(StorableIn):
    """A request body: see :mod:`vigil.api.storable`."""


class HostOut(_Out):
    name: str = Field(description="The host's name, e.g. compute-1.")
    zone: str = Field(description="Its availability zone.")
    switch: str | None = Field(description="The top-of-rack switch it sits behind; a host fails with its switch.")
    vcpus: int = Field(description="Its capacity in virtual CPUs.")
    vcpus_used: int = Field(description="vCPUs held by the instances on it and those migrating to it.")
    instances: int = Field(description="How many instances run on it.")
    admin_state: AdminState = Field(description="enabled or disabled for scheduling (Nova's service enable/disable).")
    forced_down: bool = Field(description="Its compute service is forced down (Nova's force-down).")
    reachable: bool = Field(description="Whether the monitors see its compute service.")
    disabled_reason: str | None = Field(description="Why it was disabled.")
    in_maintenance: bool = Field(description="Being maintained: the inspector takes no automatic fault action on it.")
    status: HostStatus = Field(
        description="Nova's host_status: DOWN (forced down), MAINTENANCE (disabled), UNKNOWN (unreachable) or UP."
    )


class InstanceOut(_Out):
    id: str = Field(description="The instance's id.")
    name: str = Field(description="Its name.")
    project: str = Field(description="The project (tenant) that owns it.")
    host: str | None = Field(description="The host it runs on (for a member, Nova's opaque per-project host id).")
    host_status: HostStatus | None = Field(description="Nova API 2.16 host_status of the instance's host")
    vcpus: int = Field(description="Virtual CPUs it takes of its host's capacity.")
    state: InstanceState = Field(description="BUILD, ACTIVE, SHUTOFF, MIGRATING or ERROR.")
    group: str | None = Field(description="Its server group's id, if any.")
    metadata: dict[str, str] = Field(description="Its key-value metadata.")
    migrating_to: str | None = Field(
        description="While MIGRATING, the destination host (for a member, Nova's opaque per-project host id)."
    )


class PortOut(_Out):
    id: str = Field(description="The port's id.")
    instance: str = Field(description="The instance it belongs to.")
    project: str = Field(description="The project that owns it.")
    host: str | None = Field(description="Its instance's host (for a member, Nova's opaque per-project host id).")
    network: str = Field(description="The network it is on.")
    data_plane_status: DataPlaneStatus = Field(description="Neutron's data_plane_status: ACTIVE or DOWN.")


class ServerGroupOut(_Out):
    id: str = Field(description="The group's id.")
    name: str = Field(description="Its name.")
    project: str = Field(description="The project that owns it.")
    policy: GroupPolicy = Field(description="affinity or anti-affinity: whether its members share hosts or never do.")
    alarm_threshold: int = Field(description="server_group.degraded is raised when this many members are down")
    members: list[str] = Field(description="Ids of its member instances.")


class ProjectOut(_Out):
    id: str = Field(description="The project's id.")
    name: str = Field(description="Its name.")


class EventOut(_Out):
    seq: int = Field(description="Its position in the log: pass the last seq seen as after= to read on.")
    time: str = Field(description="When the change was made (ISO 8601).")
    event_type: str = Field(description="<resource_type>.<created|updated|deleted>, e.g. instance.updated.")
    resource_type: str = Field(description="host, switch, project, server_group, instance or port.")
    resource_id: str = Field(description="The resource's id (a host's or switch's name).")
    project: str | None = Field(description="The owning project; none for infrastructure (hosts, switches).")
    reason: str | None = Field(description="Why: the operation or the fault that caused it.")
    changes: dict[str, list[object]] = Field(description="Each changed field: [old, new].")


class BootRequest(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "app-stby-2",
                    "project": "vnf-a",
                    "vcpus": 2,
                    "group": "vnf-a-ha",
                    "metadata": {"role": "STBY"},
                    "networks": ["data"],
                },
                {"name": "lb-2", "project": "vnf-a", "vcpus": 1, "host": "compute-4", "networks": ["data", "mgmt"]},
            ]
        }
    )

    name: str = Field(min_length=1, max_length=255, description="The instance's name (need not be unique).")
    project: str | None = Field(
        None,
        description="Admins boot into any project; members only into their own. Default: the caller's project.",
    )
    vcpus: Annotated[int, Field(ge=1, le=1024), JSON_NUMBER] = Field(
        1, description="Virtual CPUs it takes of its host's capacity."
    )
    group: str | None = Field(
        None,
        description="Id of a server group of the same project to join; its (anti-)affinity policy rules placement.",
    )
    metadata: dict[str, str] = Field(
        default_factory=dict, description="Free key-value metadata, kept and shown with the instance."
    )
    host: str | None = Field(None, description="Admin only: place on this host instead of scheduling.")
    networks: list[str] = Field(
        default_factory=lambda: ["data"],
        max_length=16,
        description="Networks to attach the instance to: one port on each.",
    )


class InstanceActionRequest(_In):
    """Actions on an instance, as Nova's server actions. ``stop`` and
    ``start`` are open to the instance's project; the others are admin's."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"action": "stop"},
                {"action": "live-migrate", "host": "compute-2"},
                {"action": "reset-state", "state": "ACTIVE"},
            ]
        }
    )

    action: Literal["stop", "start", "migrate", "live-migrate", "evacuate", "reset-state"] = Field(
        description=(
            "stop (ACTIVE to SHUTOFF) and start (SHUTOFF to ACTIVE) are open to the instance's project; migrate, "
            "live-migrate, evacuate and reset-state need the admin role."
        )
    )
    host: str | None = Field(
        None, description="Target host for migrate, live-migrate and evacuate; none: the scheduler chooses."
    )
    state: InstanceState | None = Field(None, description="For reset-state: ACTIVE or ERROR.")


class GroupPatch(_In):
    model_config = ConfigDict(json_schema_extra={"examples": [{"alarm_threshold": 2}]})

    alarm_threshold: Annotated[int, Field(ge=1, le=10_000), JSON_NUMBER] = Field(
        description="server_group.degraded is raised when this many of the group's members are down."
    )


class HostAction(_In):
    """Admin actions on a host, as Nova's service enable/disable/force-down;
    ``maintenance-on``/``-off`` suppress the inspector's automatic fault actions."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"action": "disable", "reason": "firmware upgrade"},
                {"action": "force-down", "reason": "BMC reports a failed power supply"},
                {"action": "enable"},
            ]
        }
    )

    action: Literal["enable", "disable", "force-down", "force-up", "maintenance-on", "maintenance-off"] = Field(
        description=(
            "enable/disable: scheduling on the host (Nova's service enable/disable); force-down/force-up: mark its "
            "compute service down or up; maintenance-on/maintenance-off: suspend or resume the inspector's "
            "automatic fault actions on it."
        )
    )
    reason: str | None = Field(
        None,
        max_length=255,
        description="Why: the reason of the change in the event log, and the host's disabled_reason on disable.",
    )
