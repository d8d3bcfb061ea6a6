"""Reading topology files: the example loads and bootstraps; bad files are refused naming each problem."""

import itertools
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vigil.bus.memory import InProcessBus
from vigil.controller.changes import Committer
from vigil.controller.cloud import EmbeddedCloud
from vigil.controller.resource_map import ResourceMap
from vigil.domain.errors import InvalidTopology
from vigil.domain.states import AdminState, GroupPolicy, HostStatus, InstanceState
from vigil.store.sql import SqlStore
from vigil.topology.yaml_file import load_topology, parse_topology

EXAMPLE = Path(__file__).parents[2] / "examples" / "cloud.yaml"

MINIMAL = """
switches: [{name: tor-1}]
hosts: [{name: compute-1, switch: tor-1}]
projects: [{id: vnf-a, name: VNF A}]
"""


def refused(text: str) -> str:
    """The message of the InvalidTopology that parsing ``text`` raises."""
    with pytest.raises(InvalidTopology) as caught:
        parse_topology(text, source="bad.yaml")
    return str(caught.value)


# -- the example -------------------------------------------------------------------


def test_the_example_describes_two_racks_two_projects_and_an_act_stby_pair() -> None:
    topology = load_topology(EXAMPLE)
    assert [s.name for s in topology.switches] == ["tor-1", "tor-2"]
    assert len(topology.hosts) == 6
    assert all(4 <= h.vcpus <= 8 for h in topology.hosts)
    assert {h.switch for h in topology.hosts} == {"tor-1", "tor-2"}
    assert [p.id for p in topology.projects] == ["vnf-a", "vnf-b"]
    [group] = topology.groups
    assert (group.project, group.policy) == ("vnf-a", GroupPolicy.ANTI_AFFINITY)
    pair = {i.metadata["role"]: i for i in topology.instances if i.group == group.id}
    assert set(pair) == {"ACT", "STBY"}
    assert {i.project for i in topology.instances} == {"vnf-a", "vnf-b"}
    assert any(i.host is None for i in topology.instances)
    assert any(i.group is None and i.project == "vnf-a" for i in topology.instances)


def test_the_example_keeps_what_the_file_says_about_hosts_and_instances() -> None:
    topology = load_topology(str(EXAMPLE))
    hosts = {h.name: h for h in topology.hosts}
    assert (hosts["compute-1"].zone, hosts["compute-1"].vcpus) == ("az-1", 8)
    assert hosts["compute-6"].admin_state is AdminState.DISABLED
    assert hosts["compute-6"].disabled_reason == "firmware upgrade"
    assert hosts["compute-6"].status is HostStatus.MAINTENANCE
    by_name = {i.name: i for i in topology.instances}
    assert by_name["app-act"].host == "compute-1"
    assert by_name["app-act"].vcpus == 2
    assert by_name["log-1"].state is InstanceState.SHUTOFF
    assert [(p.id, p.instance, p.project, p.network) for p in topology.ports] == [
        ("vnf-b-gw-data", "vnf-b-gw", "vnf-b", "data"),
        ("vnf-b-gw-mgmt", "vnf-b-gw", "vnf-b", "mgmt"),
    ]


@pytest.fixture
async def empty_cloud(tmp_path: Path) -> AsyncIterator[EmbeddedCloud]:
    store = SqlStore(f"sqlite:///{tmp_path / 'vigil.db'}")
    await store.open()
    committer = Committer(store, InProcessBus())
    committer.start()
    cloud = EmbeddedCloud(ResourceMap(), committer, lambda: datetime.now(UTC))
    try:
        yield cloud
    finally:
        await cloud.aclose()
        await committer.stop()
        await store.close()


async def test_the_example_bootstraps_into_a_cloud_that_keeps_its_rules(empty_cloud: EmbeddedCloud) -> None:
    await empty_cloud.bootstrap(load_topology(EXAMPLE))
    rmap = empty_cloud.map
    act, stby = (next(i for i in rmap.instances() if i.metadata.get("role") == role) for role in ("ACT", "STBY"))
    assert act.host is not None
    assert stby.host is not None
    assert act.host != stby.host
    assert all(i.host is not None for i in rmap.instances())
    # compute-6 is disabled: the scheduler placed nothing there.
    assert rmap.instances_on("compute-6") == []
    for host in rmap.hosts():
        assert rmap.free_vcpus(host.name) >= 0
    # The gateway keeps its two explicit ports; every other instance got one default port.
    gateway = rmap.instance("vnf-b-gw")
    assert sorted(p.network for p in rmap.ports_of(gateway.id)) == ["data", "mgmt"]
    assert {p.host for p in rmap.ports_of(gateway.id)} == {"compute-2"}
    for inst in rmap.instances():
        if inst.id != gateway.id:
            assert [p.network for p in rmap.ports_of(inst.id)] == ["data"]


# -- ids -----------------------------------------------------------------------------


def test_instances_without_an_id_get_a_uuid_and_explicit_ids_are_kept() -> None:
    topology = load_topology(EXAMPLE)
    ids = {i.name: i.id for i in topology.instances}
    assert ids["app-act"] == "vnf-a-app-act"
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", ids["lb-1"])
    assert len(set(ids.values())) == len(ids)


def test_generated_ids_come_from_new_id() -> None:
    counter = itertools.count(1)
    text = MINIMAL + "instances: [{name: a, project: vnf-a}, {id: b, name: b, project: vnf-a}]\n"
    text += "ports: [{instance: b}]\n"
    topology = parse_topology(text, new_id=lambda: f"gen-{next(counter)}")
    assert [i.id for i in topology.instances] == ["gen-1", "b"]
    assert [(p.id, p.network) for p in topology.ports] == [("gen-2", "data")]


def test_defaults_fill_fields_a_file_leaves_out() -> None:
    topology = parse_topology("hosts: [{name: h}]\nprojects: [{id: p, name: P}]\ninstances: [{name: i, project: p}]")
    [host] = topology.hosts
    assert (host.zone, host.switch, host.vcpus, host.admin_state, host.forced_down) == (
        "nova",
        None,
        8,
        AdminState.ENABLED,
        False,
    )
    [inst] = topology.instances
    assert (inst.vcpus, inst.state, inst.group, inst.host, inst.metadata) == (1, InstanceState.ACTIVE, None, None, {})


# -- bad files ---------------------------------------------------------------------


def test_an_unknown_field_is_named_with_its_entry() -> None:
    assert refused("hosts: [{name: compute-1}, {name: compute-2, cpus: 8}]") == (
        "bad.yaml: hosts[1] (compute-2): unknown field 'cpus'"
    )


def test_an_unknown_section_is_named_with_the_known_ones() -> None:
    message = refused("hostz: [{name: compute-1}]")
    assert message.startswith("bad.yaml: unknown section 'hostz'")
    assert "hosts" in message
    assert "server_groups" in message


def test_an_unknown_field_of_a_nested_value_is_refused() -> None:
    message = refused(MINIMAL + "server_groups: [{id: g, name: g, project: vnf-a, policy: anti-affinity, size: 2}]")
    assert message == "bad.yaml: server_groups[0] (g): unknown field 'size'"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("hosts: [{name: h, vcpus: '8'}]", "hosts[0] (h): vcpus: Input should be a valid integer (got '8')"),
        ("hosts: [{name: h, vcpus: 0}]", "hosts[0] (h): vcpus: Input should be greater than or equal to 1"),
        ("hosts: [{name: h, forced_down: 'no'}]", "hosts[0] (h): forced_down: Input should be a valid boolean"),
        (
            "hosts: [{name: h, admin_state: paused}]",
            "hosts[0] (h): admin_state: Input should be 'enabled' or 'disabled'",
        ),
        ("hosts: [{name: 7}]", "hosts[0]: name: Input should be a valid string (got 7)"),
        ("hosts: [{name: ''}]", "hosts[0]: name: String should have at least 1 character"),
        ("hosts: {name: h}", "hosts: Input should be a valid list"),
        ("hosts: [compute-1]", "hosts[0]: an entry must be a mapping of fields (got 'compute-1')"),
        ("projects: [{id: p}]", "projects[0] (p): missing field 'name'"),
        (
            "instances: [{name: i, project: p, metadata: {rank: 1}}]",
            "instances[0] (i): metadata.rank: Input should be a valid string",
        ),
        (
            "instances: [{name: i, project: p, state: MIGRATING}]",
            "instances[0] (i): state: an instance cannot start in state MIGRATING",
        ),
        (
            "server_groups: [{id: g, name: g, project: p, policy: soft-affinity}]",
            "server_groups[0] (g): policy: Input should be 'anti-affinity' or 'affinity'",
        ),
    ],
)
def test_wrong_types_and_values_are_refused_naming_entry_and_field(entry: str, expected: str) -> None:
    assert expected in refused(entry)


def test_every_schema_problem_is_listed_in_one_error() -> None:
    message = refused("hosts: [{name: a, vcpus: x}, {name: b, colour: red}]\nprojects: [{name: P}]")
    assert message == (
        "bad.yaml: hosts[0] (a): vcpus: Input should be a valid integer (got 'x'); "
        "hosts[1] (b): unknown field 'colour'; "
        "projects[0] (P): missing field 'id'"
    )


def test_dangling_references_are_refused_naming_each_entry() -> None:
    message = refused(
        """
switches: [{name: tor-1}]
hosts: [{name: compute-1, switch: tor-9}]
projects: [{id: vnf-a, name: VNF A}]
server_groups: [{id: ha, name: ha, project: vnf-z}]
instances:
  - {id: act, name: act, project: vnf-a, host: compute-7, group: ha}
  - {name: anonymous, project: vnf-q}
ports: [{id: p1, instance: ghost}]
"""
    )
    assert message == (
        "bad.yaml: host 'compute-1' is behind unknown switch 'tor-9'; "
        "server group 'ha' belongs to unknown project 'vnf-z'; "
        "instance 'act' is on unknown host 'compute-7'; "
        "instance 'act' is in server group 'ha' of another project; "
        "instance '<instances[1] anonymous>' belongs to unknown project 'vnf-q'; "
        "port 'p1' belongs to unknown instance 'ghost'"
    )


def test_duplicate_names_are_refused() -> None:
    assert refused("hosts: [{name: compute-1}, {name: compute-1}]") == "bad.yaml: host 'compute-1' is defined twice"


def test_a_port_cannot_refer_to_an_instance_by_name() -> None:
    # Only ids are references; an instance without an id cannot have explicit ports.
    message = refused(MINIMAL + "instances: [{name: app, project: vnf-a}]\nports: [{instance: app}]")
    assert "belongs to unknown instance 'app'" in message


def test_invalid_yaml_is_refused_with_its_position() -> None:
    message = refused("hosts: [{name: compute-1\nprojects: []")
    assert message.startswith("bad.yaml is not valid YAML:")
    assert 'in "bad.yaml", line' in message


def test_a_key_given_twice_is_refused_rather_than_silently_overwritten() -> None:
    message = refused("hosts:\n  - name: compute-1\n    vcpus: 4\n    vcpus: 8\n")
    assert "found duplicate key 'vcpus'" in message
    assert "line 4" in message


def test_a_section_given_twice_is_refused() -> None:
    assert "found duplicate key 'hosts'" in refused("hosts: []\nhosts: [{name: a}]\n")


def test_yaml_merge_keys_still_work() -> None:
    # A merged key may be overridden without counting as a duplicate. The
    # anchor lives in a host entry, since unknown sections are refused.
    text = """
hosts:
  - &base {name: compute-1, zone: az-9, vcpus: 4}
  - <<: *base
    name: compute-2
"""
    topology = parse_topology(text)
    assert [(h.name, h.zone, h.vcpus) for h in topology.hosts] == [("compute-1", "az-9", 4), ("compute-2", "az-9", 4)]


def test_python_tags_are_not_executed() -> None:
    assert "not valid YAML" in refused("hosts: !!python/object/apply:os.system ['true']")


@pytest.mark.parametrize(("text", "expected"), [("", "bad.yaml is empty"), ("# nothing\n", "bad.yaml is empty")])
def test_an_empty_file_is_refused(text: str, expected: str) -> None:
    assert refused(text) == expected


def test_a_file_that_is_not_a_mapping_of_sections_is_refused() -> None:
    assert refused("- hosts\n- projects\n") == "bad.yaml must be a mapping of sections, not a list"


def test_a_bad_file_on_disk_is_named_by_its_path(tmp_path: Path) -> None:
    path = tmp_path / "cloud.yaml"
    path.write_text("hosts: [{name: compute-1, cpus: 2}]\n")
    with pytest.raises(InvalidTopology, match=re.escape(f"{path}: hosts[0] (compute-1): unknown field 'cpus'")):
        load_topology(path)


def test_a_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_topology(tmp_path / "nope.yaml")
