"""check_references: a topology is refused with every duplicate and dangling name listed."""

import pytest

from vigil.domain.errors import InvalidTopology
from vigil.domain.ids import GroupId, HostName, InstanceId, PortId, ProjectId, SwitchName
from vigil.domain.model import Host, Instance, Port, Project, ServerGroup, Switch
from vigil.domain.states import GroupPolicy
from vigil.domain.topology import Topology, check_references


def small_topology() -> Topology:
    return Topology(
        switches=[Switch(SwitchName("tor-1"))],
        hosts=[
            Host(HostName("compute-1"), switch=SwitchName("tor-1")),
            Host(HostName("compute-2"), switch=SwitchName("tor-1")),
        ],
        projects=[Project(ProjectId("vnf-a"), "VNF A"), Project(ProjectId("vnf-b"), "VNF B")],
        groups=[ServerGroup(GroupId("ha"), "app-ha", ProjectId("vnf-a"), GroupPolicy.ANTI_AFFINITY)],
        instances=[
            Instance(InstanceId("act"), "act", ProjectId("vnf-a"), HostName("compute-1"), group=GroupId("ha")),
            Instance(InstanceId("stby"), "stby", ProjectId("vnf-a"), None, group=GroupId("ha")),
        ],
        ports=[Port(PortId("act-data"), InstanceId("act"), ProjectId("vnf-a"), None)],
    )


def problems_of(topology: Topology) -> list[str]:
    with pytest.raises(InvalidTopology) as caught:
        check_references(topology)
    return str(caught.value).split("; ")


def test_a_consistent_topology_passes() -> None:
    check_references(small_topology())


def test_an_empty_topology_passes() -> None:
    check_references(Topology())


def test_duplicates_of_every_kind_are_listed() -> None:
    t = small_topology()
    t.switches.append(Switch(SwitchName("tor-1")))
    t.hosts.append(Host(HostName("compute-2")))
    t.projects.append(Project(ProjectId("vnf-b"), "again"))
    t.groups.append(ServerGroup(GroupId("ha"), "again", ProjectId("vnf-a")))
    t.instances.append(Instance(InstanceId("act"), "again", ProjectId("vnf-a"), None))
    t.ports.append(Port(PortId("act-data"), InstanceId("act"), ProjectId("vnf-a"), None))
    assert problems_of(t) == [
        "switch 'tor-1' is defined twice",
        "host 'compute-2' is defined twice",
        "project 'vnf-b' is defined twice",
        "server group 'ha' is defined twice",
        "instance 'act' is defined twice",
        "port 'act-data' is defined twice",
    ]


def test_a_name_defined_three_times_is_reported_for_each_extra_definition() -> None:
    t = small_topology()
    t.switches += [Switch(SwitchName("tor-1")), Switch(SwitchName("tor-1"))]
    assert problems_of(t) == ["switch 'tor-1' is defined twice"] * 2


def test_every_dangling_reference_is_listed_in_one_error() -> None:
    t = small_topology()
    t.hosts.append(Host(HostName("compute-9"), switch=SwitchName("tor-9")))
    t.groups.append(ServerGroup(GroupId("orphan"), "orphan", ProjectId("nobody")))
    t.instances += [
        Instance(InstanceId("lost"), "lost", ProjectId("nobody"), HostName("compute-7"), group=GroupId("nogroup")),
        Instance(InstanceId("foreign"), "foreign", ProjectId("vnf-b"), None, group=GroupId("ha")),
    ]
    t.ports.append(Port(PortId("p-9"), InstanceId("ghost"), ProjectId("vnf-a"), None))
    assert problems_of(t) == [
        "host 'compute-9' is behind unknown switch 'tor-9'",
        "server group 'orphan' belongs to unknown project 'nobody'",
        "instance 'lost' belongs to unknown project 'nobody'",
        "instance 'lost' is on unknown host 'compute-7'",
        "instance 'lost' is in unknown server group 'nogroup'",
        "instance 'foreign' is in server group 'ha' of another project",
        "port 'p-9' belongs to unknown instance 'ghost'",
    ]


def test_hosts_and_instances_need_at_least_one_vcpu() -> None:
    t = small_topology()
    t.hosts.append(Host(HostName("tiny"), vcpus=0))
    t.instances.append(Instance(InstanceId("nothing"), "nothing", ProjectId("vnf-a"), None, vcpus=-1))
    with pytest.raises(InvalidTopology) as caught:
        check_references(t)
    assert str(caught.value) == (
        "host 'tiny' has 0 vCPUs; at least 1 is needed; instance 'nothing' has -1 vCPUs; at least 1 is needed"
    )


def test_duplicates_and_dangling_references_are_reported_together() -> None:
    t = small_topology()
    t.hosts.append(Host(HostName("compute-1")))
    t.ports.append(Port(PortId("p-9"), InstanceId("ghost"), ProjectId("vnf-a"), None))
    assert problems_of(t) == [
        "host 'compute-1' is defined twice",
        "port 'p-9' belongs to unknown instance 'ghost'",
    ]


def test_a_host_without_a_switch_is_fine() -> None:
    t = small_topology()
    t.hosts.append(Host(HostName("standalone"), switch=None))
    check_references(t)
