"""Placement: which host may take an instance, and which is best.

A host passes when it is schedulable (UP: enabled, not forced down,
reachable) and passes the placement rules of :mod:`vigil.domain.placement`
(free vCPUs; the group's policy and FEAT03 constraints, counting members
where they run and where they are migrating to), which the maintenance
planner applies too. Among those that pass, the one with the most free
vCPUs wins, as Nova's default spreading weigher does; ties go to the name,
so placement is repeatable.
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from vigil.controller.resource_map import ResourceMap
from vigil.domain.errors import NoValidHost
from vigil.domain.model import Host
from vigil.domain.placement import GroupRules, capacity_rejection, group_rejection


@dataclass(slots=True)
class PlacementRequest:
    """What is being placed: its vCPUs and its group's rules. ``instance_id`` names an instance being moved, so it
    does not count against itself in its own group."""

    vcpus: int
    rules: GroupRules | None = None
    instance_id: str | None = None
    _places: Counter[str] | None = field(default=None, init=False, repr=False)

    def group_places(self, rmap: ResourceMap) -> Counter[str]:
        """How many of the other group members run on or are moving to each host (computed once)."""
        if self._places is None:
            self._places = Counter()
            if self.rules is not None:
                for member in rmap.members(self.rules.id):
                    if member.id != self.instance_id:
                        self._places.update({h for h in (member.host, member.migrating_to) if h})
        return self._places


def rejection(rmap: ResourceMap, host: Host, request: PlacementRequest, *, require_up: bool = True) -> str | None:
    """Why ``host`` cannot take the request, or None if it can.

    ``require_up=False`` checks only capacity and policy: a topology may
    describe instances already sitting on a host that is down or disabled.
    """
    if require_up and not host.schedulable:
        return f"host {host.name} is {host.status}"
    reason = capacity_rejection(host.name, rmap.free_vcpus(host.name), request.vcpus)
    if reason is None and request.rules is not None:
        places = request.group_places(rmap)
        elsewhere = [h for h, n in places.items() if n and h != host.name]
        reason = group_rejection(request.rules, host.name, places[host.name], elsewhere)
    return reason


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
        where = f" in group {request.rules.name}" if request.rules else ""
        raise NoValidHost(f"no host can take {request.vcpus} vCPUs{where}")
    return best


def check_host(rmap: ResourceMap, host: Host, request: PlacementRequest, *, require_up: bool = True) -> Host:
    """Return ``host`` if it can take the request; raise NoValidHost saying why not."""
    reason = rejection(rmap, host, request, require_up=require_up)
    if reason is not None:
        raise NoValidHost(reason)
    return host
