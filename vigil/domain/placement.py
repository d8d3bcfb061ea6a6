"""The placement rules, in one place: what a host must offer to take an instance.

Three parts of Vigil place instances: the scheduler (a boot, a migration or
an evacuation without a target), the maintenance planner (where a host's
instances go while it is maintained) and recovery. They used to keep their
own copies of the rules, and the copies drifted: the planner honoured a
group's FEAT03 ``max_instances_per_host`` and the scheduler did not. Each
now counts what it knows its own way (the scheduler from the resource map,
the planner from its search board) and asks these functions for the verdict,
so a rule changes once for all of them.

The rules: the host has the free vCPUs; an anti-affinity group (the server
group's policy, or FEAT03's ``anti_affinity_group``) has no other member
there; an affinity group has its other members nowhere else; and no more
than ``max_instances_per_host`` members of a group share a host. A member
counts on the host it runs on and on the host it is migrating to, which it
holds until the migration ends.
"""

import functools
import re
from collections.abc import Collection
from dataclasses import dataclass

from vigil.domain.maintenance import GroupConstraints
from vigil.domain.model import ServerGroup
from vigil.domain.states import GroupPolicy

_CHUNK = re.compile(r"(\D*)(\d*)")

NaturalKey = tuple[tuple[tuple[str, int], ...], str]


@functools.lru_cache(maxsize=8192)
def natural_key(name: str) -> NaturalKey:
    """Sort key that compares runs of digits as numbers: compute-2 before compute-10.

    Host names are numbered by people; plain string order would put
    compute-10 between compute-1 and compute-2, which nobody expects. The
    name itself closes the key so that "a01" and "a1" still have one order.
    """
    chunks = tuple((text, int(digits) if digits else -1) for text, digits in _CHUNK.findall(name) if text or digits)
    return chunks, name


@dataclass(frozen=True, slots=True)
class GroupRules:
    """What placement honours of an instance group: its server group's policy with its FEAT03 constraints."""

    id: str
    name: str
    anti_affinity: bool = False
    affinity: bool = False
    max_instances_per_host: int = 0  # 0: no limit

    @classmethod
    def of(cls, group: ServerGroup, constraints: GroupConstraints | None) -> "GroupRules":
        return cls(
            id=group.id,
            name=group.name,
            anti_affinity=group.policy is GroupPolicy.ANTI_AFFINITY
            or bool(constraints is not None and constraints.anti_affinity_group),
            affinity=group.policy is GroupPolicy.AFFINITY,
            max_instances_per_host=constraints.max_instances_per_host if constraints is not None else 0,
        )


def capacity_rejection(host: str, free: int, vcpus: int) -> str | None:
    """Why ``host`` with ``free`` vCPUs cannot take ``vcpus`` more, or None."""
    if free < vcpus:
        return f"host {host} has {free} free vCPUs, {vcpus} needed"
    return None


def group_rejection(rules: GroupRules, host: str, here: int, elsewhere: Collection[str]) -> str | None:
    """Why ``host`` cannot take one more member of the group, or None.

    ``here``: the group's other members on (or moving to) ``host``;
    ``elsewhere``: the other hosts where members are (or are moving to) that
    the instance's affinity set does not take along (the caller knows which).
    """
    if rules.anti_affinity and here:
        return f"host {host} already runs a member of anti-affinity group {rules.name}"
    if rules.max_instances_per_host and here >= rules.max_instances_per_host:
        return f"host {host} already runs {here} members of group {rules.name}, its most per host"
    if rules.affinity and elsewhere:
        return f"affinity group {rules.name} runs on {', '.join(sorted(elsewhere, key=natural_key))}"
    return None
