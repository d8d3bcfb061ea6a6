"""Reading and changing resources through the API, with project isolation."""

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx

from vigil.domain.model import opaque_host_id


async def wait_for_state(client: httpx.AsyncClient, ident: str, state: str) -> dict[str, object]:
    for _ in range(200):
        instance = (await client.get(f"/v1/instances/{ident}")).json()["instance"]
        if instance["state"] == state:
            return instance  # type: ignore[no-any-return]
        await asyncio.sleep(0.01)
    raise AssertionError(f"instance {ident} never reached {state}")


async def test_admins_list_every_host_with_its_usage(admin: httpx.AsyncClient) -> None:
    hosts = (await admin.get("/v1/hosts")).json()["hosts"]
    assert [h["name"] for h in hosts] == [f"compute-{n}" for n in range(1, 7)]
    compute1 = next(h for h in hosts if h["name"] == "compute-1")
    assert compute1["status"] == "UP"
    assert compute1["instances"] == 2  # app-act and lb-1
    assert compute1["vcpus_used"] == 3
    compute6 = next(h for h in hosts if h["name"] == "compute-6")
    assert compute6["status"] == "MAINTENANCE"


async def test_hosts_filter_by_status_and_switch(admin: httpx.AsyncClient) -> None:
    down = (await admin.get("/v1/hosts", params={"status": "MAINTENANCE"})).json()["hosts"]
    assert [h["name"] for h in down] == ["compute-6"]
    rack2 = (await admin.get("/v1/hosts", params={"switch": "tor-2"})).json()["hosts"]
    assert {h["name"] for h in rack2} == {"compute-4", "compute-5", "compute-6"}


async def test_members_see_only_their_own_instances(vnf_a: httpx.AsyncClient, vnf_b: httpx.AsyncClient) -> None:
    mine = (await vnf_a.get("/v1/instances")).json()["instances"]
    assert mine
    assert {i["project"] for i in mine} == {"vnf-a"}
    theirs = (await vnf_a.get("/v1/instances", params={"project": "vnf-b"})).json()["instances"]
    assert theirs == []
    response = await vnf_b.get("/v1/instances/vnf-a-app-act")
    assert response.status_code == 404
    assert (await vnf_b.get("/v1/ports/vnf-b-gw-data")).status_code == 200
    assert (await vnf_a.get("/v1/ports/vnf-b-gw-data")).status_code == 404
    assert (await vnf_b.get("/v1/server-groups/vnf-a-ha")).status_code == 404


async def test_an_instance_carries_its_hosts_status(admin: httpx.AsyncClient, vnf_a: httpx.AsyncClient) -> None:
    before = (await vnf_a.get("/v1/instances/vnf-a-app-act")).json()["instance"]
    assert before["host"] == opaque_host_id("vnf-a", "compute-1")  # a tenant sees Nova's hostId, not the name
    assert before["host_status"] == "UP"
    response = await admin.post("/v1/hosts/compute-1/action", json={"action": "force-down", "reason": "test"})
    assert response.status_code == 200
    assert response.json()["host"]["status"] == "DOWN"
    after = (await vnf_a.get("/v1/instances/vnf-a-app-act")).json()["instance"]
    assert after["host_status"] == "DOWN"


async def test_ports_list_by_instance_and_host(admin: httpx.AsyncClient, vnf_b: httpx.AsyncClient) -> None:
    ports = (await vnf_b.get("/v1/ports", params={"instance": "vnf-b-gw"})).json()["ports"]
    assert {p["id"] for p in ports} == {"vnf-b-gw-data", "vnf-b-gw-mgmt"}
    assert all(p["data_plane_status"] == "ACTIVE" and p["host"] == opaque_host_id("vnf-b", "compute-2") for p in ports)
    on_host = (await admin.get("/v1/ports", params={"host": "compute-2"})).json()["ports"]
    assert {"vnf-b-gw-data", "vnf-b-gw-mgmt"} <= {p["id"] for p in on_host}


async def test_server_groups_list_their_members(vnf_a: httpx.AsyncClient) -> None:
    group = (await vnf_a.get("/v1/server-groups/vnf-a-ha")).json()["server_group"]
    assert group["policy"] == "anti-affinity"
    assert set(group["members"]) == {"vnf-a-app-act", "vnf-a-app-stby"}


async def test_a_member_boots_and_deletes_an_instance(vnf_a: httpx.AsyncClient) -> None:
    response = await vnf_a.post("/v1/instances", json={"name": "new-vm", "vcpus": 1})
    assert response.status_code == 202
    instance = response.json()["instance"]
    assert instance["project"] == "vnf-a"
    assert instance["state"] == "BUILD"
    await wait_for_state(vnf_a, instance["id"], "ACTIVE")
    ports = (await vnf_a.get("/v1/ports", params={"instance": instance["id"]})).json()["ports"]
    assert len(ports) == 1
    assert (await vnf_a.delete(f"/v1/instances/{instance['id']}")).status_code == 204
    assert (await vnf_a.get(f"/v1/instances/{instance['id']}")).status_code == 404


async def test_a_member_may_not_boot_into_another_project(vnf_a: httpx.AsyncClient) -> None:
    response = await vnf_a.post("/v1/instances", json={"name": "sneaky", "project": "vnf-b"})
    assert response.status_code == 403


async def test_booting_into_a_full_anti_affinity_group_is_409(admin: httpx.AsyncClient) -> None:
    # Five schedulable hosts; the pair uses two, so three more members fit and the next one does not.
    for n in range(3):
        response = await admin.post(
            "/v1/instances", json={"name": f"extra-{n}", "project": "vnf-a", "group": "vnf-a-ha"}
        )
        assert response.status_code == 202, response.text
    response = await admin.post("/v1/instances", json={"name": "one-too-many", "project": "vnf-a", "group": "vnf-a-ha"})
    assert response.status_code == 409
    assert "anti-affinity" in response.json()["error"]["message"] or "no host" in response.json()["error"]["message"]


async def test_an_admin_live_migrates_an_instance(admin: httpx.AsyncClient) -> None:
    response = await admin.post("/v1/instances/vnf-a-app-act/action", json={"action": "live-migrate"})
    assert response.status_code == 202
    moving = response.json()["instance"]
    assert moving["state"] == "MIGRATING"
    assert moving["migrating_to"] not in (None, "compute-1")
    landed = await wait_for_state(admin, "vnf-a-app-act", "ACTIVE")
    assert landed["host"] == moving["migrating_to"]
    stby = (await admin.get("/v1/instances/vnf-a-app-stby")).json()["instance"]
    assert landed["host"] != stby["host"]


async def test_the_event_log_records_changes_in_order(admin: httpx.AsyncClient, vnf_b: httpx.AsyncClient) -> None:
    await admin.post("/v1/hosts/compute-3/action", json={"action": "disable", "reason": "disk"})
    await admin.post("/v1/instances/vnf-a-app-act/action", json={"action": "reset-state", "state": "ERROR"})
    events = (await admin.get("/v1/resource-events")).json()["events"]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    host_event = next(e for e in events if e["resource_id"] == "compute-3")
    assert host_event["event_type"] == "host.updated"
    assert host_event["changes"]["admin_state"] == ["enabled", "disabled"]
    error_event = next(e for e in events if e["resource_id"] == "vnf-a-app-act")
    assert error_event["changes"]["state"] == ["ACTIVE", "ERROR"]
    member_view = (await vnf_b.get("/v1/resource-events")).json()["events"]
    assert all(e["project"] == "vnf-b" for e in member_view)
    assert not any(e["resource_id"] == "vnf-a-app-act" for e in member_view)


async def test_state_survives_a_restart_of_the_server(
    settings: Any, restart: Callable[[Any], AbstractAsyncContextManager[Any]]
) -> None:
    async with restart(settings) as first, first.client("admin-token") as admin:
        await admin.post("/v1/hosts/compute-5/action", json={"action": "force-down"})
        await admin.post("/v1/instances/vnf-b-gw/action", json={"action": "reset-state", "state": "ERROR"})
        booted = (await admin.post("/v1/instances", json={"name": "keeper", "project": "vnf-b"})).json()["instance"]
        await wait_for_state(admin, booted["id"], "ACTIVE")
        last_seq = (await admin.get("/v1/resource-events", params={"limit": 1000})).json()["events"][-1]["seq"]

    async with restart(settings) as again, again.client("admin-token") as client:
        host = (await client.get("/v1/hosts/compute-5")).json()["host"]
        assert host["status"] == "DOWN"
        assert (await client.get("/v1/instances/vnf-b-gw")).json()["instance"]["state"] == "ERROR"
        keeper = (await client.get(f"/v1/instances/{booted['id']}")).json()["instance"]
        assert keeper["state"] == "ACTIVE"
        await client.post("/v1/hosts/compute-5/action", json={"action": "force-up"})
        events = (await client.get("/v1/resource-events", params={"after": last_seq})).json()["events"]
        assert events[0]["seq"] == last_seq + 1


async def test_a_member_stops_and_starts_its_own_instance(vnf_a: httpx.AsyncClient, vnf_b: httpx.AsyncClient) -> None:
    response = await vnf_a.post("/v1/instances/vnf-a-app-act/action", json={"action": "stop"})
    assert response.status_code == 202
    assert response.json()["instance"]["state"] == "SHUTOFF"
    assert (await vnf_b.post("/v1/instances/vnf-a-app-act/action", json={"action": "start"})).status_code == 404
    response = await vnf_a.post("/v1/instances/vnf-a-app-act/action", json={"action": "start"})
    assert response.json()["instance"]["state"] == "ACTIVE"
    again = await vnf_a.post("/v1/instances/vnf-a-app-act/action", json={"action": "start"})
    assert again.status_code == 409


async def test_the_vim_view_says_the_embedded_cloud_follows_nothing(
    admin: httpx.AsyncClient, vnf_a: httpx.AsyncClient, monitor: httpx.AsyncClient
) -> None:
    shown = await admin.get("/v1/vim")
    assert shown.status_code == 200, shown.text
    assert shown.json() == {"driver": "embedded", "notifications": None, "sync": None, "pushes": None}
    for other in (vnf_a, monitor):  # how Vigil follows its VIM is the operator's business
        refused = await other.get("/v1/vim")
        assert refused.status_code == 403, refused.text
