"""A fault's calls reach Nova together, ahead of what its notification makes consumers ask.

Nova serves its API with a few threads and queues the rest in arrival
order. Doctor's consumer (and Tacker) query Nova as soon as they are
notified, and those queries are heavy (a ``/servers/detail`` of 50 servers
took 443 ms here). Calls the pusher keeps back behind its own bound arrive
after them and wait for them: on the real stack, 32 in flight put 50
servers in ERROR about 2 s later than all 51 calls sent at once (see the
README's numbers). So the default bound lets a 50-server host's calls all go
at once, and the HTTP pool is no narrower than the bound (httpx's default
pool would cap it at 100 connections).

A stand-in Nova (``openstack_standin``) holds the calls unanswered and
counts how many it holds at once.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from vigil.api.auth import Principal, Role, TokenRegistry
from vigil.domain.events import EventAction, ResourceEvent
from vigil.domain.model import ResourceType
from vigil.serving import BackgroundServer
from vigil.settings import load_settings
from vigil.vim.openstack.push import FaultPusher
from vigil.vim.openstack.session import OpenStackAuth, OpenStackSession
from vigil.wiring import create_server_app
from vim.openstack_standin import OpenStackStandIn


@pytest.fixture
async def standin() -> AsyncIterator[OpenStackStandIn]:
    cloud = OpenStackStandIn()
    await cloud.start()
    try:
        yield cloud
    finally:
        if cloud.hold is not None:
            cloud.hold.set()
        await cloud.stop()


async def until_held(standin: OpenStackStandIn, count: int, within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while standin.in_flight < count:
        assert time.monotonic() < deadline, f"Nova held {standin.in_flight} calls at most, not {count}"
        await asyncio.sleep(0.01)


async def test_a_failed_host_with_50_servers_sends_nova_all_its_calls_at_once_by_default(
    standin: OpenStackStandIn, tmp_path: Path
) -> None:
    for n in range(50):
        standin.add_server(f"s-{n:02d}", "compute-1")
    settings = load_settings(None, data_dir=tmp_path, inspector={"hold_down_s": 0}, vim=standin.vim_settings())
    tokens = TokenRegistry({"monitor": Principal("monitoring", Role.MONITOR)})
    async with (
        BackgroundServer(create_server_app(settings, tokens)) as server,
        httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": "monitor"}) as monitor,
    ):
        standin.hold = asyncio.Event()
        details = {"hostname": "compute-1", "status": "down", "monitor": "m", "monitor_event_id": "e-1"}
        event = {"time": datetime.now(UTC).isoformat(), "type": "compute.host.down", "details": details}
        assert (await monitor.post("/v1/event", json=event)).status_code == 200
        await until_held(standin, 51)  # the service's forced_down and 50 resets, none answered yet
        standin.hold.set()
        deadline = time.monotonic() + 20
        while not standin.shows_fault("compute-1"):
            assert time.monotonic() < deadline, "the actions did not land"
            await asyncio.sleep(0.02)


async def test_the_http_pool_is_no_narrower_than_the_pushers_bound(standin: OpenStackStandIn) -> None:
    for n in range(150):
        standin.add_server(f"s-{n:03d}", "compute-1")
    o = standin.vim_settings()["openstack"]
    auth = OpenStackAuth(
        o["auth_url"], username="admin", password="x", project_name="admin", endpoint_overrides=o["endpoint_overrides"]
    )
    async with OpenStackSession(auth) as session:
        pusher = FaultPusher(session, concurrency=128)
        resets = [
            ResourceEvent(
                1, datetime.now(UTC), ResourceType.INSTANCE, ident, EventAction.UPDATED,
                {"state": ("ACTIVE", "ERROR")}, reason="fault event",
            )
            for ident in standin.servers
        ]  # fmt: skip
        standin.hold = asyncio.Event()
        pushing = asyncio.create_task(pusher.push(pusher.pushes_for(resets)), name="test.push")
        try:
            await until_held(standin, 128)
            await asyncio.sleep(0.1)
            assert standin.most_in_flight == 128  # the bound, not the pool, decides
            standin.hold.set()
            await asyncio.wait_for(pushing, 20)
        finally:
            pushing.cancel()
    assert all(s["status"] == "ERROR" for s in standin.servers.values())
