"""The fault-management path through real HTTP: a monitor reports, Vigil marks
resources down, and real webhook receivers get the notifications."""

import asyncio
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from support import Receiver


def host_down(
    host: str, event_id: str, *, type_: str = "compute.host.down", status: str = "down", **extra: Any
) -> dict[str, Any]:
    details = {"hostname": host, "status": status, "monitor": "test-monitor", "monitor_event_id": event_id, **extra}
    return {"time": datetime.now(UTC).isoformat(), "type": type_, "details": details}


async def subscribe(client: httpx.AsyncClient, url: str, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/subscriptions", json={"callbacks": [url], **body})
    assert response.status_code == 201, response.text
    return response.json()["subscription"]  # type: ignore[no-any-return]


async def test_a_host_failure_reaches_the_owner_with_its_instances_already_in_error(
    admin: httpx.AsyncClient, vnf_a: httpx.AsyncClient, monitor: httpx.AsyncClient, receiver: Receiver
) -> None:
    seen_at_receipt: list[tuple[str, str | None]] = []

    async def look(_: dict[str, Any]) -> None:
        instance = (await vnf_a.get("/v1/instances/vnf-a-app-act")).json()["instance"]
        seen_at_receipt.append((instance["state"], instance["host_status"]))

    receiver.on_receive = look
    wanted = {"resource_ids": ["vnf-a-app-act", "vnf-a-app-stby"], "event_types": ["instance.down"]}
    await subscribe(vnf_a, f"{receiver.url}/vnf-a", filter=wanted)
    response = await monitor.post("/v1/event", json=host_down("compute-1", "e1"))
    assert response.status_code == 200, response.text
    outcome = response.json()["event"]
    assert outcome["outcome"] == "fault_opened"

    [notification] = await receiver.wait_for(1, "/vnf-a")
    assert seen_at_receipt == [("ERROR", "DOWN")]
    body = notification["body"]
    assert body["current"] == "alarm"
    assert body["severity"] == "critical"
    traits = {name: value for name, _, value in body["reason_data"]["event"]["traits"]}
    assert "vnf-a-app-act" in str(traits)
    assert "lb-1" not in str(traits)  # filtered to the instances subscribed to
    assert notification["headers"]["x-vigil-notification-id"]
    assert "compute-1" not in str(body)  # tenants get no physical detail
    assert "test-monitor" not in str(body)

    host = (await admin.get("/v1/hosts/compute-1")).json()["host"]
    assert (host["status"], host["forced_down"], host["admin_state"]) == ("DOWN", True, "disabled")
    ports = (await admin.get("/v1/ports", params={"host": "compute-1"})).json()["ports"]
    assert ports
    assert {p["data_plane_status"] for p in ports} == {"DOWN"}


async def test_admins_hear_of_the_host_and_tenants_of_their_instances_only(
    admin: httpx.AsyncClient,
    vnf_a: httpx.AsyncClient,
    vnf_b: httpx.AsyncClient,
    monitor: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    await subscribe(admin, f"{receiver.url}/admin", filter={"event_types": ["host.down"]}, format="sol003")
    instances_only = {"event_types": ["instance.down"]}
    await subscribe(vnf_a, f"{receiver.url}/vnf-a", filter=instances_only, format="sol003")
    await subscribe(vnf_b, f"{receiver.url}/vnf-b", format="sol003")
    await monitor.post("/v1/event", json=host_down("compute-1", "e1"))

    [admin_note] = await receiver.wait_for(1, "/admin")
    [tenant_note] = await receiver.wait_for(1, "/vnf-a")
    assert admin_note["body"]["notificationType"] == "AlarmNotification"
    assert "compute-1" in str(admin_note["body"])
    alarm = tenant_note["body"]["alarm"]
    assert set(alarm["vnfcInstanceIds"]) == {
        "vnf-a-app-act",
        next(
            i["id"]
            for i in (await admin.get("/v1/instances", params={"host": "compute-1"})).json()["instances"]
            if i["name"] == "lb-1"
        ),
    }
    assert alarm["perceivedSeverity"] == "CRITICAL"
    assert receiver.delivered("/vnf-b") == []  # vnf-b runs nothing on compute-1


async def test_a_member_may_subscribe_only_to_its_own_resources(
    vnf_a: httpx.AsyncClient, vnf_b: httpx.AsyncClient, admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    foreign = await vnf_b.post(
        "/v1/subscriptions", json={"callbacks": [receiver.url], "filter": {"resource_ids": ["vnf-a-app-act"]}}
    )
    assert foreign.status_code == 422  # the same as for a name nobody has: nothing to learn
    assert "unknown resources" in foreign.json()["error"]["message"]
    unknown = await vnf_a.post(
        "/v1/subscriptions", json={"callbacks": [receiver.url], "filter": {"resource_ids": ["no-such-vm"]}}
    )
    assert unknown.status_code == 422
    host_level = await vnf_a.post(
        "/v1/subscriptions", json={"callbacks": [receiver.url], "filter": {"resource_ids": ["compute-1"]}}
    )
    assert host_level.status_code == 422
    assert (
        await admin.post(
            "/v1/subscriptions", json={"callbacks": [receiver.url], "filter": {"resource_ids": ["compute-1"]}}
        )
    ).status_code == 201
    bad_url = await vnf_a.post("/v1/subscriptions", json={"callbacks": ["not a url"]})
    assert bad_url.status_code == 422
    mine = await subscribe(vnf_a, receiver.url)
    assert (await vnf_b.get(f"/v1/subscriptions/{mine['id']}")).status_code == 404
    assert (await vnf_b.delete(f"/v1/subscriptions/{mine['id']}")).status_code == 404
    assert [s["id"] for s in (await vnf_a.get("/v1/subscriptions")).json()["subscriptions"]] == [mine["id"]]
    assert (await vnf_a.delete(f"/v1/subscriptions/{mine['id']}")).status_code == 204
    assert (await vnf_a.get("/v1/subscriptions")).json()["subscriptions"] == []


async def test_filters_on_event_type_and_severity_hold_back_what_they_exclude(
    vnf_a: httpx.AsyncClient, monitor: httpx.AsyncClient, receiver: Receiver
) -> None:
    await subscribe(vnf_a, f"{receiver.url}/groups", filter={"event_types": ["server_group.degraded"]})
    await subscribe(vnf_a, f"{receiver.url}/minor", filter={"severities": ["MINOR"]})
    await subscribe(vnf_a, f"{receiver.url}/all")
    await monitor.post("/v1/event", json=host_down("compute-1", "e1"))
    everything = await receiver.wait_for(2, "/all")
    kinds = sorted(n["body"]["reason_data"]["event"]["event_type"] for n in everything)
    assert len(kinds) == 2  # the instances' alarm and the group's
    [group_note] = await receiver.wait_for(1, "/groups")
    assert "vnf-a-ha" in str(group_note["body"])
    assert receiver.delivered("/minor") == []


async def test_a_repeated_event_is_a_duplicate_and_opens_no_second_fault(
    admin: httpx.AsyncClient, monitor: httpx.AsyncClient
) -> None:
    report = host_down("compute-1", "same")
    first = (await monitor.post("/v1/event", json=report)).json()["event"]
    again = (await monitor.post("/v1/event", json=report)).json()["event"]  # sent again, as a retry does
    assert first["outcome"] == "fault_opened"
    assert again["outcome"] == "duplicate"
    other = (await monitor.post("/v1/event", json=host_down("compute-1", "another"))).json()["event"]
    assert other["outcome"] == "correlated"
    assert other["fault"] == first["fault"]
    faults = (await admin.get("/v1/faults")).json()["faults"]
    assert [f["id"] for f in faults] == [first["fault"]]


async def test_a_monitor_reusing_its_event_id_at_a_later_time_is_heard_again(
    admin: httpx.AsyncClient, vnf_a: httpx.AsyncClient, monitor: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Doctor's sample monitor sends ``monitor_event_id`` "monitor_sample_event1" on every run: an id is only
    a duplicate with the same detection time (a retry re-sends the same body); a later failure is new."""
    await subscribe(vnf_a, f"{receiver.url}/all", filter={"event_types": ["instance.down"]})
    first_run = datetime.now(UTC) - timedelta(seconds=60)
    failure = {**host_down("compute-1", "monitor_sample_event1"), "time": first_run.isoformat()}
    assert (await monitor.post("/v1/event", json=failure)).json()["event"]["outcome"] == "fault_opened"
    recovered = host_down("compute-1", "monitor_sample_event2", type_="compute.host.up", status="up")
    recovered["time"] = (first_run + timedelta(seconds=30)).isoformat()
    assert (await monitor.post("/v1/event", json=recovered)).json()["event"]["outcome"] == "fault_cleared"
    await receiver.wait_for(1, "/all")
    written_otherwise = first_run.astimezone(timezone(timedelta(hours=1))).isoformat()  # the same moment
    retried = {**failure, "time": written_otherwise}
    assert (await monitor.post("/v1/event", json=retried)).json()["event"]["outcome"] == "duplicate"
    second_run = {**failure, "time": datetime.now(UTC).isoformat()}
    answer = (await monitor.post("/v1/event", json=second_run)).json()["event"]
    assert answer["outcome"] == "fault_opened"
    assert (await admin.get("/v1/hosts/compute-1")).json()["host"]["status"] == "DOWN"
    heard = await receiver.wait_for(3, "/all")  # the failure, its recovery, the second failure
    assert [n["body"]["current"] for n in heard] == ["alarm", "ok", "alarm"]


async def test_an_event_for_an_unknown_host_is_recorded_and_refused_as_a_whole(
    admin: httpx.AsyncClient, monitor: httpx.AsyncClient
) -> None:
    response = await monitor.put("/events", json=[host_down("compute-2", "ok"), host_down("ghost-9", "bad")])
    assert response.status_code == 422
    assert "ghost-9" in response.json()["error"]["message"]
    assert (await admin.get("/v1/hosts/compute-2")).json()["host"]["status"] == "UP"
    recorded = (await admin.get("/v1/fault-events")).json()["fault_events"]
    assert {(e["hostname"], e["outcome"]) for e in recorded} == {
        ("ghost-9", "unknown_host"),
        ("compute-2", "not_applied"),
    }


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"time": "now", "type": "compute.host.down", "details": {}}, 422),
        ({"time": "2024-01-01T00:00:00Z", "type": "compute.host.down", "details": {"hostname": "compute-1"}}, 422),
        (host_down("compute-1", "x", status="sideways"), 422),
        (host_down("compute-1", "x", type_="compute.disk.full"), 422),
        (host_down("compute-1", "x", flavour="extra"), 422),
    ],
)
async def test_malformed_events_are_refused_with_a_message(
    monitor: httpx.AsyncClient, body: dict[str, Any], status: int
) -> None:
    response = await monitor.post("/v1/event", json=body)
    assert response.status_code == status
    assert response.json()["error"]["message"]


async def test_only_monitors_and_admins_report_events(vnf_a: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    assert (await vnf_a.post("/v1/event", json=host_down("compute-1", "m"))).status_code == 403
    assert (await admin.post("/v1/event", json=host_down("compute-1", "m"))).status_code == 200


async def test_recovery_brings_the_host_back_and_clears_alarms_but_instances_stay_in_error(
    admin: httpx.AsyncClient, vnf_a: httpx.AsyncClient, monitor: httpx.AsyncClient, receiver: Receiver
) -> None:
    await subscribe(vnf_a, f"{receiver.url}/a", filter={"event_types": ["instance.down"]}, format="sol003")
    await monitor.post("/v1/event", json=host_down("compute-1", "d1"))
    await receiver.wait_for(1, "/a")
    up = await monitor.post("/v1/event", json=host_down("compute-1", "u1", type_="compute.host.up", status="up"))
    assert up.json()["event"]["outcome"] == "fault_cleared"
    notes = await receiver.wait_for(2, "/a")
    assert notes[1]["body"]["notificationType"] == "AlarmClearedNotification"
    host = (await admin.get("/v1/hosts/compute-1")).json()["host"]
    assert (host["status"], host["forced_down"], host["admin_state"]) == ("UP", False, "enabled")
    act = (await vnf_a.get("/v1/instances/vnf-a-app-act")).json()["instance"]
    assert (act["state"], act["host_status"]) == ("ERROR", "UP")
    alarms = (await vnf_a.get("/v1/alarms", params={"kind": "instance.down"})).json()["alarms"]
    assert [a["state"] for a in alarms] == ["CLEARED"]


async def test_a_host_in_maintenance_suppresses_automatic_fault_actions(
    admin: httpx.AsyncClient, monitor: httpx.AsyncClient
) -> None:
    await admin.post("/v1/hosts/compute-1/action", json={"action": "maintenance-on"})
    outcome = (await monitor.post("/v1/event", json=host_down("compute-1", "m1"))).json()["event"]
    assert outcome["outcome"] == "suppressed"
    host = (await admin.get("/v1/hosts/compute-1")).json()["host"]
    assert host["status"] == "UP"
    assert host["in_maintenance"] is True
    assert (await admin.get("/v1/faults")).json()["faults"] == []


async def until_fault(admin: httpx.AsyncClient, host: str) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            faults = [f for f in (await admin.get("/v1/faults")).json()["faults"] if f["resource_id"] == host]
            if faults:
                return dict(faults[0])
            await asyncio.sleep(0.01)


async def test_a_failure_still_down_when_the_host_leaves_maintenance_is_applied_then(
    admin: httpx.AsyncClient, monitor: httpx.AsyncClient
) -> None:
    await admin.post("/v1/hosts/compute-1/action", json={"action": "maintenance-on"})
    assert (await monitor.post("/v1/event", json=host_down("compute-1", "m1"))).json()["event"]["outcome"] == (
        "suppressed"
    )
    await admin.post("/v1/hosts/compute-1/action", json={"action": "maintenance-off"})
    fault = await until_fault(admin, "compute-1")
    assert fault["state"] == "ACTIVE"
    host = (await admin.get("/v1/hosts/compute-1")).json()["host"]
    assert host["status"] == "DOWN"
    act = (await admin.get("/v1/instances/vnf-a-app-act")).json()["instance"]
    assert act["state"] == "ERROR"
    events = (await admin.get("/v1/fault-events")).json()["fault_events"]
    # The suppressed report stays as it was; it is journaled again, under a derived id, when maintenance ends.
    outcomes = sorted(e["outcome"] for e in events if e["monitor_event_id"] == "m1")
    assert outcomes == ["fault_opened", "suppressed"]


async def test_a_failure_that_recovered_during_maintenance_is_not_applied_after_it(
    admin: httpx.AsyncClient, monitor: httpx.AsyncClient
) -> None:
    await admin.post("/v1/hosts/compute-2/action", json={"action": "maintenance-on"})
    await monitor.post("/v1/event", json=host_down("compute-2", "m1"))
    await monitor.post("/v1/event", json=host_down("compute-2", "m2", type_="compute.host.up", status="up"))
    await admin.post("/v1/hosts/compute-2/action", json={"action": "maintenance-off"})
    # A control behind it in the same event order: compute-3's replay comes after compute-2's would have.
    await admin.post("/v1/hosts/compute-3/action", json={"action": "maintenance-on"})
    await monitor.post("/v1/event", json=host_down("compute-3", "m3"))
    await admin.post("/v1/hosts/compute-3/action", json={"action": "maintenance-off"})
    await until_fault(admin, "compute-3")
    assert [f["resource_id"] for f in (await admin.get("/v1/faults")).json()["faults"]] == ["compute-3"]
    assert (await admin.get("/v1/hosts/compute-2")).json()["host"]["status"] == "UP"


async def test_a_switch_failure_takes_every_host_behind_it_off_line(
    admin: httpx.AsyncClient, monitor: httpx.AsyncClient, vnf_b: httpx.AsyncClient
) -> None:
    body = host_down("tor-1", "s1", type_="network.switch.down")
    outcome = (await monitor.post("/v1/event", json=body)).json()["event"]
    assert outcome["outcome"] == "fault_opened"
    hosts = {h["name"]: h["status"] for h in (await admin.get("/v1/hosts", params={"switch": "tor-1"})).json()["hosts"]}
    assert hosts == {"compute-1": "UNKNOWN", "compute-2": "UNKNOWN", "compute-3": "UNKNOWN"}
    gw = (await vnf_b.get("/v1/instances/vnf-b-gw")).json()["instance"]
    assert (gw["state"], gw["host_status"]) == ("ERROR", "UNKNOWN")
    other_rack = (await admin.get("/v1/hosts/compute-4")).json()["host"]
    assert other_rack["status"] == "UP"
    up = host_down("tor-1", "s2", type_="network.switch.up", status="up")
    assert (await monitor.post("/v1/event", json=up)).json()["event"]["outcome"] == "fault_cleared"
    assert (await admin.get("/v1/hosts/compute-1")).json()["host"]["status"] == "UP"


async def test_one_lost_link_warns_and_a_second_within_the_window_takes_the_host_down(
    admin: httpx.AsyncClient, monitor: httpx.AsyncClient, receiver: Receiver
) -> None:
    await subscribe(admin, f"{receiver.url}/ops", filter={"resource_ids": ["compute-1"]})
    first = host_down("compute-1", "l1", type_="network.link.down", related_to="eth1")
    assert (await monitor.post("/v1/event", json=first)).json()["event"]["outcome"] == "aggregated"
    assert (await admin.get("/v1/hosts/compute-1")).json()["host"]["status"] == "UP"
    [warning] = await receiver.wait_for(1, "/ops")
    assert warning["body"]["severity"] == "low"
    second = host_down("compute-1", "l2", type_="network.link.down", related_to="eth2")
    assert (await monitor.post("/v1/event", json=second)).json()["event"]["outcome"] == "fault_opened"
    assert (await admin.get("/v1/hosts/compute-1")).json()["host"]["status"] == "DOWN"
    alarms = (await admin.get("/v1/alarms", params={"resource_id": "compute-1"})).json()["alarms"]
    assert {(a["kind"], a["state"]) for a in alarms} == {("host.degraded", "CLEARED"), ("host.down", "ACTIVE")}


async def test_a_server_group_alarm_clears_when_its_member_recovers(
    admin: httpx.AsyncClient, vnf_a: httpx.AsyncClient, monitor: httpx.AsyncClient, receiver: Receiver
) -> None:
    await subscribe(vnf_a, f"{receiver.url}/g", filter={"event_types": ["server_group.degraded"]})
    await monitor.post("/v1/event", json=host_down("compute-1", "g1"))
    [raised] = await receiver.wait_for(1, "/g")
    assert raised["body"]["current"] == "alarm"
    reset = {"action": "reset-state", "state": "ACTIVE"}
    assert (await admin.post("/v1/instances/vnf-a-app-act/action", json=reset)).status_code == 202
    notes = await receiver.wait_for(2, "/g")
    assert notes[1]["body"]["current"] == "ok"
    alarms = (await vnf_a.get("/v1/alarms", params={"kind": "server_group.degraded"})).json()["alarms"]
    assert [a["state"] for a in alarms] == ["CLEARED"]


async def test_alarms_are_listed_per_project_and_acknowledged(
    admin: httpx.AsyncClient, vnf_a: httpx.AsyncClient, vnf_b: httpx.AsyncClient, monitor: httpx.AsyncClient
) -> None:
    await monitor.post("/v1/event", json=host_down("compute-2", "p1"))  # app-stby (vnf-a) and gw-1 (vnf-b)
    mine = (await vnf_b.get("/v1/alarms")).json()["alarms"]
    assert {a["project"] for a in mine} == {"vnf-b"}
    everything = (await admin.get("/v1/alarms", params={"state": "ACTIVE"})).json()["alarms"]
    assert {a["kind"] for a in everything} >= {"host.down", "instance.down"}
    theirs = next(a for a in everything if a["project"] == "vnf-a")
    assert (await vnf_b.get(f"/v1/alarms/{theirs['id']}")).status_code == 404
    assert (await vnf_b.patch(f"/v1/alarms/{theirs['id']}", json={"ackState": "ACKNOWLEDGED"})).status_code == 404
    acked = await vnf_b.patch(f"/v1/alarms/{mine[0]['id']}", json={"ackState": "ACKNOWLEDGED"})
    assert acked.json()["alarm"]["ack_state"] == "ACKNOWLEDGED"
    assert (await vnf_b.patch(f"/v1/alarms/{mine[0]['id']}", json={"ackState": "NOPE"})).status_code == 422
    critical = (await admin.get("/v1/alarms", params={"severity": "CRITICAL"})).json()["alarms"]
    assert all(a["severity"] == "CRITICAL" for a in critical)


async def test_the_fault_profile_has_the_doctor_checkpoints_in_order(
    admin: httpx.AsyncClient, vnf_a: httpx.AsyncClient, monitor: httpx.AsyncClient, receiver: Receiver
) -> None:
    await subscribe(vnf_a, f"{receiver.url}/p")
    injected = time.time()
    event = host_down("compute-1", "t1", injected_at=injected)
    fault = (await monitor.post("/v1/event", json=event)).json()["event"]["fault"]
    await receiver.wait_for(2, "/p")
    profile = (await admin.get(f"/v1/faults/{fault}/profile")).json()
    points = profile["checkpoints"]
    assert points["T00"] == pytest.approx(injected)
    order = ["T01", "T02", "T03", "T04", "T05", "T06", "T07"]
    assert [points[name] for name in order] == sorted(points[name] for name in order)
    assert points["T09"] >= points["T07"]
    assert profile["notification_ms"] == pytest.approx((points["T09"] - points["T01"]) * 1000, abs=0.01)
    assert (await vnf_a.get(f"/v1/faults/{fault}/profile")).status_code == 403


async def test_a_sol003_subscription_needs_a_callback_that_passes_the_test(
    vnf_a: httpx.AsyncClient, receiver: Receiver
) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/nobody"
    refused = await vnf_a.post("/v1/subscriptions", json={"callbacks": [dead], "format": "sol003"})
    assert refused.status_code == 422
    assert "callback test" in refused.json()["error"]["message"]
    ok = await vnf_a.post("/v1/subscriptions", json={"callbacks": [f"{receiver.url}/x"], "format": "sol003"})
    assert ok.status_code == 201
    aodh_to_nobody = await vnf_a.post("/v1/subscriptions", json={"callbacks": [dead], "format": "aodh"})
    assert aodh_to_nobody.status_code == 201  # Aodh has no callback test; delivery retries later


async def test_a_group_alarm_waits_for_its_threshold_of_members(
    admin: httpx.AsyncClient, vnf_a: httpx.AsyncClient, vnf_b: httpx.AsyncClient, monitor: httpx.AsyncClient
) -> None:
    response = await vnf_a.patch("/v1/server-groups/vnf-a-ha", json={"alarm_threshold": 2})
    assert response.json()["server_group"]["alarm_threshold"] == 2
    assert (await vnf_b.patch("/v1/server-groups/vnf-a-ha", json={"alarm_threshold": 1})).status_code == 404
    assert (await vnf_a.patch("/v1/server-groups/vnf-a-ha", json={"alarm_threshold": 0})).status_code == 422
    await monitor.post("/v1/event", json=host_down("compute-1", "a1"))  # app-act: 1 of 2 members down
    groups = (await vnf_a.get("/v1/alarms", params={"kind": "server_group.degraded"})).json()["alarms"]
    assert groups == []
    await monitor.post("/v1/event", json=host_down("compute-2", "a2"))  # app-stby: 2 of 2
    [alarm] = (await vnf_a.get("/v1/alarms", params={"kind": "server_group.degraded"})).json()["alarms"]
    assert sorted(alarm["resource_ids"]) == ["vnf-a-app-act", "vnf-a-app-stby"]


async def test_alarms_faults_and_fault_events_page_with_limit_and_marker(
    admin: httpx.AsyncClient, monitor: httpx.AsyncClient
) -> None:
    for n in range(3):
        await monitor.post("/v1/event", json=host_down("compute-2", f"pd{n}"))
        await monitor.post("/v1/event", json=host_down("compute-2", f"pu{n}", type_="compute.host.up", status="up"))
    faults = (await admin.get("/v1/faults")).json()["faults"]
    assert len(faults) == 3
    first = (await admin.get("/v1/faults", params={"limit": 2})).json()["faults"]
    rest = (await admin.get("/v1/faults", params={"limit": 2, "marker": first[-1]["id"]})).json()["faults"]
    assert [f["id"] for f in first + rest] == [f["id"] for f in faults]
    alarms = (await admin.get("/v1/alarms")).json()["alarms"]
    pages: list[dict[str, Any]] = []
    marker = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"marker": marker} if marker else {})}
        page = (await admin.get("/v1/alarms", params=params)).json()["alarms"]
        pages.extend(page)
        if len(page) < 2:
            break
        marker = page[-1]["id"]
    assert [a["id"] for a in pages] == [a["id"] for a in alarms]
    assert {a["state"] for a in alarms} == {"CLEARED", "ACTIVE"}  # group alarms stay while members are in ERROR
    cleared = (await admin.get("/v1/alarms", params={"state": "CLEARED", "kind": "host.down"})).json()["alarms"]
    assert len(cleared) == 3
    assert (await admin.get(f"/v1/alarms/{cleared[0]['id']}")).json()["alarm"]["state"] == "CLEARED"
    events = (await admin.get("/v1/fault-events", params={"limit": 4})).json()["fault_events"]
    older = (await admin.get("/v1/fault-events", params={"marker": events[-1]["id"]})).json()["fault_events"]
    assert len(events) + len(older) == 6
    assert (await admin.get("/v1/alarms", params={"limit": 0})).status_code == 422
