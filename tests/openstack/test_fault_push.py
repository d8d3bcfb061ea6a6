"""Doctor's fault path on a real OpenStack: Vigil notifies, then Nova and Neutron show the fault.

With ``vim.driver: openstack`` a real ``vigil serve`` reads its first
inventory from Nova and Neutron; a host failure reported to it is acted on
in Vigil's own map and notified, and then pushed: Nova's compute service
forced down (``host_status`` DOWN on its servers), each server reset to
ERROR, each port's ``data_plane_status`` DOWN; a recovery forces the
service up again. A ``kill -9`` between the notification and the push (the
``before-vim-push`` crash point) loses nothing: the restarted server pushes
what its durable map holds.
"""

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openstack_support import Scene, Stack, api, scene, wait_active, wait_for

from vigil.demo_openstack import vim_settings
from vigil.harness.server import ServeProcess

pytestmark = pytest.mark.openstack

ADMIN, MONITOR = "push-admin", "push-monitor"


@pytest.fixture
def pushed_scene(openstack_stack: Stack) -> Iterator[Scene]:
    """Two servers with ports on compute-2 and one on compute-1; all undone afterwards."""
    with scene(openstack_stack, "push", "10.97.0.0/24") as made:
        for name, host in (("a", "compute-2"), ("b", "compute-2"), ("c", "compute-1")):
            made.boot(f"push-{name}", host)
        for ident in made.servers:
            wait_active(made.nova, ident)
        yield made


def report(host: str, status: str, ident: str) -> dict[str, Any]:
    return {
        "time": "2026-12-07T00:00:00Z",
        "type": f"compute.host.{status}",
        "details": {"hostname": host, "status": status, "monitor": "push-test", "monitor_event_id": ident},
    }


def nova_shows(nova: httpx.Client, neutron: httpx.Client, servers: list[str], *, down: bool) -> bool:
    shown = [nova.get(f"/servers/{i}", headers=api("2.16")).json()["server"] for i in servers]
    ports = [p for i in servers for p in neutron.get("/v2.0/ports", params={"device_id": i}).json()["ports"]]
    if down:
        return all(s["host_status"] == "DOWN" and s["status"] == "ERROR" for s in shown) and all(
            p["data_plane_status"] == "DOWN" for p in ports
        )
    return all(s["host_status"] == "UP" for s in shown)


async def post_event(url: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, headers={"X-Auth-Token": MONITOR}, timeout=30) as client:
        return await client.post("/v1/event", json=body)


def test_a_host_failure_reaches_nova_and_neutron_after_the_notification_even_across_a_kill(
    openstack_stack: Stack, pushed_scene: Scene, tmp_path: Path
) -> None:
    nova, neutron = pushed_scene.nova, pushed_scene.neutron
    on_2, on_1 = pushed_scene.servers[:2], pushed_scene.servers[2:]  # as booted: a and b on compute-2, c on compute-1
    tokens = {ADMIN: {"project": "admin", "role": "admin"}, MONITOR: {"project": "monitoring", "role": "monitor"}}
    settings = {"vim": vim_settings(openstack_stack.credentials), "inspector": {"hold_down_s": 0}}
    server = ServeProcess(tmp_path / "vigil", tokens, settings=settings)

    async def scenario() -> None:
        await server.start(crash_at="before-vim-push")
        try:
            async with httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": ADMIN}) as admin:
                inventory = (await admin.get("/v1/instances")).json()["instances"]
            assert set(pushed_scene.servers) <= {i["id"] for i in inventory}  # the map was read from Nova
            failure = report("compute-2", "down", "push-1")
            # The process dies at the point, as the report's effects are committed and published: the answer may
            # or may not have left before it.
            with contextlib.suppress(httpx.TransportError):
                await post_event(server.url, failure)
            await server.wait(30)
            assert server.killed_itself()  # at before-vim-push: Vigil knew and had notified; Nova did not yet
            assert nova_shows(nova, neutron, on_2, down=False)

            await server.start()  # no crash point: the pusher pushes what the durable map holds
            await asyncio.to_thread(
                wait_for, lambda: nova_shows(nova, neutron, on_2, down=True), "compute-2 DOWN in Nova"
            )
            again = await post_event(server.url, failure)  # the monitor sends again what got no answer
            assert again.json()["event"]["outcome"] == "duplicate"  # it was durable before the kill
            assert nova_shows(nova, neutron, on_1, down=False)

            answered = await post_event(server.url, report("compute-1", "down", "push-2"))  # pushed as it happens
            assert answered.status_code == 200, answered.text
            await asyncio.to_thread(
                wait_for, lambda: nova_shows(nova, neutron, on_1, down=True), "compute-1 DOWN in Nova"
            )

            for n, host in enumerate(("compute-1", "compute-2"), start=3):
                answered = await post_event(server.url, report(host, "up", f"push-{n}"))
                assert answered.status_code == 200, answered.text
            await asyncio.to_thread(
                wait_for, lambda: nova_shows(nova, neutron, on_1 + on_2, down=False), "both hosts UP in Nova again"
            )
        finally:
            await server.stop()

    asyncio.run(scenario())
