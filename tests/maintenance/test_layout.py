"""The planner's view of the live cloud (:func:`vigil.maintenance.layout.layout_of`)."""

from vigil.controller.resource_map import ResourceMap
from vigil.domain.ids import GroupId, HostName, InstanceId, ProjectId
from vigil.domain.maintenance import Constraints, GroupConstraints
from vigil.domain.model import Host, Instance, Project, ServerGroup
from vigil.domain.states import GroupPolicy
from vigil.maintenance.layout import layout_of


def test_the_layout_holds_capacity_placements_migrations_and_group_rules() -> None:
    rmap = ResourceMap()
    rmap.add_all(Host(HostName(f"compute-{n}"), vcpus=8) for n in (1, 2, 3))
    rmap.add(Project(ProjectId("p"), "P"))
    rmap.add(ServerGroup(GroupId("g"), "g", ProjectId("p"), GroupPolicy.AFFINITY))
    rmap.add(Instance(InstanceId("a"), "a", ProjectId("p"), HostName("compute-1"), vcpus=2, group=GroupId("g")))
    moving = Instance(InstanceId("b"), "b", ProjectId("p"), HostName("compute-1"), vcpus=3)
    moving.migrating_to = HostName("compute-2")
    rmap.add(moving)
    constraints = Constraints()
    constraints.groups["g"] = GroupConstraints("g", "p", max_instances_per_host=3, max_impacted_members=2)
    lay = layout_of(rmap, constraints)
    assert lay.capacity == {"compute-1": 8, "compute-2": 8, "compute-3": 8}
    assert lay.instances["b"].host == "compute-1"
    assert lay.instances["b"].migrating_to == "compute-2"
    assert (lay.used("compute-1"), lay.used("compute-2"), lay.used("compute-3")) == (5, 3, 0)
    group = lay.groups["g"]
    assert (group.affinity, group.anti_affinity, group.max_instances_per_host, group.max_impacted_members) == (
        True,
        False,
        3,
        2,
    )
