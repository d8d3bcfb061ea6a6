"""The planner's view of the live cloud: capacity, placements, migrations in flight and group rules.

The planner (:mod:`vigil.domain.planner`) is pure and plans on a
:class:`~vigil.domain.planner.Layout`; this builds one from the resource
map and the FEAT03 constraints. An instance migrating holds its target as
well as its source, as the scheduler counts it, so a plan never fills the
host a migration is about to land on.
"""

from vigil.domain.maintenance import Constraints
from vigil.domain.model import Instance
from vigil.domain.placement import GroupRules
from vigil.domain.planner import Layout, PlanGroup, PlanInstance
from vigil.maintenance.ports import Inventory


def layout_of(inventory: Inventory, constraints: Constraints) -> Layout:
    capacity: dict[str, int] = {}
    instances: dict[str, PlanInstance] = {}
    groups: dict[str, PlanGroup] = {}
    for host in inventory.hosts():
        capacity[host.name] = host.vcpus
        for inst in inventory.instances_on(host.name):
            if inst.host != host.name:
                continue  # migrating here: taken once, where it runs, with its target
            instances[inst.id] = PlanInstance(inst.id, host.name, inst.vcpus, inst.group, inst.migrating_to)
            if inst.group is not None and inst.group not in groups:
                groups[inst.group] = plan_group(inventory, constraints, inst)
    return Layout(capacity=capacity, instances=instances, groups=groups)


def plan_group(inventory: Inventory, constraints: Constraints, inst: Instance) -> PlanGroup:
    """The planner's group of ``inst``: the placement rules the scheduler uses, with FEAT03's wave limits."""
    assert inst.group is not None
    group = constraints.groups.get(inst.group)
    rules = GroupRules.of(inventory.group(inst.group), group)
    return PlanGroup(
        id=rules.id,
        anti_affinity=rules.anti_affinity,
        affinity=rules.affinity,
        max_instances_per_host=rules.max_instances_per_host,
        max_impacted_members=group.max_impacted_members if group else 0,
        recovery_time=group.recovery_time if group else 0.0,
    )
