"""Vigil's map follows what is done through Nova, not through Vigil: by notifications, and by reconciliation.

A real ``vigil serve`` with the OpenStack driver consumes Nova's versioned
notifications from the stack's RabbitMQ. Servers are booted, live-migrated,
cold-migrated (resize and confirm), evacuated and deleted through Nova's
API, and a compute service is disabled and forced down; each change must
show in Vigil's API. The reconciliation interval is an hour there, so
only notifications can have done it; the lag from Nova's answer to Vigil's
map is measured and printed (``-s`` shows it), not asserted: this machine is
shared. A second server has no notifications at all, and its
reconciliation finds and applies the drift.
"""

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openstack_support import Scene, Stack, api, restart_forced_down_compute, scene, wait_active, wait_for

from vigil.demo_openstack import vim_settings
from vigil.harness.server import ServeProcess

pytestmark = [pytest.mark.openstack, pytest.mark.timeout(600)]

ADMIN = "follow-admin"
TOKENS = {ADMIN: {"project": "admin", "role": "admin"}}


@pytest.fixture
def nova_world(openstack_stack: Stack) -> Iterator[Scene]:
    """Nova and Neutron clients, a flavor and a network; everything made here is removed afterwards."""
    with scene(openstack_stack, "follow", "10.96.0.0/24", vcpus=2) as made:
        yield made


def service_id(nova: httpx.Client, host: str) -> str:
    found = nova.get("/os-services", params={"binary": "nova-compute", "host": host}, headers=api("2.53"))
    return str(found.json()["services"][0]["id"])


def nova_host(nova: httpx.Client, ident: str) -> str:
    return str(nova.get(f"/servers/{ident}").json()["server"]["OS-EXT-SRV-ATTR:host"])


class Vigil:
    """Vigil's API as an admin, polled for a condition; the lags measured on the way."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, headers={"X-Auth-Token": ADMIN}, timeout=30)
        self.lags: dict[str, float] = {}

    def __enter__(self) -> "Vigil":
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def instance(self, ident: str) -> dict[str, Any] | None:
        answer = self.client.get(f"/v1/instances/{ident}")
        if answer.status_code == 404:
            return None
        assert answer.status_code == 200, answer.text
        shown: dict[str, Any] = answer.json()["instance"]
        return shown

    def host(self, name: str) -> dict[str, Any]:
        answer = self.client.get(f"/v1/hosts/{name}")
        assert answer.status_code == 200, answer.text
        shown: dict[str, Any] = answer.json()["host"]
        return shown

    def follows(self, what: str, since: float, check: Callable[[], Any], timeout_s: float = 60.0) -> None:
        """Wait until Vigil's API shows ``check``; record the time since ``since`` (Nova's answer)."""
        deadline = time.monotonic() + timeout_s
        while not check():
            assert time.monotonic() < deadline, f"Vigil's map never showed: {what}"
            time.sleep(0.01)
        self.lags[what] = (time.monotonic() - since) * 1000


def test_operations_done_through_nova_show_in_vigils_map(
    openstack_stack: Stack, nova_world: Scene, tmp_path: Path
) -> None:
    nova = nova_world.nova
    settings = {"vim": vim_settings(openstack_stack.credentials)}
    settings["vim"]["openstack"]["reconcile_interval_s"] = 3600  # only notifications can make the map follow
    server = ServeProcess(tmp_path / "vigil", TOKENS, settings=settings)

    async def scenario() -> dict[str, float]:
        await server.start()
        try:
            return await asyncio.to_thread(operate, server.url)
        finally:
            await server.stop()

    def operate(url: str) -> dict[str, float]:
        with Vigil(url) as vigil:
            return follow(vigil)

    def follow(vigil: Vigil) -> dict[str, float]:
        ident = nova_world.boot("follow-a", "compute-1", role="follow-a")
        # Evacuated later from compute-3 to a host it never ran on: Nova's fake driver keeps a record of every
        # server a host ever ran and fails a rebuild there with InstanceExists (seen when Nova picked one).
        fresh = nova_world.boot("follow-b", "compute-3", role="follow-b")
        wait_active(nova, ident)
        wait_active(nova, fresh)
        since = time.monotonic()
        vigil.follows(
            "boot",
            since,
            lambda: (i := vigil.instance(ident)) is not None and (i["host"], i["state"]) == ("compute-1", "ACTIVE"),
        )
        shown = vigil.instance(ident)
        assert shown is not None
        assert (shown["vcpus"], shown["metadata"]) == (2, {"role": "follow-a"})
        ports = vigil.client.get("/v1/ports", params={"instance": ident}).json()["ports"]
        neutron_ports = nova_world.neutron.get("/v2.0/ports", params={"device_id": ident}).json()["ports"]
        assert {p["id"] for p in ports} == {p["id"] for p in neutron_ports} != set()

        moved = nova.post(
            f"/servers/{ident}/action",
            json={"os-migrateLive": {"host": "compute-2", "block_migration": "auto"}},
            headers=api("2.30"),
        )
        assert moved.status_code == 202, moved.text
        wait_for(lambda: nova_host(nova, ident) == "compute-2", "live migration in Nova")
        wait_active(nova, ident)
        vigil.follows("live migration", time.monotonic(), lambda: _at(vigil, ident, "compute-2", "ACTIVE"))

        resized = nova.post(f"/servers/{ident}/action", json={"migrate": {"host": "compute-3"}}, headers=api("2.56"))
        assert resized.status_code == 202, resized.text
        wait_for(lambda: nova.get(f"/servers/{ident}").json()["server"]["status"] == "VERIFY_RESIZE", "VERIFY_RESIZE")
        vigil.follows("cold migration", time.monotonic(), lambda: _at(vigil, ident, "compute-3", "MIGRATING"))
        confirmed = nova.post(f"/servers/{ident}/action", json={"confirmResize": None})
        assert confirmed.status_code == 204, confirmed.text
        wait_active(nova, ident)
        vigil.follows("confirm", time.monotonic(), lambda: _at(vigil, ident, "compute-3", "ACTIVE"))

        service = service_id(nova, "compute-3")
        disabled = nova.put(
            f"/os-services/{service}",
            json={"status": "disabled", "disabled_reason": "follow test"},
            headers=api("2.53"),
        )
        assert disabled.status_code == 200, disabled.text
        vigil.follows(
            "service disabled",
            time.monotonic(),
            lambda: (
                (h := vigil.host("compute-3"))["admin_state"] == "disabled" and h["disabled_reason"] == "follow test"
            ),
        )
        forced = nova.put(f"/os-services/{service}", json={"forced_down": True}, headers=api("2.53"))
        assert forced.status_code == 200, forced.text
        vigil.follows("service forced down", time.monotonic(), lambda: vigil.host("compute-3")["forced_down"])

        evacuated = nova.post(f"/servers/{fresh}/action", json={"evacuate": {}}, headers=api("2.68"))
        assert evacuated.status_code == 200, evacuated.text
        wait_for(lambda: nova_host(nova, fresh) != "compute-3", "evacuation in Nova")
        wait_active(nova, fresh)
        rebuilt_on = nova_host(nova, fresh)
        vigil.follows("evacuation", time.monotonic(), lambda: _at(vigil, fresh, rebuilt_on, "ACTIVE"))
        ports = vigil.client.get("/v1/ports", params={"instance": fresh}).json()["ports"]
        assert {p["host"] for p in ports} == {rebuilt_on}

        restart_forced_down_compute(openstack_stack, nova, "compute-3")  # Nova keeps it down until then
        enabled = nova.put(f"/os-services/{service}", json={"status": "enabled"}, headers=api("2.53"))
        assert enabled.status_code == 200, enabled.text
        vigil.follows(
            "service enabled",
            time.monotonic(),
            lambda: (h := vigil.host("compute-3"))["admin_state"] == "enabled" and not h["forced_down"],
        )

        assert nova.delete(f"/servers/{ident}").status_code == 204
        wait_for(lambda: nova.get(f"/servers/{ident}").status_code == 404, "deleted in Nova")
        vigil.follows("delete", time.monotonic(), lambda: vigil.instance(ident) is None)
        assert vigil.client.get("/v1/ports", params={"instance": ident}).json()["ports"] == []
        shown = vigil.client.get("/v1/vim").json()  # what the operator reads of the following
        notifications, sync = shown["notifications"], shown["sync"]
        assert (shown["driver"], notifications["connected"]) == ("openstack", True), shown
        assert notifications["backlog_at_start"] is not None, shown
        assert notifications["received"] >= notifications["applied"] + notifications["ignored"] > 0, shown
        assert sync["applied"] >= 10, shown  # two boots, two moves, a confirm, four service changes, a delete
        assert sync["reconciliations"] == 1, shown  # the one at start: the interval is an hour
        return vigil.lags

    lags = asyncio.run(scenario())
    print("\nVigil's map behind Nova's API (ms):", {k: round(v, 1) for k, v in lags.items()})


def _at(vigil: Vigil, ident: str, host: str, state: str) -> bool:
    shown = vigil.instance(ident)
    return shown is not None and (shown["host"], shown["state"]) == (host, state)


def test_reconciliation_finds_what_no_notification_told(
    openstack_stack: Stack, nova_world: Scene, tmp_path: Path
) -> None:
    nova = nova_world.nova
    settings = {"vim": vim_settings(openstack_stack.credentials)}
    settings["vim"]["openstack"].pop("notifications_url", None)  # no notifications: only reconciliation
    settings["vim"]["openstack"]["reconcile_interval_s"] = 1
    server = ServeProcess(tmp_path / "vigil", TOKENS, settings=settings)

    async def scenario() -> None:
        await server.start()
        try:
            await asyncio.to_thread(operate, server.url)
        finally:
            await server.stop()

    def operate(url: str) -> None:
        with Vigil(url) as vigil:
            drift(vigil)

    def drift(vigil: Vigil) -> None:
        ident = nova_world.boot("drift-a", "compute-2", role="drift-a")
        wait_active(nova, ident)
        vigil.follows("drift: boot", time.monotonic(), lambda: _at(vigil, ident, "compute-2", "ACTIVE"))
        assert len(vigil.client.get("/v1/ports", params={"instance": ident}).json()["ports"]) == 1
        assert nova.delete(f"/servers/{ident}").status_code == 204
        wait_for(lambda: nova.get(f"/servers/{ident}").status_code == 404, "deleted in Nova")
        vigil.follows("drift: delete", time.monotonic(), lambda: vigil.instance(ident) is None)
        shown = vigil.client.get("/v1/vim").json()
        assert shown["notifications"] is None, shown  # no consumer: reconciliation alone followed Nova
        assert shown["sync"]["drift"] >= 2, shown  # the boot and the delete, each found by a reconciliation
        assert shown["sync"]["reconciliations"] >= 3, shown
        assert shown["sync"]["last_reconciled_at"] is not None, shown

    asyncio.run(scenario())
