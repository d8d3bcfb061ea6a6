"""``vigil agent`` as a real process, heartbeating to a real Vigil on loopback:
frozen with SIGSTOP its host goes down, thawed it comes back after the hold-down,
SIGTERM stops it cleanly."""

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from vigil.api.auth import Principal, Role, TokenRegistry
from vigil.settings import load_settings
from vigil.wiring import BackgroundServer, create_server_app

EXAMPLE = Path(__file__).parents[2] / "examples" / "cloud.yaml"
TOKENS = {"admin-token": Principal("admin", Role.ADMIN)}


async def until(check: Callable[[], Awaitable[Any]], what: str, within_s: float = 15.0) -> Any:
    deadline = time.monotonic() + within_s
    while not (found := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within_s} s for {what}")
        await asyncio.sleep(0.02)
    return found


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(
        None, data_dir=tmp_path, cloud={"topology": EXAMPLE}, monitor={"listen": "127.0.0.1:0", "hold_down_s": 0.2}
    )
    async with (
        BackgroundServer(create_server_app(settings, TokenRegistry(TOKENS))) as server,
        httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": "admin-token"}, timeout=10) as client,
    ):
        yield client


async def state(admin: httpx.AsyncClient, host: str) -> str:
    return str((await admin.get(f"/v1/monitor/hosts/{host}")).json()["host"]["state"])


async def test_a_frozen_agent_takes_its_host_down_and_a_thawed_one_brings_it_back(
    admin: httpx.AsyncClient,
) -> None:
    listen = (await admin.get("/v1/monitor/hosts")).json()["monitor"]["listen"]
    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vigil", "agent", "--host", "compute-3", "--heartbeat", listen, "--interval-ms", "20",
        "--realtime", "--realtime-priority", "12", stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await until(lambda: _is(admin, "compute-3", "UP"), "the agent's heartbeats")
        if os.geteuid() == 0:
            # Taken before the first heartbeat (at start-up's end): a host seen UP is on real-time priority.
            assert os.sched_getscheduler(agent.pid) == os.SCHED_FIFO
            assert os.sched_getparam(agent.pid).sched_priority == 12
        agent.send_signal(signal.SIGSTOP)
        await until(lambda: _is(admin, "compute-3", "DOWN"), "compute-3 down")
        host = (await admin.get("/v1/hosts/compute-3")).json()["host"]
        assert host["status"] == "DOWN"
        agent.send_signal(signal.SIGCONT)
        await until(lambda: _is(admin, "compute-3", "UP"), "compute-3 back after the hold-down")
        monitored = (await admin.get("/v1/monitor/hosts/compute-3")).json()["host"]
        assert monitored["lost"] > 0  # the beats it did not send while frozen
        agent.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            _, stderr = await agent.communicate()
        assert agent.returncode == 0, stderr.decode()
    finally:
        if agent.returncode is None:
            agent.kill()
            await agent.wait()


async def test_a_bad_heartbeat_address_is_a_usage_error() -> None:
    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vigil", "agent", "--host", "compute-1", "--heartbeat", "nowhere",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(30):
        _, stderr = await agent.communicate()
    assert agent.returncode == 2
    assert "HOST:PORT" in stderr.decode()


async def _is(admin: httpx.AsyncClient, host: str, wanted: str) -> bool:
    return await state(admin, host) == wanted
