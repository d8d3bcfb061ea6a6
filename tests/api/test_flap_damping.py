"""Flap damping on the southbound path (finding 8 of the crash-safety issue).

Seen before: 20 down/up cycles of one host on the southbound API gave 20
faults and 120 notifications. Now a recovery counts only once its failure
has stayed away for the hold-down (``inspector.hold_down_s``); a failure
reported again meanwhile cancels it. A flapping host raises one alarm and
clears it once; the reports damping absorbed are recorded as ``held`` and
``damped``. Per host and event family: a flapping NIC (non-critical)
keeps one warning in the same way.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from conftest import Api
from support import Receiver

from vigil.settings import Settings

HOLD_DOWN_S = 0.6


def report(host: str, ident: str, status: str, family: str = "compute.host", **extra: Any) -> dict[str, Any]:
    details = {"hostname": host, "status": status, "monitor": "flappy", "monitor_event_id": ident, **extra}
    return {"time": datetime.now(UTC).isoformat(), "type": f"{family}.{status}", "details": details}


@pytest.fixture
async def damped(
    settings: Settings, restart: Callable[[Settings], AbstractAsyncContextManager[Api]], receiver: Receiver
) -> AsyncIterator[Api]:
    held = settings.model_copy(update={"inspector": settings.inspector.model_copy(update={"hold_down_s": HOLD_DOWN_S})})
    async with restart(held) as api, api.client("admin-token") as admin, api.client("vnf-a-token") as vnf_a:
        assert (await admin.post("/v1/subscriptions", json={"callbacks": [f"{receiver.url}/admin"]})).status_code == 201
        assert (await vnf_a.post("/v1/subscriptions", json={"callbacks": [f"{receiver.url}/vnf-a"]})).status_code == 201
        yield api


def heard(receiver: Receiver, path: str) -> list[tuple[str, str]]:
    """(alarm kind, Aodh state) of each notification delivered on ``path``, in order."""
    found = []
    for entry in receiver.delivered(path):
        traits = {name: value for name, _, value in entry["body"]["reason_data"]["event"]["traits"]}
        found.append((traits["vigil_alarm_kind"], entry["body"]["current"]))
    return found


async def outcomes(monitor: httpx.AsyncClient, reports: list[dict[str, Any]]) -> list[str]:
    found = []
    for body in reports:
        response = await monitor.post("/v1/event", json=body)
        assert response.status_code == 200, response.text
        found.append(response.json()["event"]["outcome"])
    return found


async def settled(admin: httpx.AsyncClient, host: str, status: str, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while (await admin.get(f"/v1/hosts/{host}")).json()["host"]["status"] != status:
        assert time.monotonic() < deadline, f"{host} never became {status}"
        await asyncio.sleep(0.02)


async def test_a_flapping_host_raises_one_alarm_and_clears_it_once_after_the_hold_down(
    damped: Api, receiver: Receiver
) -> None:
    cycles = [report("compute-1", f"{direction}{n}", direction) for n in range(20) for direction in ("down", "up")]
    async with damped.client("monitor-token") as monitor, damped.client("admin-token") as admin:
        seen = await outcomes(monitor, cycles)
        assert seen[0] == "fault_opened"
        assert set(seen[2::2]) == {"damped"}  # each failure back within the hold-down: absorbed
        assert set(seen[1::2]) == {"held"}  # each recovery starts a hold-down of its own
        host = (await admin.get("/v1/hosts/compute-1")).json()["host"]
        assert host["status"] == "DOWN"  # the last recovery is still held
        await settled(admin, "compute-1", "UP")
        faults = (await admin.get("/v1/faults")).json()["faults"]
        assert len(faults) == 1
        assert faults[0]["state"] == "CLEARED"
        logged = (await admin.get("/v1/fault-events", params={"limit": 100})).json()["fault_events"]
        by_id = {e["monitor_event_id"]: e["outcome"] for e in logged}
        assert by_id["up19"] == "fault_cleared"  # the recovery that held out, applied when its hold-down passed
        assert by_id["down1"] == "damped"
    await asyncio.sleep(0.3)
    assert [state for kind, state in heard(receiver, "/admin") if kind == "host.down"] == ["alarm", "ok"]
    assert [state for kind, state in heard(receiver, "/vnf-a") if kind == "instance.down"] == ["alarm", "ok"]
    assert len(heard(receiver, "/admin")) == 5  # host.down, instance.down and the group's, raised; two cleared


async def test_a_failure_back_within_the_hold_down_keeps_the_fault_without_a_word(
    damped: Api, receiver: Receiver
) -> None:
    async with damped.client("monitor-token") as monitor, damped.client("admin-token") as admin:
        assert await outcomes(monitor, [report("compute-4", "d1", "down"), report("compute-4", "u1", "up")]) == [
            "fault_opened",
            "held",
        ]
        await asyncio.sleep(HOLD_DOWN_S / 3)
        assert await outcomes(monitor, [report("compute-4", "d2", "down")]) == ["damped"]
        await asyncio.sleep(HOLD_DOWN_S * 1.5)
        assert (await admin.get("/v1/hosts/compute-4")).json()["host"]["status"] == "DOWN"
        [fault] = (await admin.get("/v1/faults", params={"state": "ACTIVE"})).json()["faults"]
        assert fault["resource_id"] == "compute-4"
    assert [state for kind, state in heard(receiver, "/admin") if kind == "host.down"] == ["alarm"]


async def test_a_flapping_nic_keeps_one_warning(damped: Api, receiver: Receiver) -> None:
    flaps = [
        report("compute-2", f"{direction}{n}", direction, family="network.link", related_to="eth1")
        for n in range(5)
        for direction in ("down", "up")
    ]
    async with damped.client("monitor-token") as monitor, damped.client("admin-token") as admin:
        seen = await outcomes(monitor, flaps)
        assert seen[0] == "aggregated"
        assert seen[-1] == "held"
        deadline = time.monotonic() + 5
        while (await admin.get("/v1/alarms", params={"kind": "host.degraded", "state": "ACTIVE"})).json()["alarms"]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        warnings = (await admin.get("/v1/alarms", params={"kind": "host.degraded"})).json()["alarms"]
        assert len(warnings) == 1
    await asyncio.sleep(0.3)
    assert heard(receiver, "/admin") == [("host.degraded", "alarm"), ("host.degraded", "ok")]
