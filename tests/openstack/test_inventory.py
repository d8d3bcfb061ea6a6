"""The OpenStack driver's inventory matches what Nova and Neutron say (OpenStack issue, part 2, first step).

Against the real stack: Keystone authentication through keystoneauth (the
admin's password), then hosts (compute services and hypervisors), servers of
every project, a server group, and the servers' Neutron ports, read into
Vigil's domain and compared with Nova's and Neutron's own answers.
"""

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from openstack_support import Scene, Stack, api, scene, wait_active, wait_for

from vigil.demo_openstack import auth_from
from vigil.domain.states import AdminState, DataPlaneStatus, GroupPolicy, InstanceState
from vigil.domain.topology import Topology
from vigil.vim.openstack.inventory import read_topology
from vigil.vim.openstack.session import OpenStackAuth, OpenStackSession

pytestmark = pytest.mark.openstack


@pytest.fixture
def cloud_scene(openstack_stack: Stack) -> Iterator[Scene]:
    """An anti-affinity group of two servers on a Neutron network (compute-1 and compute-2), the second's port
    DOWN, compute-3 forced down; all undone afterwards."""
    with scene(openstack_stack, "inv", "10.98.0.0/24", vcpus=2, group=True) as made:
        for n, host in ((1, "compute-1"), (2, "compute-2")):
            made.boot(f"inv-{n}", host, role="ACT" if n == 1 else "STBY", grouped=True)
        for ident in made.servers:
            wait_active(made.nova, ident)
        neutron = made.neutron
        port = wait_for(
            lambda: neutron.get("/v2.0/ports", params={"device_id": made.servers[1]}).json()["ports"], "a port"
        )
        assert (
            neutron.put(f"/v2.0/ports/{port[0]['id']}", json={"port": {"data_plane_status": "DOWN"}}).status_code == 200
        )
        made.notes["down_port"] = port[0]["id"]
        forced = made.nova.put(
            f"/os-services/{made.service('compute-3')['id']}", json={"forced_down": True}, headers=api("2.53")
        )
        assert forced.status_code == 200, forced.text
        yield made


async def read(auth: OpenStackAuth) -> Topology:
    async with OpenStackSession(auth) as session:
        return await read_topology(session)


def test_the_inventory_matches_nova_and_neutron(openstack_stack: Stack, cloud_scene: Scene) -> None:
    nova: httpx.Client = cloud_scene.nova
    topology = asyncio.run(read(auth_from(openstack_stack.credentials)))

    services = nova.get("/os-services", params={"binary": "nova-compute"}, headers=api("2.53")).json()["services"]
    hypervisors = nova.get("/os-hypervisors/detail", headers=api("2.53")).json()["hypervisors"]
    hosts = {h.name: h for h in topology.hosts}
    assert set(hosts) == {s["host"] for s in services} == {"compute-1", "compute-2", "compute-3"}
    for hypervisor in hypervisors:
        assert hosts[hypervisor["service"]["host"]].vcpus == hypervisor["vcpus"] > 0
    assert hosts["compute-3"].forced_down is True
    assert hosts["compute-1"].forced_down is False
    assert hosts["compute-1"].reachable is True
    assert hosts["compute-1"].admin_state is AdminState.ENABLED

    servers = nova.get("/servers/detail", params={"all_tenants": 1}, headers=api("2.73")).json()["servers"]
    instances = {i.id: i for i in topology.instances}
    assert set(instances) == {s["id"] for s in servers if s["status"] != "DELETED"}
    first, second = (instances[i] for i in cloud_scene.servers)
    assert (first.host, second.host) == ("compute-1", "compute-2")
    assert (first.vcpus, first.state, first.metadata) == (2, InstanceState.ACTIVE, {"role": "ACT"})
    assert first.group == second.group == cloud_scene.group
    [group] = [g for g in topology.groups if g.id == cloud_scene.group]
    assert (group.name, group.policy) == (cloud_scene.tag, GroupPolicy.ANTI_AFFINITY)
    assert group.project == first.project
    assert first.project in {p.id for p in topology.projects}
    assert {p.name for p in topology.projects if p.id == first.project} == {"admin"}

    ports = {p.id: p for p in topology.ports}
    neutron_ports = cloud_scene.neutron.get("/v2.0/ports", params={"network_id": cloud_scene.network}).json()
    mine = [p for p in neutron_ports["ports"] if p["device_id"] in cloud_scene.servers]
    assert len(mine) == 2
    for port in mine:
        assert ports[port["id"]].instance == port["device_id"]
        assert ports[port["id"]].host == port["binding:host_id"] == instances[port["device_id"]].host
        assert ports[port["id"]].network == cloud_scene.network
    assert ports[cloud_scene.notes["down_port"]].data_plane_status is DataPlaneStatus.DOWN
    assert {ports[p["id"]].data_plane_status for p in mine if p["id"] != cloud_scene.notes["down_port"]} == {
        DataPlaneStatus.ACTIVE
    }
