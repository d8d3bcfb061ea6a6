"""Nova's API down during a host failure, on the real stack: the consumer is told at once, admins get
``vim.unreachable``, and when Nova's API returns the fault actions land and the alarm is cleared.

A real ``vigil serve`` with the OpenStack driver, a consumer subscribed for
the servers' project and an admin subscribed for everything. nova-api's
process group is killed (SIGKILL: its port refuses connections) before the
host failure is reported; ``vigil testbed openstack up`` starts it again, as
an operator would. Whatever happens, the test leaves nova-api running, the
host forced up and its servers deleted.
"""

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openstack_support import Scene, Stack, api, scene, vigil, wait_active, wait_for
from support import Receiver

from vigil.demo_openstack import vim_settings
from vigil.harness.server import ServeProcess
from vigil.serving import BackgroundServer
from vigil.testbed.openstack.layout import PORTS

pytestmark = [pytest.mark.openstack, pytest.mark.timeout(300)]

HOST = "compute-2"
ADMIN, MONITOR, TENANT = "vim-admin", "vim-monitor", "vim-tenant"


@pytest.fixture
def vim_scene(openstack_stack: Stack) -> Iterator[Scene]:
    """Two servers with ports on compute-2; afterwards nova-api running and all undone."""
    with scene(openstack_stack, "vim", "10.96.0.0/24") as made:
        try:
            for name in ("a", "b"):
                made.boot(f"vim-{name}", HOST)
            for ident in made.servers:
                wait_active(made.nova, ident)
            yield made
        finally:
            nova_api_running(openstack_stack)  # before the scene is undone through it


def refuses(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) != 0


def kill_nova_api(stack: Stack) -> None:
    """SIGKILL nova-api's process group (gunicorn's master and worker): its port refuses connections."""
    pid = int((stack.base / "pids" / "nova-api.pid").read_text().split()[0])
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: refuses(PORTS["nova-api"]), "nova-api's port to refuse connections")


def nova_api_running(stack: Stack) -> None:
    """``vigil testbed openstack up`` starts what is not running (nothing, on a healthy stack)."""
    done = vigil("testbed", "openstack", "up", "--computes", "3", "--base-dir", str(stack.base), "--json")
    assert done.returncode == 0, f"up failed:\n{done.stdout}\n{done.stderr}"


def nova_shows_fault(nova: httpx.Client, neutron: httpx.Client, servers: list[str]) -> bool:
    shown = [nova.get(f"/servers/{i}", headers=api("2.16")).json()["server"] for i in servers]
    ports = [p for i in servers for p in neutron.get("/v2.0/ports", params={"device_id": i}).json()["ports"]]
    return all(s["host_status"] == "DOWN" and s["status"] == "ERROR" for s in shown) and all(
        p["data_plane_status"] == "DOWN" for p in ports
    )


def traits(notification: dict[str, Any]) -> dict[str, Any]:
    return {t[0]: t[2] for t in notification["body"]["reason_data"]["event"]["traits"]}


async def vim_alarms(client: httpx.AsyncClient, state: str) -> list[dict[str, Any]]:
    answer = await client.get("/v1/alarms", params={"kind": "vim.unreachable", "state": state})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["alarms"])


async def until_alarms(client: httpx.AsyncClient, state: str, what: str, timeout_s: float = 120.0) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while not (found := await vim_alarms(client, state)):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)
    return found


async def until_heard(consumer: Receiver, lifecycle: str, timeout_s: float = 30.0) -> None:
    """Until the admin subscription heard ``vim.unreachable`` ``lifecycle`` (raised, cleared)."""
    deadline = time.monotonic() + timeout_s
    while True:
        heard = [traits(n) for n in consumer.delivered("/admin")]
        if any(t["vigil_alarm_kind"] == "vim.unreachable" and t["lifecycle"] == lifecycle for t in heard):
            return
        assert time.monotonic() < deadline, f"admins were not told vim.unreachable {lifecycle}"
        await asyncio.sleep(0.05)


async def test_nova_api_down_during_a_host_failure_raises_vim_unreachable_and_the_actions_land_when_it_returns(
    openstack_stack: Stack, vim_scene: Scene, tmp_path: Path
) -> None:
    nova, neutron, servers = vim_scene.nova, vim_scene.neutron, vim_scene.servers
    project = nova.get(f"/servers/{servers[0]}").json()["server"]["tenant_id"]
    tokens = {
        ADMIN: {"project": "admin", "role": "admin"},
        MONITOR: {"project": "monitoring", "role": "monitor"},
        TENANT: {"project": project, "role": "member"},
    }
    settings = {
        "vim": vim_settings(openstack_stack.credentials),
        "inspector": {"hold_down_s": 0},
        "notifier": {"allowed_callback_networks": ["127.0.0.0/8"]},
    }
    vigil_serve = ServeProcess(tmp_path / "vigil", tokens, settings=settings)
    consumer = Receiver()
    async with BackgroundServer(consumer.app) as hooks:
        consumer.url = hooks.url
        await vigil_serve.start()
        try:
            async with (
                httpx.AsyncClient(base_url=vigil_serve.url, headers={"X-Auth-Token": ADMIN}, timeout=30) as admin,
                httpx.AsyncClient(base_url=vigil_serve.url, headers={"X-Auth-Token": TENANT}, timeout=30) as tenant,
                httpx.AsyncClient(base_url=vigil_serve.url, headers={"X-Auth-Token": MONITOR}, timeout=30) as monitor,
            ):
                for client, path in ((tenant, "/tenant"), (admin, "/admin")):
                    made = await client.post("/v1/subscriptions", json={"callbacks": [f"{consumer.url}{path}"]})
                    assert made.status_code == 201, made.text
                await asyncio.to_thread(kill_nova_api, openstack_stack)

                failure = {
                    "time": "2026-12-08T00:00:00Z",
                    "type": "compute.host.down",
                    "details": {"hostname": HOST, "status": "down", "monitor": "vim-test", "monitor_event_id": "v-1"},
                }
                answered = await monitor.post("/v1/event", json=failure)
                assert answered.status_code == 200, answered.text
                told = await consumer.wait_for(1, "/tenant")  # Nova away changes nothing for the consumer
                assert traits(told[0])["vigil_alarm_kind"] == "instance.down"
                assert set(servers) <= {i.strip() for i in traits(told[0])["instance_ids"].split(",")}

                (alarm,) = await until_alarms(admin, "ACTIVE", "vim.unreachable raised")
                assert (alarm["project"], alarm["resource_id"], alarm["details"]["service"]) == (
                    None,
                    "compute",
                    "compute",
                )
                await until_heard(consumer, "raised")

                await asyncio.to_thread(nova_api_running, openstack_stack)
                await asyncio.to_thread(
                    wait_for, lambda: nova_shows_fault(nova, neutron, servers), "the fault in Nova", 120
                )
                (cleared,) = await until_alarms(admin, "CLEARED", "vim.unreachable cleared")
                assert cleared["id"] == alarm["id"]
                await until_heard(consumer, "cleared")
        finally:
            with contextlib.suppress(Exception):
                await vigil_serve.stop()
