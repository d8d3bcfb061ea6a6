"""Through real HTTP: an aggregated host fault that clears partially brings the
host back and tells admins, with a ``host.degraded`` warning, of the failure
still left; its own recovery clears that warning."""

from datetime import UTC, datetime
from typing import Any

import httpx
from support import Receiver


def link(event_id: str, nic: str, status: str) -> dict[str, Any]:
    details = {
        "hostname": "compute-1",
        "status": status,
        "monitor": "link-agent",
        "monitor_event_id": event_id,
        "related_to": nic,
    }
    return {"time": datetime.now(UTC).isoformat(), "type": f"network.link.{status}", "details": details}


async def degraded(admin: httpx.AsyncClient, state: str) -> list[dict[str, Any]]:
    params = {"kind": "host.degraded", "resource_id": "compute-1", "state": state}
    return (await admin.get("/v1/alarms", params=params)).json()["alarms"]  # type: ignore[no-any-return]


async def test_one_nic_back_of_two_brings_the_host_up_and_warns_of_the_other(
    admin: httpx.AsyncClient, monitor: httpx.AsyncClient, receiver: Receiver
) -> None:
    wanted = {"event_types": ["host.degraded"], "resource_ids": ["compute-1"]}
    response = await admin.post("/v1/subscriptions", json={"callbacks": [f"{receiver.url}/ops"], "filter": wanted})
    assert response.status_code == 201, response.text
    assert (await monitor.post("/v1/event", json=link("l1", "eth1", "down"))).json()["event"]["outcome"] == "aggregated"
    assert (await monitor.post("/v1/event", json=link("l2", "eth2", "down"))).json()["event"]["outcome"] == (
        "fault_opened"
    )
    assert (await admin.get("/v1/hosts/compute-1")).json()["host"]["status"] == "DOWN"
    await receiver.wait_for(2, "/ops")  # the first warning, raised then replaced by host.down

    up = (await monitor.post("/v1/event", json=link("l3", "eth1", "up"))).json()["event"]
    assert up["outcome"] == "fault_cleared"
    assert (await admin.get("/v1/hosts/compute-1")).json()["host"]["status"] == "UP"
    [warning] = await degraded(admin, "ACTIVE")
    assert (warning["severity"], warning["resource_ids"]) == ("WARNING", ["network.link/eth2"])
    assert "network.link/eth1" not in warning["reason"]
    notes = await receiver.wait_for(3, "/ops")
    assert (notes[2]["body"]["current"], notes[2]["body"]["severity"]) == ("alarm", "low")
    assert "network.link/eth2" in notes[2]["body"]["reason"]

    await monitor.post("/v1/event", json=link("l4", "eth2", "up"))
    assert await degraded(admin, "ACTIVE") == []
    assert len(await degraded(admin, "CLEARED")) == 2
    notes = await receiver.wait_for(4, "/ops")
    assert notes[3]["body"]["current"] == "ok"
    assert len(receiver.delivered("/ops")) == 4
