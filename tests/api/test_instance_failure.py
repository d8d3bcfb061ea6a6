"""Instance-level failures: ``compute.instance.down`` names one instance (``related_to``) whose workload died on a
host that is fine. Only that instance goes ERROR and only its owner hears of it; a recovery clears the fault; with
the ``restart`` policy Vigil restarts it in place (Masakari's instance recovery)."""

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from conftest import EXAMPLE, serving
from support import Receiver
from test_fault_path import host_down, subscribe

from vigil.serving import BackgroundServer
from vigil.settings import load_settings


def instance_event(instance: str, event: str, status: str = "down", host: str = "compute-1") -> dict[str, Any]:
    return host_down(
        host, event, type_=f"compute.instance.{status}", status=status, related_to=instance, cause="workload died"
    )


async def test_a_failed_instance_alone_goes_error_and_only_its_owner_hears(
    admin: httpx.AsyncClient,
    vnf_a: httpx.AsyncClient,
    vnf_b: httpx.AsyncClient,
    monitor: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    await subscribe(vnf_a, f"{receiver.url}/a", filter={"event_types": ["instance.down"]})
    await subscribe(vnf_b, f"{receiver.url}/b")
    others = [i["id"] for i in (await admin.get("/v1/instances", params={"host": "compute-1"})).json()["instances"]]

    response = await monitor.post("/v1/event", json=instance_event("vnf-a-app-act", "i1"))

    assert response.status_code == 200, response.text
    assert response.json()["event"]["outcome"] == "fault_opened"
    [note] = await receiver.wait_for(1, "/a")
    traits = {name: value for name, _, value in note["body"]["reason_data"]["event"]["traits"]}
    assert traits["instance_id"] == "vnf-a-app-act"
    assert "compute-1" not in str(note["body"])
    states = {i["id"]: i["state"] for i in (await admin.get("/v1/instances")).json()["instances"]}
    assert states["vnf-a-app-act"] == "ERROR"
    assert all(states[i] != "ERROR" for i in others if i != "vnf-a-app-act"), "its neighbours are untouched"
    host = (await admin.get("/v1/hosts/compute-1")).json()["host"]
    assert (host["status"], host["forced_down"], host["admin_state"]) == ("UP", False, "enabled")
    await asyncio.sleep(0.2)
    assert receiver.delivered("/b") == [], "another project hears nothing"


async def test_an_instance_recovery_clears_its_fault_and_alarm(
    vnf_a: httpx.AsyncClient, monitor: httpx.AsyncClient
) -> None:
    down = (await monitor.post("/v1/event", json=instance_event("vnf-a-app-act", "i1"))).json()["event"]
    again = (await monitor.post("/v1/event", json=instance_event("vnf-a-app-act", "i2"))).json()["event"]
    other = (await monitor.post("/v1/event", json=instance_event("vnf-a-app-stby", "i3"))).json()["event"]
    up = (await monitor.post("/v1/event", json=instance_event("vnf-a-app-act", "i4", "up"))).json()["event"]

    assert (down["outcome"], again["outcome"], other["outcome"]) == ("fault_opened", "correlated", "fault_opened")
    assert again["fault"] == down["fault"] != other["fault"]
    assert (up["outcome"], up["fault"]) == ("fault_cleared", down["fault"])
    alarms = (await vnf_a.get("/v1/alarms", params={"kind": "instance.down"})).json()["alarms"]
    assert sorted(a["state"] for a in alarms) == ["ACTIVE", "CLEARED"], "the standby's stays"


async def test_an_event_for_an_unknown_instance_is_refused(
    admin: httpx.AsyncClient, monitor: httpx.AsyncClient
) -> None:
    response = await monitor.post("/v1/event", json=instance_event("no-such-vm", "i1"))
    missing = await monitor.post("/v1/event", json=host_down("compute-1", "i2", type_="compute.instance.down"))

    assert response.status_code == 422
    assert "no-such-vm" in response.json()["error"]["message"]
    assert missing.status_code == 422


async def test_the_restart_policy_restarts_a_failed_instance_in_place(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        data_dir=tmp_path,
        cloud={"topology": EXAMPLE},
        inspector={"hold_down_s": 0},
        recovery={"projects": {"vnf-a": {"action": "restart"}}},
    )
    hooks = Receiver()
    async with (
        BackgroundServer(hooks.app) as receiver,
        serving(settings) as api,
        api.client("admin-token") as admin,
        api.client("vnf-a-token") as vnf_a,
        api.client("monitor-token") as monitor,
    ):
        await subscribe(vnf_a, f"{receiver.url}/a", filter={"event_types": ["instance.down"]})
        before = (await admin.get("/v1/instances/vnf-a-app-act")).json()["instance"]
        fault = (await monitor.post("/v1/event", json=instance_event("vnf-a-app-act", "i1"))).json()["event"]["fault"]
        deadline = time.monotonic() + 10
        while "recovered" not in (profile := (await admin.get(f"/v1/faults/{fault}/profile")).json()["checkpoints"]):
            assert time.monotonic() < deadline, profile
            await asyncio.sleep(0.02)
        after = (await admin.get("/v1/instances/vnf-a-app-act")).json()["instance"]
        notes = await hooks.wait_for(3, "/a")

    assert profile["T03"] <= profile["recovery_started"] <= profile["recovered"]
    assert (after["state"], after["host"]) == ("ACTIVE", before["host"])
    recovery = [{n: v for n, _, v in note["body"]["reason_data"]["event"]["traits"]}.get("recovery") for note in notes]
    assert recovery == [None, "restarting", "done"]
