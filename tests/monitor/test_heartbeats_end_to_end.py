"""Heartbeats over real UDP on 127.0.0.1 to a real Vigil server: the agent's sender
falls silent, the monitor declares the host down through the inspector (in process),
and the host comes back after the hold-down. The monitor's API shows it all."""

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from vigil.agent.heartbeat import HeartbeatSender
from vigil.api.auth import Principal, Role, TokenRegistry
from vigil.settings import load_settings, parse_host_port
from vigil.wiring import BackgroundServer, create_server_app

EXAMPLE = Path(__file__).parents[2] / "examples" / "cloud.yaml"
TOKENS = {"admin-token": Principal("admin", Role.ADMIN), "vnf-a-token": Principal("vnf-a", Role.MEMBER)}


async def until(check: Callable[[], Awaitable[Any]], what: str, within_s: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + within_s
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within_s} s for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def vigil(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, tuple[str, int]]]:
    settings = load_settings(
        None,
        data_dir=tmp_path,
        cloud={"topology": EXAMPLE},
        monitor={"listen": "127.0.0.1:0", "hold_down_s": 0.3},
    )
    async with (
        BackgroundServer(create_server_app(settings, TokenRegistry(TOKENS))) as server,
        httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": "admin-token"}, timeout=10) as admin,
    ):
        listen = (await admin.get("/v1/monitor/hosts")).json()["monitor"]["listen"]
        yield admin, parse_host_port(listen)


async def monitored(admin: httpx.AsyncClient, host: str) -> dict[str, Any]:
    response = await admin.get(f"/v1/monitor/hosts/{host}")
    assert response.status_code == 200, response.text
    return response.json()["host"]  # type: ignore[no-any-return]


async def test_a_silent_agent_takes_its_host_down_and_back_up_after_the_hold_down(
    vigil: tuple[httpx.AsyncClient, tuple[str, int]],
) -> None:
    admin, target = vigil
    sender = HeartbeatSender("compute-1", target, interval_ms=20, mult=3)
    await sender.start()
    try:
        up = await until(lambda: _state(admin, "compute-1", "UP", received=10), "heartbeats of compute-1 to be taken")
        assert (up["interval_ms"], up["detect_mult"], up["detect_ms"]) == (20, 3, 60)

        await sender.stop()  # the agent freezes
        down = await until(lambda: _state(admin, "compute-1", "DOWN"), "compute-1 to be declared down")
        transition = down["last_transition"]
        assert (transition["old"], transition["new"]) == ("UP", "DOWN")
        host = (await admin.get("/v1/hosts/compute-1")).json()["host"]
        assert (host["status"], host["forced_down"]) == ("DOWN", True)
        [fault] = (await admin.get("/v1/faults", params={"state": "ACTIVE"})).json()["faults"]
        assert fault["resource_id"] == "compute-1"
        profile = (await admin.get(f"/v1/faults/{fault['id']}/profile")).json()
        detected = _unix(transition["at"])
        assert profile["checkpoints"]["T01"] == pytest.approx(detected, abs=1e-3)  # T01 is the deadline
        [event] = (await admin.get("/v1/fault-events")).json()["fault_events"]
        assert (event["type"], event["monitor"]) == ("compute.host.down", "vigil-heartbeat")
        assert event["outcome"] == "fault_opened"

        await sender.start()  # it thaws: back only after the hold-down
        back = await until(lambda: _state(admin, "compute-1", "UP"), "compute-1 to come back")
        assert back["last_transition"]["old"] == "DOWN"
        assert "hold-down" in back["last_transition"]["reason"]
        assert _unix(back["last_transition"]["at"]) - detected >= 0.3
        host = (await admin.get("/v1/hosts/compute-1")).json()["host"]
        assert (host["status"], host["forced_down"]) == ("UP", False)
        faults = (await admin.get("/v1/faults")).json()["faults"]
        assert [f["state"] for f in faults] == ["CLEARED"]
    finally:
        await sender.aclose()


async def test_the_monitor_lists_hosts_counts_bad_datagrams_and_unknown_hosts(
    vigil: tuple[httpx.AsyncClient, tuple[str, int]],
) -> None:
    admin, target = vigil
    senders = [HeartbeatSender(h, target) for h in ("compute-2", "compute-3", "no-such-host")]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        raw.sendto(b"not a heartbeat", target)
    for sender in senders:
        await sender.start()
    try:
        listing = await until(lambda: _listing(admin, 2), "two hosts to be monitored")
        assert [h["name"] for h in listing["hosts"]] == ["compute-2", "compute-3"]
        summary = listing["monitor"]
        assert summary["enabled"] is True
        assert summary["bad"] == 1
        assert summary["unknown_hosts"] == ["no-such-host"]
        assert summary["datagrams"] >= 3
    finally:
        for sender in senders:
            await sender.aclose()
    never = await monitored(admin, "compute-5")
    assert (never["state"], never["received"], never["last_seen"]) == ("INIT", 0, None)
    assert (await admin.get("/v1/monitor/hosts/no-such-host")).status_code == 404


async def test_the_monitor_api_is_for_admins(vigil: tuple[httpx.AsyncClient, tuple[str, int]]) -> None:
    admin, _ = vigil
    member = (await admin.get("/v1/monitor/hosts", headers={"X-Auth-Token": "vnf-a-token"})).status_code
    nobody = (await admin.get("/v1/monitor/hosts", headers={"X-Auth-Token": ""})).status_code
    assert (member, nobody) == (403, 401)


async def _state(admin: httpx.AsyncClient, host: str, state: str, received: int = 0) -> dict[str, Any] | None:
    found = await monitored(admin, host)
    return found if found["state"] == state and found["received"] >= received else None


async def _listing(admin: httpx.AsyncClient, hosts: int) -> dict[str, Any] | None:
    listing: dict[str, Any] = (await admin.get("/v1/monitor/hosts")).json()
    return listing if len(listing["hosts"]) >= hosts and listing["monitor"]["unknown_host"] > 0 else None


def _unix(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


async def serving(settings: Any) -> tuple[BackgroundServer, httpx.AsyncClient, tuple[str, int]]:
    """A Vigil on ``settings`` (started again on the same store after a stop), its admin client, its monitor's
    address."""
    server = BackgroundServer(create_server_app(settings, TokenRegistry(TOKENS)))
    await server.start()
    admin = httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": "admin-token"}, timeout=10)
    listen = (await admin.get("/v1/monitor/hosts")).json()["monitor"]["listen"]
    return server, admin, parse_host_port(listen)


async def test_a_host_the_monitor_took_down_before_a_restart_comes_back_through_the_hold_down(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        None, data_dir=tmp_path, cloud={"topology": EXAMPLE}, monitor={"listen": "127.0.0.1:0", "hold_down_s": 0.2}
    )

    server, admin, target = await serving(settings)
    sender = HeartbeatSender("compute-4", target)
    try:
        await sender.start()
        await until(lambda: _state(admin, "compute-4", "UP"), "compute-4 up")
        await sender.stop()
        await until(lambda: _state(admin, "compute-4", "DOWN"), "compute-4 down")
    finally:
        await sender.aclose()
        await admin.aclose()
        await server.stop()

    server, admin, target = await serving(settings)
    sender = HeartbeatSender("compute-4", target)
    try:
        assumed = await monitored(admin, "compute-4")
        assert (assumed["state"], assumed["received"]) == ("DOWN", 0)
        await sender.start()
        back = await until(lambda: _state(admin, "compute-4", "UP"), "compute-4 back after the hold-down")
        assert "hold-down" in back["last_transition"]["reason"]
        host = (await admin.get("/v1/hosts/compute-4")).json()["host"]
        assert host["status"] == "UP"
    finally:
        await sender.aclose()
        await admin.aclose()
        await server.stop()


async def test_heartbeats_go_to_every_address_given(vigil: tuple[httpx.AsyncClient, tuple[str, int]]) -> None:
    """High availability: an agent beats to every Vigil (a standby's monitor is warm when it takes over)."""
    admin, target = vigil
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.bind(("127.0.0.1", 0))
        other.setblocking(False)
        sender = HeartbeatSender("compute-1", [other.getsockname(), target], interval_ms=20, mult=3)
        await sender.start()
        try:
            await until(lambda: _state(admin, "compute-1", "UP", received=5), "heartbeats of compute-1 to be taken")
            beats = 0
            with contextlib.suppress(BlockingIOError):
                while other.recv(2048):
                    beats += 1
        finally:
            await sender.aclose()

    assert beats >= 5


async def test_a_host_that_dies_while_vigil_is_down_is_declared_lost_after_the_restart(tmp_path: Path) -> None:
    """A host the monitor watched before a restart (or a takeover) is expected to beat again: one that fell silent
    while Vigil was down is declared lost once the restart's grace has passed, while one that beats on stays UP and
    a host that never ran an agent is never declared lost."""
    settings = load_settings(
        None,
        data_dir=tmp_path,
        cloud={"topology": EXAMPLE},
        monitor={"listen": "127.0.0.1:0", "hold_down_s": 0.2, "restart_grace_s": 0.5},
    )

    server, admin, target = await serving(settings)
    dies, lives = HeartbeatSender("compute-1", target), HeartbeatSender("compute-2", target)
    try:
        for sender in (dies, lives):
            await sender.start()
        await until(lambda: _state(admin, "compute-1", "UP"), "compute-1 up")
        await until(lambda: _state(admin, "compute-2", "UP"), "compute-2 up")
    finally:
        await admin.aclose()
        await server.stop()  # Vigil stops; then compute-1 dies, and compute-2 beats on to the next listener
        await dies.aclose()
        await lives.aclose()

    server, admin, target = await serving(settings)
    lives = HeartbeatSender("compute-2", target)
    try:
        await lives.start()
        down = await until(lambda: _state(admin, "compute-1", "DOWN"), "compute-1 declared lost after the restart")
        host = (await admin.get("/v1/hosts/compute-1")).json()["host"]
        alive = await monitored(admin, "compute-2")
        never = (await admin.get("/v1/hosts/compute-3")).json()["host"]
    finally:
        await lives.aclose()
        await admin.aclose()
        await server.stop()

    assert "no heartbeat" in down["last_transition"]["reason"]
    assert (host["status"], host["forced_down"]) == ("DOWN", True)
    assert alive["state"] == "UP"
    assert never["status"] == "UP", "a host without an agent is not expected to beat"
