"""Fence first: a failed host is powered off through its BMC (Debian's fence agents against the BMC emulators) after
its owners are notified and before anything of it could be recovered; a fence that fails raises host.fence_failed
and leaves the host as it is; a fenced host that comes back waits for an admin."""

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bmc_support import PASSWORD, Bmcs, running_bmcs
from conftest import EXAMPLE, Api, serving
from support import Receiver
from test_fault_path import host_down, subscribe

from vigil.settings import Settings, load_settings


def device(bmcs: Bmcs, host: str, *, password: str = PASSWORD, port: int | None = None) -> dict[str, Any]:
    """``host``'s fence device in settings: compute-1 through IPMI, compute-2 through Redfish."""
    made = bmcs.ipmi(host, password=password) if host == "compute-1" else bmcs.redfish(host, password=password)
    options = dict(made.options)
    if port is not None:
        options["ipport"] = str(port)
    return {"agent": made.agent, "options": options, "secrets": {"password": password}, "timeout_s": 20}


def fencing_settings(tmp_path: Path, devices: dict[str, Any]) -> Settings:
    return load_settings(
        None,
        data_dir=tmp_path / "vigil",
        cloud={"topology": EXAMPLE},
        notifier={"retry_initial_s": 0.01, "retry_max_delay_s": 0.05, "retry_horizon_s": 30, "timeout_s": 2.0},
        inspector={"hold_down_s": 0},
        fencing={"devices": devices},
    )


@pytest.fixture
def bmcs(tmp_path: Path) -> Iterator[Bmcs]:
    with running_bmcs(tmp_path) as running:
        yield running


@pytest.fixture
async def fenced(bmcs: Bmcs, tmp_path: Path) -> AsyncIterator[Api]:
    devices = {host: device(bmcs, host) for host in ("compute-1", "compute-2")}
    async with serving(fencing_settings(tmp_path, devices)) as api:
        yield api


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    from vigil.serving import BackgroundServer

    hooks = Receiver()
    async with BackgroundServer(hooks.app) as server:
        hooks.url = server.url
        yield hooks


async def profile_until(
    client: httpx.AsyncClient, fault: str, done: Callable[[dict[str, float]], bool], within_s: float = 30.0
) -> dict[str, float]:
    """The fault's checkpoints once ``done`` holds of them."""
    deadline = time.monotonic() + within_s
    while True:
        checkpoints: dict[str, float] = (await client.get(f"/v1/faults/{fault}/profile")).json()["checkpoints"]
        if done(checkpoints):
            return checkpoints
        assert time.monotonic() < deadline, f"the fault's checkpoints stayed {sorted(checkpoints)}"
        await asyncio.sleep(0.05)


def traits(notification: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, _, value in notification["body"]["reason_data"]["event"]["traits"]}


async def report(api: Api, host: str, event: str, status: str = "down") -> str:
    async with api.client("monitor-token") as monitor:
        response = await monitor.post("/v1/event", json=host_down(host, event, status=status))
    assert response.status_code == 200, response.text
    return str(response.json()["event"]["fault"])


async def test_a_failed_host_is_fenced_after_its_owners_are_notified(
    fenced: Api, bmcs: Bmcs, receiver: Receiver
) -> None:
    async with fenced.client("vnf-a-token") as vnf_a, fenced.client("admin-token") as admin:
        await subscribe(vnf_a, f"{receiver.url}/vnf-a", filter={"event_types": ["instance.down"]})
        fault = await report(fenced, "compute-1", "e1")
        first = await profile_until(admin, fault, lambda c: "T08" in c)

        checkpoints = await profile_until(admin, fault, lambda c: "fence_confirmed" in c)
        notes = await receiver.wait_for(3, "/vnf-a")
        await asyncio.sleep(0.2)  # the updates' deliveries answered
        final = (await admin.get(f"/v1/faults/{fault}/profile")).json()["checkpoints"]
        host = (await admin.get("/v1/hosts/compute-1")).json()["host"]

    assert not bmcs.powered("compute-1")
    assert bmcs.powered("compute-2")
    assert checkpoints["T04"] <= checkpoints["fence_requested"] < checkpoints["fence_confirmed"]
    assert "fence_failed" not in checkpoints
    assert (final["T07"], final["T08"]) == (first["T07"], first["T08"]), "the fault's notification time is its first"
    assert [traits(n).get("fence") for n in notes] == [None, "requested", "confirmed"]
    assert [traits(n)["lifecycle"] for n in notes] == ["raised", "updated", "updated"]
    assert (host["admin_state"], host["forced_down"]) == ("disabled", True)
    assert host["disabled_reason"].startswith("fenced: ")


async def test_a_fenced_host_that_comes_back_stays_disabled_until_an_admin_enables_it(fenced: Api) -> None:
    async with fenced.client("admin-token") as admin:
        fault = await report(fenced, "compute-2", "e1")
        await profile_until(admin, fault, lambda c: "fence_confirmed" in c)

        await report(fenced, "compute-2", "e2", status="up")  # someone powered it on; its agent is back
        back = (await admin.get("/v1/hosts/compute-2")).json()["host"]
        cleared = (await admin.get(f"/v1/faults/{fault}")).json()["fault"]
        enabled = await admin.post("/v1/hosts/compute-2/action", json={"action": "enable"})
        after = (await admin.get("/v1/hosts/compute-2")).json()["host"]

    assert cleared["state"] == "CLEARED"
    assert (back["admin_state"], back["forced_down"]) == ("disabled", False)
    assert back["disabled_reason"].startswith("fenced: ")
    assert enabled.status_code == 200, enabled.text
    assert after["admin_state"] == "enabled"


async def test_a_fence_the_bmc_refuses_raises_host_fence_failed_and_leaves_the_host_on(
    bmcs: Bmcs, tmp_path: Path, receiver: Receiver
) -> None:
    devices = {"compute-1": device(bmcs, "compute-1", password="not-the-password")}
    async with (
        serving(fencing_settings(tmp_path, devices)) as api,
        api.client("admin-token") as admin,
        api.client("vnf-a-token") as vnf_a,
    ):
        await subscribe(admin, f"{receiver.url}/admin", filter={"event_types": ["host.fence_failed"]})
        await subscribe(vnf_a, f"{receiver.url}/vnf-a", filter={"event_types": ["instance.down"]})
        fault = await report(api, "compute-1", "e1")

        checkpoints = await profile_until(admin, fault, lambda c: "fence_failed" in c)
        [alarm_note] = await receiver.wait_for(1, "/admin")
        tenant_notes = await receiver.wait_for(3, "/vnf-a")
        alarms = (await admin.get("/v1/alarms", params={"kind": "host.fence_failed"})).json()["alarms"]

    assert bmcs.powered("compute-1")
    assert "fence_confirmed" not in checkpoints
    assert [traits(n).get("fence") for n in tenant_notes] == [None, "requested", "failed"]
    assert "not-the-password" not in str(alarm_note) + str(alarms)
    [alarm] = [a for a in alarms if a["state"] == "ACTIVE"]
    assert alarm["resource_id"] == "compute-1"
    assert "off failed" in alarm["reason"]
    assert "compute-1" in str(alarm_note["body"])


async def test_a_host_without_a_fence_device_is_not_fenced(fenced: Api) -> None:
    async with fenced.client("admin-token") as admin:
        fault = await report(fenced, "compute-3", "e1")
        other = await report(fenced, "compute-1", "e2")
        await profile_until(admin, other, lambda c: "fence_confirmed" in c)  # the fencer did run meanwhile
        checkpoints = (await admin.get(f"/v1/faults/{fault}/profile")).json()["checkpoints"]

    assert not [c for c in checkpoints if c.startswith("fence")]


async def test_a_fence_cut_off_by_a_stop_is_done_by_the_next_start(bmcs: Bmcs, tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # a BMC that never answers: the fence hangs
        silent.bind(("127.0.0.1", 0))
        hanging = {"compute-1": device(bmcs, "compute-1", port=silent.getsockname()[1])}
        async with serving(fencing_settings(tmp_path, hanging)) as api, api.client("admin-token") as admin:
            fault = await report(api, "compute-1", "e1")
            await profile_until(admin, fault, lambda c: "fence_requested" in c)
        # stopped while the agent waited for the BMC: no outcome recorded

    working = {"compute-1": device(bmcs, "compute-1")}
    async with serving(fencing_settings(tmp_path, working)) as api, api.client("admin-token") as admin:
        checkpoints = await profile_until(admin, fault, lambda c: "fence_confirmed" in c)

    assert not bmcs.powered("compute-1")
    assert "fence_failed" not in checkpoints
