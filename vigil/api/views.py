"""Turning domain objects into response bodies, and paging lists.

Kept apart from the routes so every route renders a resource the same way
(an instance always carries its host's ``host_status``). A tenant never sees
a host's name: where an answer to a member (``viewer``) would name a host, it
names Nova's opaque host id for that project instead
(``vigil.domain.model.opaque_host_id``), as the tenant's alarms do.
"""

from collections.abc import Callable, Sequence
from typing import TypeVar

from fastapi import Query

from vigil.api.auth import Principal
from vigil.api.schemas import EventOut, HostOut, InstanceOut, PortOut, ServerGroupOut
from vigil.controller.resource_map import ResourceMap
from vigil.domain.errors import NotFound
from vigil.domain.events import ResourceEvent
from vigil.domain.model import Host, Instance, Port, ServerGroup, opaque_host_id

# Fields that name a host, in resources and in the changes of their events.
HOST_FIELDS = ("host", "migrating_to")


def shown_host(viewer: Principal | None, project: str | None, host: str | None) -> str | None:
    """A host as ``viewer`` may see it: its name for an admin, its opaque id for a tenant."""
    if host is None or viewer is None or viewer.is_admin:
        return host
    return opaque_host_id(project or viewer.project, host)


T = TypeVar("T")

Limit = Query(1000, ge=1, le=10000, description="At most this many items.")
Marker = Query(None, description="Start after the item with this id (the last one of the previous page).")


def page(items: Sequence[T], marker: str | None, limit: int, key: Callable[[T], str]) -> list[T]:
    """Nova-style paging: the items after ``marker``, at most ``limit``."""
    start = 0
    if marker is not None:
        for i, item in enumerate(items):
            if key(item) == marker:
                start = i + 1
                break
        else:
            raise NotFound("marker", marker)
    return list(items[start : start + limit])


def host_view(rmap: ResourceMap, host: Host) -> HostOut:
    return HostOut(
        name=host.name,
        zone=host.zone,
        switch=host.switch,
        vcpus=host.vcpus,
        vcpus_used=rmap.used_vcpus(host.name),
        instances=len(rmap.instances_on(host.name)),
        admin_state=host.admin_state,
        forced_down=host.forced_down,
        reachable=host.reachable,
        disabled_reason=host.disabled_reason,
        in_maintenance=host.in_maintenance,
        status=host.status,
    )


def instance_view(rmap: ResourceMap, inst: Instance, viewer: Principal | None = None) -> InstanceOut:
    host_status = rmap.host(inst.host).status if inst.host is not None else None
    return InstanceOut(
        id=inst.id,
        name=inst.name,
        project=inst.project,
        host=shown_host(viewer, inst.project, inst.host),
        host_status=host_status,
        vcpus=inst.vcpus,
        state=inst.state,
        group=inst.group,
        metadata=dict(inst.metadata),
        migrating_to=shown_host(viewer, inst.project, inst.migrating_to),
    )


def port_view(port: Port, viewer: Principal | None = None) -> PortOut:
    view = PortOut.model_validate(port)
    view.host = shown_host(viewer, port.project, port.host)
    return view


def group_view(rmap: ResourceMap, group: ServerGroup) -> ServerGroupOut:
    return ServerGroupOut(
        id=group.id,
        name=group.name,
        project=group.project,
        policy=group.policy,
        alarm_threshold=group.alarm_threshold,
        members=[m.id for m in rmap.members(group.id)],
    )


def event_view(event: ResourceEvent, viewer: Principal | None = None) -> EventOut:
    def shown(name: str, value: object) -> object:
        if name in HOST_FIELDS and isinstance(value, str):
            return shown_host(viewer, event.project, value)
        return value

    return EventOut(
        seq=event.seq,
        time=event.time.isoformat(),
        event_type=event.event_type,
        resource_type=event.resource_type,
        resource_id=event.resource_id,
        project=event.project,
        reason=event.reason,
        changes={k: [shown(k, v) for v in values] for k, values in event.changes.items()},
    )
