"""Nova away during a fault: the consumer is told at once, admins get ``vim.unreachable``, nothing is lost.

Vigil in front of a stand-in Keystone, Nova and Neutron (loopback HTTP
servers, ``openstack_standin``): a host fails while Nova refuses
connections or answers 503. The tenant's notification does not wait for
Nova; the fault actions wait for it, past their retry budget, while admins
have a ``vim.unreachable`` alarm (GET /v1/alarms, and notified); once Nova
answers, the actions land and the alarm is cleared, also across a restart
of Vigil during the outage. ``tests/openstack/test_vim_unreachable.py`` does
the same against the real Nova.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import Receiver

from vigil.domain.events import EventAction, ResourceEvent
from vigil.domain.model import ResourceType
from vigil.domain.retry import RetryPolicy
from vigil.serving import BackgroundServer
from vigil.settings import Settings, load_settings
from vigil.vim.openstack.push import FaultPusher
from vigil.vim.openstack.session import OpenStackAuth, OpenStackSession
from vim.openstack_standin import OpenStackStandIn, report, until, vigil


@pytest.fixture
async def standin() -> AsyncIterator[OpenStackStandIn]:
    cloud = OpenStackStandIn()
    cloud.add_server("s-1", "compute-1")
    cloud.add_server("s-2", "compute-1")
    cloud.add_server("s-3", "compute-2")
    await cloud.start()
    try:
        yield cloud
    finally:
        await cloud.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hooks = Receiver()
    async with BackgroundServer(hooks.app) as server:
        hooks.url = server.url
        yield hooks


@pytest.fixture
def settings(tmp_path: Path, standin: OpenStackStandIn) -> Settings:
    return load_settings(
        None,
        data_dir=tmp_path,
        inspector={"hold_down_s": 0},
        notifier={"retry_initial_s": 0.01, "retry_max_delay_s": 0.05, "timeout_s": 2.0},
        vim=standin.vim_settings(),
    )


def traits(notification: dict[str, Any]) -> dict[str, Any]:
    return {t[0]: t[2] for t in notification["body"]["reason_data"]["event"]["traits"]}


def vim_notifications(receiver: Receiver) -> list[tuple[str, str]]:
    """(lifecycle, resource) of each ``vim.unreachable`` notification admins got."""
    found = [traits(r) for r in receiver.delivered("/admin")]
    return [(t["lifecycle"], t["service"]) for t in found if t["vigil_alarm_kind"] == "vim.unreachable"]


async def vim_alarms(admin: httpx.AsyncClient) -> list[dict[str, Any]]:
    answer = await admin.get("/v1/alarms", params={"kind": "vim.unreachable"})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["alarms"])


async def subscribe(client: httpx.AsyncClient, url: str) -> None:
    answer = await client.post("/v1/subscriptions", json={"callbacks": [url]})
    assert answer.status_code == 201, answer.text


async def test_nova_refusing_connections_during_a_fault_raises_vim_unreachable_until_the_actions_land(
    settings: Settings, standin: OpenStackStandIn, receiver: Receiver
) -> None:
    async with vigil(settings) as client, client("admin") as admin, client("tenant") as tenant:
        await subscribe(admin, f"{receiver.url}/admin")
        await subscribe(tenant, f"{receiver.url}/tenant")
        await standin.stop_nova()
        async with client("monitor") as monitor:
            answered = await monitor.post("/v1/event", json=report("compute-1", "e-1"))
        assert answered.status_code == 200, answered.text

        told = await receiver.wait_for(1, "/tenant")  # at once: the notification never waits for Nova
        assert traits(told[0])["vigil_alarm_kind"] == "instance.down"
        (alarm,) = await until(lambda: vim_alarms(admin), "vim.unreachable raised")
        assert (alarm["state"], alarm["project"], alarm["resource_id"]) == ("ACTIVE", None, "compute")
        assert alarm["severity"] == "MAJOR"
        await until(lambda: vim_notifications(receiver), "admins told")
        assert vim_notifications(receiver) == [("raised", "compute")]
        assert not standin.forced_down["compute-1"]
        assert all(p["data_plane_status"] == "DOWN" for p in standin.ports.values() if p["device_id"] != "s-3")
        # What the operator sees meanwhile: the two ports pushed (Neutron is up), three calls waiting for Nova.
        pushes = await until(lambda: _pushes(admin, lambda p: p["pushed"] == 2), "the ports pushed")
        assert pushes["waiting"] == {"compute": 3}, pushes  # compute-1 forced down, s-1 and s-2 reset
        assert pushes["pending"] == 3, pushes

        await standin.start_nova()
        await until(lambda: standin.shows_fault("compute-1"), "the actions in Nova")
        pushes = await until(lambda: _pushes(admin, lambda p: not p["waiting"] and not p["pending"]), "all pushed")
        assert pushes["pushed"] == 5, pushes
        (cleared,) = await until(
            lambda: _with_state(vim_alarms(admin), "CLEARED"), "vim.unreachable cleared", within_s=30
        )
        assert cleared["id"] == alarm["id"]
        await until(lambda: len(vim_notifications(receiver)) == 2, "admins told of the clearing")
        assert vim_notifications(receiver) == [("raised", "compute"), ("cleared", "compute")]
        assert standin.servers["s-3"]["status"] == "ACTIVE"  # on the other host: untouched


async def _pushes(admin: httpx.AsyncClient, holds: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """The fault pusher's counters in ``GET /v1/vim``, once ``holds`` of them."""
    pushes: dict[str, Any] = (await admin.get("/v1/vim")).json()["pushes"]
    return pushes if holds(pushes) else None


async def _with_state(alarms: Any, state: str) -> list[dict[str, Any]]:
    return [a for a in await alarms if a["state"] == state]


async def test_the_alarm_and_the_actions_outlive_a_restart_of_vigil_while_nova_is_away(
    settings: Settings, standin: OpenStackStandIn
) -> None:
    async with vigil(settings) as client, client("monitor") as monitor, client("admin") as admin:
        standin.nova_status = 503  # a proxy in front of a dead Nova
        answered = await monitor.post("/v1/event", json=report("compute-1", "e-1"))
        assert answered.status_code == 200, answered.text
        (raised,) = await until(lambda: vim_alarms(admin), "vim.unreachable raised")
    async with vigil(settings) as client, client("admin") as admin:
        assert [a["id"] for a in await _with_state(vim_alarms(admin), "ACTIVE")] == [raised["id"]]
        standin.nova_status = None
        await until(lambda: standin.shows_fault("compute-1"), "the actions in Nova")
        (cleared,) = await until(lambda: _with_state(vim_alarms(admin), "CLEARED"), "vim.unreachable cleared")
        assert cleared["id"] == raised["id"]


async def test_an_alarm_left_open_by_a_restart_is_cleared_once_nova_answers_though_nothing_waits_to_be_pushed(
    settings: Settings, standin: OpenStackStandIn
) -> None:
    async with vigil(settings) as client, client("monitor") as monitor, client("admin") as admin:
        standin.nova_status = 503
        answered = await monitor.post("/v1/event", json=report("compute-1", "e-1"))
        assert answered.status_code == 200, answered.text
        await until(lambda: vim_alarms(admin), "vim.unreachable raised")
        up = report("compute-1", "e-2", "up")
        up["details"]["status"] = "up"
        assert (await monitor.post("/v1/event", json=up)).status_code == 200
    standin.nova_status = None  # back while Vigil is down: at start, the map holds no fault to push
    async with vigil(settings) as client, client("admin") as admin:
        await until(lambda: _with_state(vim_alarms(admin), "CLEARED"), "vim.unreachable cleared")


async def test_a_push_keeps_trying_past_its_retry_budget_while_nova_answers_503(standin: OpenStackStandIn) -> None:
    o = standin.vim_settings()["openstack"]
    auth = OpenStackAuth(
        o["auth_url"],
        username="admin",
        password="secret",
        project_name="admin",
        endpoint_overrides=o["endpoint_overrides"],
    )
    budget = RetryPolicy(initial_s=0.01, max_delay_s=0.02, max_attempts=2)
    async with OpenStackSession(auth) as session:
        pusher = FaultPusher(session, policy=budget)
        forced = ResourceEvent(
            1, datetime.now(UTC), ResourceType.HOST, "compute-1", EventAction.UPDATED,
            {"forced_down": (False, True)}, reason="fault event",
        )  # fmt: skip
        standin.nova_status = 503
        pushing = asyncio.create_task(pusher.push(pusher.pushes_for([forced])), name="test.push")
        try:
            await until(lambda: standin.refused > 3 * budget.max_attempts, "Nova asked again")
            assert not pushing.done()
            standin.nova_status = None
            await asyncio.wait_for(pushing, 10)
        finally:
            pushing.cancel()
    assert standin.forced_down["compute-1"]
    assert pusher.counters.failed == 0
