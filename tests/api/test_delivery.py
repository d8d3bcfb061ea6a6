"""Delivery: retries by the receiver's answer, the delivery log, and the outbox across a restart."""

import socket
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import httpx
from support import Receiver

from vigil.settings import Settings, load_settings
from vigil.wiring import BackgroundServer


def event(host: str, ident: str) -> dict[str, Any]:
    details = {"hostname": host, "status": "down", "monitor": "m", "monitor_event_id": ident}
    return {"time": datetime.now(UTC).isoformat(), "type": "compute.host.down", "details": details}


async def deliveries(admin: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    return (await admin.get("/v1/deliveries", params=params)).json()["deliveries"]  # type: ignore[no-any-return]


async def test_a_receiver_that_fails_then_recovers_gets_the_notification(
    admin: httpx.AsyncClient, vnf_a: httpx.AsyncClient, monitor: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503]
    body = {"callbacks": [f"{receiver.url}/flaky"], "filter": {"event_types": ["instance.down"]}}
    assert (await vnf_a.post("/v1/subscriptions", json=body)).status_code == 201
    await monitor.post("/v1/event", json=event("compute-1", "r1"))
    [note] = await receiver.wait_for(1, "/flaky")
    attempts = [r for r in receiver.received if r["path"] == "/flaky"]
    assert [r["status"] for r in attempts] == [500, 503, 200]
    ids = {r["headers"]["x-vigil-notification-id"] for r in attempts}
    assert len(ids) == 1  # the same notification each time
    await _settle(admin, 1)
    [logged] = await deliveries(admin)
    assert (logged["state"], logged["attempts"], logged["last_status"]) == ("DELIVERED", 3, 200)
    assert logged["notification"] == note["headers"]["x-vigil-notification-id"]


async def test_a_receiver_that_answers_404_fails_at_once(
    admin: httpx.AsyncClient, vnf_a: httpx.AsyncClient, monitor: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.statuses = [404]
    body = {"callbacks": [f"{receiver.url}/gone"], "filter": {"event_types": ["instance.down"]}}
    await vnf_a.post("/v1/subscriptions", json=body)
    await monitor.post("/v1/event", json=event("compute-1", "r2"))
    [logged] = await _settle(admin, 1)
    assert (logged["state"], logged["attempts"], logged["last_status"]) == ("FAILED", 1, 404)
    assert len(receiver.received) == 1
    assert await deliveries(admin, state="DELIVERED") == []


async def test_a_pending_delivery_survives_a_restart_and_is_delivered_after_it(
    settings: Settings, restart: Callable[[Settings], AbstractAsyncContextManager[Any]]
) -> None:
    patient = load_settings(
        None,
        data_dir=settings.data_dir,
        cloud={"topology": settings.cloud.topology},
        notifier={"retry_initial_s": 60, "retry_max_delay_s": 120, "retry_horizon_s": 30, "timeout_s": 1},
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here until after the restart
    async with restart(patient) as api, api.client("vnf-a-token") as vnf_a, api.client("monitor-token") as mon:
        body = {"callbacks": [f"http://127.0.0.1:{port}/later"], "filter": {"event_types": ["instance.down"]}}
        assert (await vnf_a.post("/v1/subscriptions", json=body)).status_code == 201
        assert (await mon.post("/v1/event", json=event("compute-1", "p1"))).status_code == 200
        async with api.client("admin-token") as admin:
            pending = await _until(admin, lambda ds: ds and ds[0]["attempts"] >= 1)
            assert pending[0]["state"] == "PENDING"
            notification = pending[0]["notification"]
            attempts_before = pending[0]["attempts"]

    hooks = Receiver()
    async with BackgroundServer(hooks.app, port=port), restart(patient) as api, api.client("admin-token") as admin:
        [note] = await hooks.wait_for(1, "/later")
        assert note["headers"]["x-vigil-notification-id"] == notification
        [logged] = await _until(admin, lambda ds: ds and ds[0]["state"] == "DELIVERED")
        assert logged["attempts"] > attempts_before


async def _until(admin: httpx.AsyncClient, done: Callable[[list[dict[str, Any]]], Any]) -> list[dict[str, Any]]:
    import asyncio

    for _ in range(500):
        found = await deliveries(admin)
        if done(found):
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"deliveries never settled: {found}")


async def _settle(admin: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    return await _until(admin, lambda ds: len(ds) == count and all(d["state"] != "PENDING" for d in ds))
