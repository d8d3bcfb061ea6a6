"""The OpenStack driver's inventory matches what Nova and Neutron say (OpenStack issue, part 2, first step).

Against the real stack: Keystone authentication through keystoneauth (the
admin's password), then hosts (compute services and hypervisors), servers of
every project, a server group, and the servers' Neutron ports, read into
Vigil's domain and compared with Nova's and Neutron's own answers.
"""

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openstack_support import Stack, api, wait_active, wait_for

from vigil.demo_openstack import auth_from
from vigil.domain.states import AdminState, DataPlaneStatus, GroupPolicy, InstanceState
from vigil.domain.topology import Topology
from vigil.testbed.openstack.glance import IMAGE_ID
from vigil.vim.openstack.inventory import read_topology
from vigil.vim.openstack.session import OpenStackAuth, OpenStackSession

pytestmark = pytest.mark.openstack


@pytest.fixture
def cloud_scene(openstack_stack: Stack) -> Iterator[dict[str, Any]]:
    """An anti-affinity group of two servers on a Neutron network (compute-1 and compute-2), one port DOWN,
    compute-3 forced down; all undone afterwards."""
    endpoints = openstack_stack.credentials["endpoints"]
    headers = {"X-Auth-Token": openstack_stack.token()}
    nova = httpx.Client(base_url=endpoints["compute"], headers=headers, timeout=60)
    neutron = httpx.Client(base_url=endpoints["network"], headers=headers, timeout=60)
    made: dict[str, Any] = {"servers": []}
    try:
        flavor = nova.post(
            "/flavors", json={"flavor": {"name": f"inv-{time.time_ns()}", "ram": 64, "vcpus": 2, "disk": 0}}
        )
        assert flavor.status_code == 200, flavor.text
        made["flavor"] = flavor.json()["flavor"]["id"]
        group = nova.post(
            "/os-server-groups",
            json={"server_group": {"name": "inv-ha", "policy": "anti-affinity"}},
            headers=api("2.64"),
        )
        assert group.status_code == 200, group.text
        made["group"] = group.json()["server_group"]["id"]
        net = neutron.post("/v2.0/networks", json={"network": {"name": f"inv-{time.time_ns()}"}})
        assert net.status_code == 201, net.text
        made["network"] = net.json()["network"]["id"]
        subnet = {"subnet": {"network_id": made["network"], "ip_version": 4, "cidr": "10.98.0.0/24"}}
        assert neutron.post("/v2.0/subnets", json=subnet).status_code == 201
        for n, host in ((1, "compute-1"), (2, "compute-2")):
            body = {
                "server": {
                    "name": f"inv-{n}",
                    "imageRef": IMAGE_ID,
                    "flavorRef": made["flavor"],
                    "networks": [{"uuid": made["network"]}],
                    "host": host,
                    "metadata": {"role": "ACT" if n == 1 else "STBY"},
                },
                "os:scheduler_hints": {"group": made["group"]},
            }
            server = nova.post("/servers", json=body, headers=api("2.74"))
            assert server.status_code == 202, server.text
            made["servers"].append(server.json()["server"]["id"])
        for ident in made["servers"]:
            wait_active(nova, ident)
        port = wait_for(
            lambda: neutron.get("/v2.0/ports", params={"device_id": made["servers"][1]}).json()["ports"], "a port"
        )
        made["down_port"] = port[0]["id"]
        assert (
            neutron.put(f"/v2.0/ports/{port[0]['id']}", json={"port": {"data_plane_status": "DOWN"}}).status_code == 200
        )
        service = nova.get("/os-services", params={"binary": "nova-compute", "host": "compute-3"}, headers=api("2.53"))
        made["service3"] = service.json()["services"][0]["id"]
        forced = nova.put(f"/os-services/{made['service3']}", json={"forced_down": True}, headers=api("2.53"))
        assert forced.status_code == 200, forced.text
        made["nova"], made["neutron"] = nova, neutron
        yield made
    finally:
        if "service3" in made:
            nova.put(f"/os-services/{made['service3']}", json={"forced_down": False}, headers=api("2.53"))
        for ident in made["servers"]:
            nova.delete(f"/servers/{ident}")
        for ident in made["servers"]:
            wait_for(lambda i=ident: nova.get(f"/servers/{i}").status_code == 404, f"{ident} deleted")
        if "group" in made:
            nova.delete(f"/os-server-groups/{made['group']}")
        if "network" in made:
            neutron.delete(f"/v2.0/networks/{made['network']}")
        if "flavor" in made:
            nova.delete(f"/flavors/{made['flavor']}")
        nova.close()
        neutron.close()


async def read(auth: OpenStackAuth) -> Topology:
    async with OpenStackSession(auth) as session:
        return await read_topology(session)


def test_the_inventory_matches_nova_and_neutron(openstack_stack: Stack, cloud_scene: dict[str, Any]) -> None:
    nova: httpx.Client = cloud_scene["nova"]
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
    first, second = (instances[i] for i in cloud_scene["servers"])
    assert (first.host, second.host) == ("compute-1", "compute-2")
    assert (first.vcpus, first.state, first.metadata) == (2, InstanceState.ACTIVE, {"role": "ACT"})
    assert first.group == second.group == cloud_scene["group"]
    [group] = [g for g in topology.groups if g.id == cloud_scene["group"]]
    assert (group.name, group.policy) == ("inv-ha", GroupPolicy.ANTI_AFFINITY)
    assert group.project == first.project
    assert first.project in {p.id for p in topology.projects}
    assert {p.name for p in topology.projects if p.id == first.project} == {"admin"}

    ports = {p.id: p for p in topology.ports}
    neutron_ports = cloud_scene["neutron"].get("/v2.0/ports", params={"network_id": cloud_scene["network"]}).json()
    mine = [p for p in neutron_ports["ports"] if p["device_id"] in cloud_scene["servers"]]
    assert len(mine) == 2
    for port in mine:
        assert ports[port["id"]].instance == port["device_id"]
        assert ports[port["id"]].host == port["binding:host_id"] == instances[port["device_id"]].host
        assert ports[port["id"]].network == cloud_scene["network"]
    assert ports[cloud_scene["down_port"]].data_plane_status is DataPlaneStatus.DOWN
    assert {ports[p["id"]].data_plane_status for p in mine if p["id"] != cloud_scene["down_port"]} == {
        DataPlaneStatus.ACTIVE
    }
