"""The topology generator: consistent, placed within capacity, with an ACT/STBY pair per project."""

from collections import Counter

import pytest

from vigil.controller.generate import generate
from vigil.controller.resource_map import ResourceMap
from vigil.domain.states import GroupPolicy
from vigil.domain.topology import Topology, check_references


def load(topology: Topology) -> ResourceMap:
    rmap = ResourceMap()
    rmap.add_all([*topology.switches, *topology.hosts, *topology.projects, *topology.groups, *topology.instances])
    return rmap


def test_a_generated_topology_passes_check_references() -> None:
    check_references(generate(hosts=45, instances_per_host=3, projects=7))


def test_every_host_runs_exactly_instances_per_host_instances() -> None:
    topology = generate(hosts=10, instances_per_host=4, projects=3)
    assert len(topology.instances) == 40
    assert Counter(i.host for i in topology.instances) == {h.name: 4 for h in topology.hosts}


def test_hosts_are_grouped_into_racks_of_hosts_per_switch() -> None:
    topology = generate(hosts=85, instances_per_host=1, projects=1, hosts_per_switch=40)
    assert [s.name for s in topology.switches] == ["tor-001", "tor-002", "tor-003"]
    assert Counter(h.switch for h in topology.hosts) == {"tor-001": 40, "tor-002": 40, "tor-003": 5}


def test_instances_are_dealt_round_robin_to_projects() -> None:
    topology = generate(hosts=6, instances_per_host=5, projects=4)
    assert Counter(i.project for i in topology.instances) == {
        "project-001": 8,
        "project-002": 8,
        "project-003": 7,
        "project-004": 7,
    }


def test_hosts_have_twice_the_vcpus_their_instances_use() -> None:
    topology = generate(hosts=3, instances_per_host=5, projects=2, instance_vcpus=2)
    rmap = load(topology)
    for host in topology.hosts:
        assert host.vcpus == 20
        assert rmap.used_vcpus(host.name) == 10


def test_host_vcpus_can_be_given() -> None:
    topology = generate(hosts=2, instances_per_host=1, projects=1, host_vcpus=64)
    assert {h.vcpus for h in topology.hosts} == {64}


def test_every_project_has_an_act_stby_pair_on_different_hosts_in_an_anti_affinity_group() -> None:
    topology = generate(hosts=12, instances_per_host=6, projects=5)
    rmap = load(topology)
    assert len(topology.groups) == 5
    for group in topology.groups:
        assert group.policy is GroupPolicy.ANTI_AFFINITY
        members = rmap.members(group.id)
        assert sorted(m.metadata["role"] for m in members) == ["ACT", "STBY"]
        assert {m.project for m in members} == {group.project}
        assert members[0].host != members[1].host


def test_the_pair_is_on_different_hosts_even_when_a_project_fills_several_slots_of_one_host() -> None:
    # One project and many instances per host: its first two instances share
    # compute-00001, so the standby must come from the next host.
    topology = generate(hosts=3, instances_per_host=4, projects=1)
    roles = {i.metadata["role"]: i.host for i in topology.instances if i.metadata}
    assert roles == {"ACT": "compute-00001", "STBY": "compute-00002"}


def test_instances_outside_the_pair_have_no_group_or_role() -> None:
    topology = generate(hosts=4, instances_per_host=3, projects=2)
    loose = [i for i in topology.instances if i.group is None]
    assert len(loose) == 12 - 4
    assert all(i.metadata == {} for i in loose)


def test_a_single_host_cloud_has_only_an_active_member() -> None:
    topology = generate(hosts=1, instances_per_host=3, projects=1)
    assert [i.metadata for i in topology.instances if i.metadata] == [{"role": "ACT"}]


def test_the_same_seed_gives_the_same_topology() -> None:
    assert generate(hosts=5, instances_per_host=3, projects=2, seed=7) == generate(
        hosts=5, instances_per_host=3, projects=2, seed=7
    )


def test_another_seed_gives_other_ids_but_the_same_shape() -> None:
    a = generate(hosts=5, instances_per_host=3, projects=2, seed=1)
    b = generate(hosts=5, instances_per_host=3, projects=2, seed=2)
    assert [i.id for i in a.instances] != [i.id for i in b.instances]
    assert [(i.name, i.host) for i in a.instances] == [(i.name, i.host) for i in b.instances]


def test_ids_are_unique_uuids() -> None:
    topology = generate(hosts=20, instances_per_host=10, projects=10)
    idents = [i.id for i in topology.instances] + [g.id for g in topology.groups]
    assert len(set(idents)) == len(idents)
    assert all(len(ident) == 36 and ident[14] == "4" for ident in idents)


@pytest.mark.parametrize(
    "arguments",
    [
        {"hosts": 0, "instances_per_host": 1, "projects": 1},
        {"hosts": 1, "instances_per_host": -1, "projects": 1},
        {"hosts": 1, "instances_per_host": 1, "projects": 0},
        {"hosts": 1, "instances_per_host": 1, "projects": 1, "hosts_per_switch": 0},
    ],
)
def test_impossible_sizes_are_refused(arguments: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="at least one"):
        generate(**arguments)
