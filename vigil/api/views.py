"""Turning domain objects into response bodies, and paging lists.

Kept apart from the routes so every route renders a resource the same way
(an instance always carries its host's ``host_status``).
"""

from collections.abc import Callable, Sequence
from typing import TypeVar

from fastapi import Query

from vigil.api.schemas import EventOut, HostOut, InstanceOut, PortOut, ServerGroupOut
from vigil.controller.resource_map import ResourceMap
from vigil.domain.errors import NotFound
from vigil.domain.events import ResourceEvent
from vigil.domain.model import Host, Instance, Port, ServerGroup

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


def instance_view(rmap: ResourceMap, inst: Instance) -> InstanceOut:
    host_status = rmap.host(inst.host).status if inst.host is not None else None
    return InstanceOut(
        id=inst.id,
        name=inst.name,
        project=inst.project,
        host=inst.host,
        host_status=host_status,
        vcpus=inst.vcpus,
        state=inst.state,
        group=inst.group,
        metadata=dict(inst.metadata),
        migrating_to=inst.migrating_to,
    )


def port_view(port: Port) -> PortOut:
    return PortOut.model_validate(port)


def group_view(rmap: ResourceMap, group: ServerGroup) -> ServerGroupOut:
    return ServerGroupOut(
        id=group.id,
        name=group.name,
        project=group.project,
        policy=group.policy,
        alarm_threshold=group.alarm_threshold,
        members=[m.id for m in rmap.members(group.id)],
    )


def event_view(event: ResourceEvent) -> EventOut:
    return EventOut(
        seq=event.seq,
        time=event.time.isoformat(),
        event_type=event.event_type,
        resource_type=event.resource_type,
        resource_id=event.resource_id,
        project=event.project,
        reason=event.reason,
        changes={k: list(v) for k, v in event.changes.items()},
    )
