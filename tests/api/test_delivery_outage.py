"""A consumer that is away: nothing is given up silently (finding 6 of the crash-safety issue).

Seen before: a consumer down for more than about 45 s lost every
notification; deliveries went FAILED after 10 attempts, were never resumed,
not even after a restart, and no alarm told the admin. Now an unreachable
endpoint gets one probe at a time (not one retry chain per notification),
admins get ``subscription.unreachable`` while it lasts, everything waiting is
delivered when it answers again, deliveries given up after the horizon can be
sent again by an admin, and a SOL 003 subscriber that missed notifications
hears ``AlarmListRebuiltNotification``. Real servers and receivers throughout,
with the backoff and the horizon scaled down.
"""

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from conftest import Api
from support import Receiver

from vigil.serving import BackgroundServer
from vigil.settings import Settings


def event(host: str, ident: str, status: str = "down") -> dict[str, Any]:
    details = {"hostname": host, "status": status, "monitor": "m", "monitor_event_id": ident}
    return {"time": datetime.now(UTC).isoformat(), "type": f"compute.host.{status}", "details": details}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def with_notifier(settings: Settings, **notifier: float) -> Settings:
    return settings.model_copy(update={"notifier": settings.notifier.model_copy(update=notifier)})


async def until(check: Callable[[], Any], within_s: float = 10.0) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within_s} s: {result!r}")
        await asyncio.sleep(0.02)


async def unreachable_alarms(admin: httpx.AsyncClient) -> list[dict[str, Any]]:
    found = (await admin.get("/v1/alarms", params={"kind": "subscription.unreachable"})).json()["alarms"]
    return list(found)


async def deliveries(admin: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    return list((await admin.get("/v1/deliveries", params={"limit": 1000, **params})).json()["deliveries"])


@pytest.fixture
async def away(
    settings: Settings, restart: Callable[[Settings], AbstractAsyncContextManager[Api]], receiver: Receiver
) -> AsyncIterator[tuple[Api, int]]:
    """A server whose admin hears everything at ``receiver``/admin, and a port nobody listens on yet."""
    patient = with_notifier(settings, retry_initial_s=0.05, retry_max_delay_s=0.2, retry_horizon_s=60)
    async with restart(patient) as api, api.client("admin-token") as admin:
        assert (await admin.post("/v1/subscriptions", json={"callbacks": [f"{receiver.url}/admin"]})).status_code == 201
        yield api, free_port()


async def test_an_unreachable_consumer_gets_one_probe_at_a_time_and_everything_once_back(
    away: tuple[Api, int], receiver: Receiver
) -> None:
    api, port = away
    async with (
        api.client("admin-token") as admin,
        api.client("vnf-a-token") as vnf_a,
        api.client("monitor-token") as mon,
    ):
        body = {"callbacks": [f"http://127.0.0.1:{port}/vnf-a"], "filter": {"event_types": ["instance.down"]}}
        subscription = (await vnf_a.post("/v1/subscriptions", json=body)).json()["subscription"]
        for n, host in enumerate(["compute-1", "compute-4"]):
            assert (await mon.post("/v1/event", json=event(host, f"d{n}"))).status_code == 200
            assert (await mon.post("/v1/event", json=event(host, f"u{n}", "up"))).status_code == 200
        [alarm] = await until(lambda: unreachable_alarms(admin))
        assert (alarm["state"], alarm["resource_id"], alarm["details"]["url"]) == (
            "ACTIVE",
            subscription["id"],
            f"http://127.0.0.1:{port}/vnf-a",
        )
        await asyncio.sleep(1.0)  # a second of backoffs of at most 0.2 s
        waiting = await deliveries(admin, subscription=subscription["id"])
        assert len(waiting) == 4  # two raised, two cleared
        assert {d["state"] for d in waiting} == {"PENDING"}
        retried = [d for d in waiting if d["attempts"] > 1]
        assert len(retried) == 1, "one probe at a time: only the oldest notification is tried again"
        assert sum(d["attempts"] for d in waiting) <= 4 + 1.0 / 0.05

        hooks = Receiver()
        async with BackgroundServer(hooks.app, port=port):
            delivered = await hooks.wait_for(4, "/vnf-a")
            await until(lambda: _all_delivered(admin, subscription["id"]))
            [alarm] = await until(lambda: _cleared(admin))
        lifecycles = [r["body"]["current"] for r in delivered]
        assert lifecycles.count("alarm") == 2
        assert lifecycles.count("ok") == 2
        heard = [r["body"] for r in receiver.delivered("/admin")]
        unreachable = [b for b in heard if "subscription" in str(b["reason_data"]["event"]["event_type"])]
        assert [b["current"] for b in unreachable] == ["alarm", "ok"]  # the admin saw it raised and cleared


async def _all_delivered(admin: httpx.AsyncClient, subscription: str) -> bool:
    return {d["state"] for d in await deliveries(admin, subscription=subscription)} == {"DELIVERED"}


async def _cleared(admin: httpx.AsyncClient) -> list[dict[str, Any]]:
    return [a for a in await unreachable_alarms(admin) if a["state"] == "CLEARED"]


async def test_deliveries_given_up_after_the_horizon_are_sent_again_on_demand(
    settings: Settings, restart: Callable[[Settings], AbstractAsyncContextManager[Api]]
) -> None:
    port = free_port()
    brief = with_notifier(settings, retry_initial_s=0.05, retry_max_delay_s=0.1, retry_horizon_s=0.5)
    async with restart(brief) as api, api.client("admin-token") as admin, api.client("monitor-token") as mon:
        aodh = {"callbacks": [f"http://127.0.0.1:{port}/aodh"]}
        async with api.client("vnf-a-token") as vnf_a:
            first = (await vnf_a.post("/v1/subscriptions", json=aodh)).json()["subscription"]
        assert (await mon.post("/v1/event", json=event("compute-1", "g1"))).status_code == 200
        failed = await until(lambda: _failed(admin, first["id"]))
        assert all("given up" in d["last_error"] for d in failed)
        assert (await unreachable_alarms(admin))[0]["state"] == "ACTIVE"  # given up is not forgotten

        hooks = Receiver()
        async with BackgroundServer(hooks.app, port=port):
            await until(lambda: _cleared(admin))  # the probe found it back: the alarm clears
            one = failed[0]["id"]
            response = await admin.post(f"/v1/deliveries/{one}/redeliver")
            assert response.status_code == 200, response.text
            assert response.json()["delivery"]["state"] == "PENDING"
            assert response.json()["delivery"]["retry_since"] is not None
            response = await admin.post(f"/v1/subscriptions/{first['id']}/redeliver")
            assert response.status_code == 200, response.text
            assert response.json()["redelivered"] == len(failed) - 1
            await hooks.wait_for(len(failed), "/aodh")
            await until(lambda: _all_delivered(admin, first["id"]))
            notified = {r["headers"]["x-vigil-notification-id"] for r in hooks.delivered("/aodh")}
            assert notified == {d["notification"] for d in failed}  # the same notifications, ids unchanged
            again = await admin.post(f"/v1/deliveries/{one}/redeliver")
            assert again.status_code == 409  # delivered: nothing to send again
        assert (await admin.post("/v1/deliveries/no-such-delivery/redeliver")).status_code == 404
        async with api.client("vnf-a-token") as member:
            assert (await member.post(f"/v1/deliveries/{one}/redeliver")).status_code == 403


async def _failed(admin: httpx.AsyncClient, subscription: str) -> list[dict[str, Any]]:
    found = await deliveries(admin, subscription=subscription)
    return found if found and {d["state"] for d in found} == {"FAILED"} else []


async def test_a_sol003_subscriber_that_missed_notifications_hears_the_alarm_list_was_rebuilt(
    settings: Settings, restart: Callable[[Settings], AbstractAsyncContextManager[Api]]
) -> None:
    port = free_port()
    hooks = Receiver()
    brief = with_notifier(settings, retry_initial_s=0.05, retry_max_delay_s=0.1, retry_horizon_s=0.5)
    async with restart(brief) as api, api.client("vnf-a-token") as vnf_a, api.client("admin-token") as admin:
        async with BackgroundServer(hooks.app, port=port):  # up for the SOL 003 callback test only
            body = {"callbacks": [f"http://127.0.0.1:{port}/sol"], "format": "sol003"}
            subscription = (await vnf_a.post("/v1/subscriptions", json=body)).json()["subscription"]
        async with api.client("monitor-token") as mon:
            assert (await mon.post("/v1/event", json=event("compute-1", "s1"))).status_code == 200
        await until(lambda: _failed(admin, subscription["id"]))
        async with BackgroundServer(hooks.app, port=port):
            [rebuilt] = await hooks.wait_for(1, "/sol")
    assert rebuilt["body"]["notificationType"] == "AlarmListRebuiltNotification"
    assert rebuilt["body"]["subscriptionId"] == subscription["id"]
    assert rebuilt["body"]["_links"]["alarms"]["href"].endswith("/v1/alarms")


async def test_an_unreachable_consumer_stays_alarmed_across_a_restart_and_is_delivered_after_it(
    settings: Settings, restart: Callable[[Settings], AbstractAsyncContextManager[Api]]
) -> None:
    port = free_port()
    patient = with_notifier(settings, retry_initial_s=0.05, retry_max_delay_s=0.2, retry_horizon_s=60)
    async with restart(patient) as api, api.client("vnf-a-token") as vnf_a, api.client("admin-token") as admin:
        body = {"callbacks": [f"http://127.0.0.1:{port}/later"], "filter": {"event_types": ["instance.down"]}}
        subscription = (await vnf_a.post("/v1/subscriptions", json=body)).json()["subscription"]
        async with api.client("monitor-token") as mon:
            assert (await mon.post("/v1/event", json=event("compute-1", "k1"))).status_code == 200
        await until(lambda: unreachable_alarms(admin))
    hooks = Receiver()
    async with BackgroundServer(hooks.app, port=port), restart(patient) as api, api.client("admin-token") as admin:
        await hooks.wait_for(1, "/later")
        await until(lambda: _all_delivered(admin, subscription["id"]))
        await until(lambda: _cleared(admin))
