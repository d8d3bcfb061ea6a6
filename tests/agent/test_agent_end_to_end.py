"""The agent on real signals against a real Vigil: NICs in a namespace the test makes,
a real process, heartbeats over loopback UDP, events over HTTP.

Aggregation (Doctor's "more than two non-critical failures"): losing one of
two data-plane NICs raises only a ``host.degraded`` warning for admins; losing
the second, or a NIC and a checked process within the window, takes the host
down.
"""

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.nets import ip, veth
from vigil.agent.agent import Agent, AgentConfig
from vigil.api.auth import Principal, Role, TokenRegistry
from vigil.settings import load_settings, parse_host_port
from vigil.wiring import BackgroundServer, create_server_app

EXAMPLE = Path(__file__).parents[2] / "examples" / "cloud.yaml"
TOKENS = {"admin-token": Principal("admin", Role.ADMIN), "monitor-token": Principal("monitoring", Role.MONITOR)}


async def until(check: Callable[[], Awaitable[Any]], what: str, within_s: float = 10.0) -> Any:
    deadline = time.monotonic() + within_s
    while not (found := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within_s} s for {what}")
        await asyncio.sleep(0.01)
    return found


@pytest.fixture
async def vigil(tmp_path: Path) -> AsyncIterator[tuple[str, httpx.AsyncClient, tuple[str, int]]]:
    settings = load_settings(None, data_dir=tmp_path, cloud={"topology": EXAMPLE}, monitor={"listen": "127.0.0.1:0"})
    async with (
        BackgroundServer(create_server_app(settings, TokenRegistry(TOKENS))) as server,
        httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": "admin-token"}, timeout=10) as admin,
    ):
        listen = (await admin.get("/v1/monitor/hosts")).json()["monitor"]["listen"]
        yield server.url, admin, parse_host_port(listen)


async def host_status(admin: httpx.AsyncClient, host: str) -> str:
    return str((await admin.get(f"/v1/hosts/{host}")).json()["host"]["status"])


async def alarms(admin: httpx.AsyncClient, kind: str) -> list[dict[str, Any]]:
    params = {"kind": kind, "state": "ACTIVE"}
    found: list[dict[str, Any]] = (await admin.get("/v1/alarms", params=params)).json()["alarms"]
    return found


async def events_of(admin: httpx.AsyncClient, count: int) -> list[dict[str, Any]] | None:
    """At least ``count`` fault events, each applied (not still ``accepted`` by the journal only)."""
    found: list[dict[str, Any]] = (await admin.get("/v1/fault-events")).json()["fault_events"]
    applied = len(found) >= count and all(e["outcome"] != "accepted" for e in found)
    return found if applied else None


async def test_one_nic_down_warns_the_second_takes_the_host_down(
    netns: Callable[[], str], vigil: tuple[str, httpx.AsyncClient, tuple[str, int]]
) -> None:
    url, admin, heartbeat = vigil
    ns = netns()
    veth(ns, "vgtest-dp0", "vgtest-sw0")
    veth(ns, "vgtest-dp1", "vgtest-sw1")
    config = AgentConfig(
        host="compute-1",
        vigil_url=url,
        token="monitor-token",
        heartbeat=heartbeat,
        nics=("vgtest-dp0", "vgtest-dp1"),
        netns=ns,
    )
    async with Agent(config) as agent:
        initial = await until(lambda: events_of(admin, 2), "the NICs' initial state")
        assert {(e["type"], e["outcome"]) for e in initial} == {("network.link.up", "recovered")}
        await until(lambda: _monitored_up(admin, "compute-1"), "heartbeats of compute-1")

        ip("-n", ns, "link", "set", "vgtest-sw0", "down")
        [degraded] = await until(lambda: alarms(admin, "host.degraded"), "a host.degraded warning")
        assert (degraded["severity"], degraded["resource_id"]) == ("WARNING", "compute-1")
        assert "network.link/vgtest-dp0" in degraded["reason"]
        assert await host_status(admin, "compute-1") == "UP"

        ip("-n", ns, "link", "set", "vgtest-dp1", "down")
        await until(lambda: _status_is(admin, "compute-1", "DOWN"), "compute-1 down by aggregation")
        [fault] = (await admin.get("/v1/faults")).json()["faults"]
        assert (fault["type"], fault["resource_id"]) == ("aggregated", "compute-1")
        assert await alarms(admin, "host.degraded") == []  # replaced by the host.down alarm

        ip("-n", ns, "link", "set", "vgtest-sw0", "up")
        await until(lambda: _status_is(admin, "compute-1", "UP"), "compute-1 back with one NIC")
        assert agent.reporter.counters.refused == 0


async def test_a_nic_and_a_failed_process_together_take_the_host_down(
    netns: Callable[[], str],
    vigil: tuple[str, httpx.AsyncClient, tuple[str, int]],
    service: tuple[str, "subprocess.Popen[bytes]"],
) -> None:
    url, admin, heartbeat = vigil
    name, proc = service
    ns = netns()
    veth(ns, "vgtest-dp0", "vgtest-sw0")
    config = AgentConfig(
        host="compute-2",
        vigil_url=url,
        token="monitor-token",
        heartbeat=heartbeat,
        nics=("vgtest-dp0",),
        processes=(name,),
        check_interval_s=0.05,
        netns=ns,
    )
    async with Agent(config):
        await until(lambda: events_of(admin, 2), "the initial state")
        proc.kill()
        [degraded] = await until(lambda: alarms(admin, "host.degraded"), "a warning for the process")
        assert f"compute.process/{name}" in degraded["reason"]
        ip("-n", ns, "link", "set", "vgtest-sw0", "down")
        await until(lambda: _status_is(admin, "compute-2", "DOWN"), "compute-2 down")


async def _status_is(admin: httpx.AsyncClient, host: str, status: str) -> bool:
    return await host_status(admin, host) == status


async def _monitored_up(admin: httpx.AsyncClient, host: str) -> bool:
    return bool((await admin.get(f"/v1/monitor/hosts/{host}")).json()["host"]["state"] == "UP")


async def test_an_instances_workload_that_dies_is_reported_and_fails_that_instance_alone(
    vigil: tuple[str, httpx.AsyncClient, tuple[str, int]], tmp_path: Path
) -> None:
    """``--instances-dir``: a pid file per instance; its process dying is ``compute.instance.down`` for it."""
    url, admin, _ = vigil
    instances = tmp_path / "instances"
    instances.mkdir()
    workload = subprocess.Popen(["sleep", "60"])  # noqa: ASYNC220 (started once, not awaited)
    other = subprocess.Popen(["sleep", "60"])  # noqa: ASYNC220
    try:
        (instances / "vnf-a-app-act.pid").write_text(f"{workload.pid}\n")
        (instances / "vnf-a-app-stby.pid").write_text(f"{other.pid}\n")
        config = AgentConfig(
            host="compute-1",
            vigil_url=url,
            token="monitor-token",
            heartbeat=None,
            instances_dir=instances,
            check_interval_s=0.05,
        )
        async with Agent(config):
            await until(lambda: events_of(admin, 2), "the instances' initial state")
            workload.kill()
            workload.wait()

            async def act_in_error() -> bool:
                inst = (await admin.get("/v1/instances/vnf-a-app-act")).json()["instance"]
                return bool(inst["state"] == "ERROR")

            await until(act_in_error, "vnf-a-app-act in ERROR")
            stby = (await admin.get("/v1/instances/vnf-a-app-stby")).json()["instance"]
            faults = (await admin.get("/v1/faults")).json()["faults"]
            (instances / "vnf-a-app-stby.pid").unlink()  # removed: it stopped cleanly or moved, no report
            revived = subprocess.Popen(["sleep", "60"])  # noqa: ASYNC220
            (instances / "act.tmp").write_text(f"{revived.pid}\n")  # replaced whole, as a pid file is written
            (instances / "act.tmp").replace(instances / "vnf-a-app-act.pid")
            try:

                async def cleared() -> bool:
                    found = (await admin.get("/v1/faults")).json()["faults"]
                    return all(f["state"] == "CLEARED" for f in found)

                await until(cleared, "the instance's fault cleared")
                # Read while the revived workload runs: the agent reports its death too once it is killed (seen
                # once in a fresh-clone CI under load: a fifth event, the revived one's down).
                reported = (await admin.get("/v1/fault-events")).json()["fault_events"]
            finally:
                revived.kill()
                revived.wait()
    finally:
        for proc in (workload, other):
            proc.kill()
            proc.wait()

    assert stby["state"] == "ACTIVE"
    assert [(f["resource_type"], f["resource_id"]) for f in faults] == [("instance", "vnf-a-app-act")]
    assert sorted(e["type"] for e in reported) == sorted(
        ["compute.instance.up", "compute.instance.up", "compute.instance.down", "compute.instance.up"]
    )
