"""Placement: which host may take an instance, and which is best.

A host passes when it is schedulable (UP: enabled, not forced down,
reachable), has the free vCPUs, and keeps the instance's server group policy
(anti-affinity: no other member there or on its way there; affinity: where
the other members are). Among those that pass, the one with the most free
vCPUs wins, as Nova's default spreading weigher does; ties go to the name,
so placement is repeatable.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from vigil.controller.resource_map import ResourceMap
from vigil.domain.errors import NoValidHost
from vigil.domain.model import Host, ServerGroup
from vigil.domain.states import GroupPolicy


@dataclass(slots=True)
class PlacementRequest:
    """What is being placed. ``instance_id`` names an instance being moved,
    so it does not count against itself in its own group."""

    vcpus: int
    group: ServerGroup | None = None
    instance_id: str | None = None
    _places: set[str] | None = field(default=None, init=False, repr=False)

    def group_places(self, rmap: ResourceMap) -> set[str]:
        """Hosts the other group members run on or are moving to (computed once)."""
        if self._places is None:
            self._places = set()
            if self.group is not None:
                for member in rmap.members(self.group.id):
                    if member.id != self.instance_id:
                        self._places.update(h for h in (member.host, member.migrating_to) if h)
        return self._places


def rejection(rmap: ResourceMap, host: Host, request: PlacementRequest, *, require_up: bool = True) -> str | None:
    """Why ``host`` cannot take the request, or None if it can.

    ``require_up=False`` checks only capacity and policy: a topology may
    describe instances already sitting on a host that is down or disabled.
    """
    if require_up and not host.schedulable:
        return f"host {host.name} is {host.status}"
    free = rmap.free_vcpus(host.name)
    if free < request.vcpus:
        return f"host {host.name} has {free} free vCPUs, {request.vcpus} needed"
    group = request.group
    if group is not None:
        places = request.group_places(rmap)
        if group.policy is GroupPolicy.ANTI_AFFINITY and host.name in places:
            return f"host {host.name} already runs a member of anti-affinity group {group.name}"
        if group.policy is GroupPolicy.AFFINITY and places and host.name not in places:
            return f"affinity group {group.name} runs on {', '.join(sorted(places))}"
    return None


def select_host(
    rmap: ResourceMap,
    request: PlacementRequest,
    *,
    exclude: Iterable[str] = (),
) -> Host:
    """The best host for the request; raise NoValidHost if none qualifies."""
    excluded = set(exclude)
    best: Host | None = None
    best_key: tuple[int, str] | None = None
    for host in rmap.hosts():
        if host.name in excluded or rejection(rmap, host, request) is not None:
            continue
        key = (-rmap.free_vcpus(host.name), host.name)
        if best_key is None or key < best_key:
            best, best_key = host, key
    if best is None:
        where = f" in group {request.group.name}" if request.group else ""
        raise NoValidHost(f"no host can take {request.vcpus} vCPUs{where}")
    return best


def check_host(rmap: ResourceMap, host: Host, request: PlacementRequest, *, require_up: bool = True) -> Host:
    """Return ``host`` if it can take the request; raise NoValidHost saying why not."""
    reason = rejection(rmap, host, request, require_up=require_up)
    if reason is not None:
        raise NoValidHost(reason)
    return host
