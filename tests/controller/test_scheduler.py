"""Placement: capacity, server group policies, unschedulable hosts and the spreading weigher."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.controller.resource_map import ResourceMap
from vigil.controller.scheduler import PlacementRequest, check_host, rejection, select_host
from vigil.domain.errors import Conflict, NoValidHost
from vigil.domain.ids import GroupId, HostName, InstanceId, ProjectId
from vigil.domain.maintenance import GroupConstraints
from vigil.domain.model import Host, Instance, Project, ServerGroup
from vigil.domain.placement import GroupRules
from vigil.domain.states import AdminState, GroupPolicy, InstanceState


def cloud(*vcpus: int) -> ResourceMap:
    """Hosts compute-1.. with the given vCPUs, one project, an anti-affinity and an affinity group."""
    rmap = ResourceMap()
    rmap.add_all(Host(HostName(f"compute-{n}"), vcpus=v) for n, v in enumerate(vcpus, start=1))
    rmap.add(Project(ProjectId("vnf-a"), "VNF A"))
    rmap.add(ServerGroup(GroupId("anti"), "app-ha", ProjectId("vnf-a"), GroupPolicy.ANTI_AFFINITY))
    rmap.add(ServerGroup(GroupId("aff"), "cache", ProjectId("vnf-a"), GroupPolicy.AFFINITY))
    return rmap


def rules_of(rmap: ResourceMap, group: str) -> GroupRules:
    """A group's placement rules with no FEAT03 constraints: its policy alone."""
    return GroupRules.of(rmap.group(group), None)


def place(rmap: ResourceMap, ident: str, host: str, *, vcpus: int = 1, group: str | None = None) -> Instance:
    inst = Instance(
        InstanceId(ident),
        ident,
        ProjectId("vnf-a"),
        HostName(host),
        vcpus=vcpus,
        group=GroupId(group) if group else None,
    )
    rmap.add(inst)
    return inst


def test_the_host_with_most_free_vcpus_wins() -> None:
    rmap = cloud(8, 8, 8)
    place(rmap, "a", "compute-1", vcpus=4)
    place(rmap, "b", "compute-2", vcpus=1)
    assert select_host(rmap, PlacementRequest(vcpus=1)).name == "compute-3"


def test_ties_on_free_vcpus_go_to_the_first_name() -> None:
    rmap = ResourceMap()
    rmap.add_all([Host(HostName("c")), Host(HostName("a")), Host(HostName("b"))])
    assert select_host(rmap, PlacementRequest(vcpus=1)).name == "a"


def test_repeated_placement_spreads_instances_across_hosts() -> None:
    rmap = cloud(4, 4, 4)
    placed = []
    for n in range(6):
        host = select_host(rmap, PlacementRequest(vcpus=1)).name
        place(rmap, f"i{n}", host)
        placed.append(host)
    assert placed == ["compute-1", "compute-2", "compute-3"] * 2


def test_a_host_without_enough_free_vcpus_is_skipped() -> None:
    rmap = cloud(8, 4)
    place(rmap, "a", "compute-1", vcpus=6)
    assert select_host(rmap, PlacementRequest(vcpus=3)).name == "compute-2"
    assert rejection(rmap, rmap.host("compute-1"), PlacementRequest(vcpus=3)) == (
        "host compute-1 has 2 free vCPUs, 3 needed"
    )


def test_an_instance_that_exactly_fills_a_host_fits() -> None:
    rmap = cloud(4)
    place(rmap, "a", "compute-1", vcpus=3)
    assert select_host(rmap, PlacementRequest(vcpus=1)).name == "compute-1"


def test_capacity_held_by_an_incoming_migration_counts_against_the_target() -> None:
    rmap = cloud(8, 4)
    inst = place(rmap, "a", "compute-1", vcpus=3)
    rmap.update(inst, state=InstanceState.MIGRATING, migrating_to="compute-2")
    assert rmap.free_vcpus("compute-2") == 1
    with pytest.raises(NoValidHost):
        check_host(rmap, rmap.host("compute-2"), PlacementRequest(vcpus=2))


def test_no_valid_host_says_what_could_not_be_placed() -> None:
    rmap = cloud(2, 2)
    with pytest.raises(NoValidHost) as caught:
        select_host(rmap, PlacementRequest(vcpus=3))
    assert str(caught.value) == "no host can take 3 vCPUs"
    assert isinstance(caught.value, Conflict)


def test_no_valid_host_names_the_group_when_the_policy_is_what_failed() -> None:
    rmap = cloud(8, 8)
    place(rmap, "a", "compute-1", group="anti")
    place(rmap, "b", "compute-2", group="anti")
    with pytest.raises(NoValidHost, match=r"^no host can take 1 vCPUs in group app-ha$"):
        select_host(rmap, PlacementRequest(vcpus=1, rules=rules_of(rmap, "anti")))


def test_an_empty_cloud_has_no_valid_host() -> None:
    with pytest.raises(NoValidHost):
        select_host(ResourceMap(), PlacementRequest(vcpus=1))


def test_anti_affinity_keeps_members_off_hosts_that_run_one() -> None:
    rmap = cloud(8, 2)
    place(rmap, "act", "compute-1", group="anti")
    request = PlacementRequest(vcpus=1, rules=rules_of(rmap, "anti"))
    # compute-1 has far more room, but already runs a member.
    assert select_host(rmap, request).name == "compute-2"
    assert rejection(rmap, rmap.host("compute-1"), request) == (
        "host compute-1 already runs a member of anti-affinity group app-ha"
    )


def test_anti_affinity_also_avoids_the_host_a_member_is_migrating_to() -> None:
    rmap = cloud(8, 8, 8)
    act = place(rmap, "act", "compute-1", group="anti")
    rmap.update(act, state=InstanceState.MIGRATING, migrating_to="compute-2")
    assert select_host(rmap, PlacementRequest(vcpus=1, rules=rules_of(rmap, "anti"))).name == "compute-3"


def test_a_member_being_moved_does_not_count_against_itself() -> None:
    rmap = cloud(8, 8)
    place(rmap, "act", "compute-1", group="anti")
    request = PlacementRequest(vcpus=1, rules=rules_of(rmap, "anti"), instance_id="act")
    assert rejection(rmap, rmap.host("compute-1"), request) is None


def test_instances_outside_the_group_do_not_matter_for_anti_affinity() -> None:
    rmap = cloud(8, 8)
    place(rmap, "plain", "compute-1")
    request = PlacementRequest(vcpus=1, rules=rules_of(rmap, "anti"))
    assert rejection(rmap, rmap.host("compute-1"), request) is None


def test_affinity_places_members_together() -> None:
    rmap = cloud(8, 8, 8)
    place(rmap, "busy", "compute-2", vcpus=6)
    place(rmap, "first", "compute-2", group="aff")
    request = PlacementRequest(vcpus=1, rules=rules_of(rmap, "aff"))
    assert select_host(rmap, request).name == "compute-2"
    assert rejection(rmap, rmap.host("compute-1"), request) == "affinity group cache runs on compute-2"


def test_the_first_member_of_an_affinity_group_may_go_anywhere() -> None:
    rmap = cloud(4, 8)
    assert select_host(rmap, PlacementRequest(vcpus=1, rules=rules_of(rmap, "aff"))).name == "compute-2"


def test_affinity_fails_when_the_groups_host_is_full() -> None:
    rmap = cloud(2, 8)
    place(rmap, "first", "compute-1", vcpus=2, group="aff")
    with pytest.raises(NoValidHost):
        select_host(rmap, PlacementRequest(vcpus=1, rules=rules_of(rmap, "aff")))


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"admin_state": AdminState.DISABLED}, "MAINTENANCE"),
        ({"forced_down": True}, "DOWN"),
        ({"reachable": False}, "UNKNOWN"),
    ],
)
def test_a_host_that_is_not_up_is_never_chosen(change: dict[str, object], status: str) -> None:
    rmap = cloud(16, 2)
    rmap.update(rmap.host("compute-1"), **change)
    assert select_host(rmap, PlacementRequest(vcpus=1)).name == "compute-2"
    with pytest.raises(NoValidHost, match=f"^host compute-1 is {status}$"):
        check_host(rmap, rmap.host("compute-1"), PlacementRequest(vcpus=1))


def test_an_existing_placement_on_a_host_that_is_down_may_be_checked_for_capacity_only() -> None:
    rmap = cloud(4)
    rmap.update(rmap.host("compute-1"), forced_down=True)
    request = PlacementRequest(vcpus=2)
    assert check_host(rmap, rmap.host("compute-1"), request, require_up=False).name == "compute-1"
    with pytest.raises(NoValidHost, match="free vCPUs"):
        check_host(rmap, rmap.host("compute-1"), PlacementRequest(vcpus=5), require_up=False)


def test_excluded_hosts_are_not_chosen() -> None:
    rmap = cloud(8, 4)
    assert select_host(rmap, PlacementRequest(vcpus=1), exclude=["compute-1"]).name == "compute-2"
    with pytest.raises(NoValidHost):
        select_host(rmap, PlacementRequest(vcpus=1), exclude=["compute-1", "compute-2"])


@settings(max_examples=60, deadline=None)
@given(
    capacities=st.lists(st.integers(1, 6), min_size=1, max_size=6),
    requests=st.lists(st.tuples(st.integers(1, 4), st.booleans()), min_size=1, max_size=25),
)
def test_placing_until_full_never_overbooks_a_host_or_breaks_anti_affinity(
    capacities: list[int], requests: list[tuple[int, bool]]
) -> None:
    rmap = cloud(*capacities)
    group = rmap.group("anti")
    for n, (vcpus, grouped) in enumerate(requests):
        request = PlacementRequest(vcpus=vcpus, rules=GroupRules.of(group, None) if grouped else None)
        fits = [
            h.name
            for h in rmap.hosts()
            if rmap.free_vcpus(h.name) >= vcpus
            and not (grouped and any(m.host == h.name for m in rmap.members(group.id)))
        ]
        try:
            host = select_host(rmap, request)
        except NoValidHost:
            assert fits == []
            continue
        assert host.name in fits
        best = max(rmap.free_vcpus(name) for name in fits)
        assert rmap.free_vcpus(host.name) == best
        place(rmap, f"i{n}", host.name, vcpus=vcpus, group="anti" if grouped else None)
    for h in rmap.hosts():
        assert rmap.used_vcpus(h.name) <= h.vcpus
        assert sum(1 for m in rmap.members(group.id) if m.host == h.name) <= 1


def test_feat03_max_instances_per_host_holds_for_the_scheduler_too() -> None:
    """Found (OpenStack issue): the maintenance planner honoured a group's FEAT03 ``max_instances_per_host`` and the
    scheduler did not, so a boot or a migration could break what maintenance had just kept."""
    rmap = cloud(8, 8, 8)
    place(rmap, "c1", "compute-1", group="aff")
    place(rmap, "c2", "compute-1", group="aff")
    rules = GroupRules.of(rmap.group("aff"), GroupConstraints("aff", "vnf-a", max_instances_per_host=2))
    assert rejection(rmap, rmap.host("compute-1"), PlacementRequest(vcpus=1, rules=rules)) == (
        "host compute-1 already runs 2 members of group cache, its most per host"
    )
    with pytest.raises(NoValidHost):  # affinity keeps it on compute-1, which is full for the group
        select_host(rmap, PlacementRequest(vcpus=1, rules=rules))
    assert select_host(rmap, PlacementRequest(vcpus=1, rules=rules_of(rmap, "aff"))).name == ("compute-1")
    spread = GroupRules.of(rmap.group("anti"), GroupConstraints("anti", "vnf-a", max_instances_per_host=1))
    place(rmap, "a1", "compute-2", group="anti")
    assert select_host(rmap, PlacementRequest(vcpus=1, rules=spread)).name in ("compute-1", "compute-3")
