"""Fence first, then recover, across kill -9: ``vigil serve`` as a child process, killed at the named points of the
fencing and the recovery (``vigil.crashpoints``) or with SIGKILL while the agent waits for a BMC. After the restart
the host is fenced, its instances are recovered once each (none twice, none lost), and never before the fence was
confirmed."""

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from bmc_support import PASSWORD, USER, Bmcs, running_bmcs

from vigil.harness.server import ServeProcess
from vigil.testbed.bmc import device_settings

ADMIN, MONITOR = "admin-secret-token-0001", "monitor-secret-token-001"
TOKENS = {ADMIN: {"project": "admin", "role": "admin"}, MONITOR: {"project": "mon", "role": "monitor"}}
TOPOLOGY = {
    "switches": [{"name": "tor-1"}],
    "hosts": [{"name": f"compute-{n}", "switch": "tor-1", "vcpus": 16} for n in (1, 2, 3)],
    "projects": [{"id": "p1", "name": "P1"}],
    "server_groups": [{"id": "ha", "name": "ha", "project": "p1", "policy": "anti-affinity"}],
    "instances": [
        {"id": "act", "name": "act", "project": "p1", "group": "ha", "host": "compute-1"},
        {"id": "stby", "name": "stby", "project": "p1", "group": "ha", "host": "compute-2"},
        *({"id": f"w{n}", "name": f"w{n}", "project": "p1", "host": "compute-1"} for n in range(6)),
    ],
}
ON_FAILED = ["act", *(f"w{n}" for n in range(6))]


@pytest.fixture
def bmcs(tmp_path: Path) -> Iterator[Bmcs]:
    with running_bmcs(tmp_path) as running:
        yield running


def settings(tmp_path: Path, bmcs: Bmcs, *, ipmi_port: int | None = None) -> dict[str, Any]:
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(TOPOLOGY))
    spec = bmcs.by_host["compute-1"]
    device = device_settings(spec, "fence_ipmilan", USER, secrets={"password": PASSWORD}, timeout_s=60)
    if ipmi_port is not None:
        device["options"] = {**device["options"], "ipport": str(ipmi_port)}  # type: ignore[dict-item]
    return {
        "cloud": {"topology": str(tmp_path / "topology.yaml"), "evacuate_s": 0.3},
        "inspector": {"hold_down_s": 0},
        "fencing": {"devices": {"compute-1": device}},
        "recovery": {"default": {"action": "evacuate"}},
    }


@pytest.fixture
async def serve(tmp_path: Path, bmcs: Bmcs) -> AsyncIterator[ServeProcess]:
    server = ServeProcess(tmp_path / "vigil", TOKENS, settings(tmp_path, bmcs))
    yield server
    await server.kill()


async def fail_compute_1(server: ServeProcess) -> str | None:
    body = {
        "time": "2026-12-07T12:00:00+00:00",
        "type": "compute.host.down",
        "details": {"hostname": "compute-1", "status": "down", "monitor": "m1", "monitor_event_id": "e1"},
    }
    async with httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": MONITOR}, timeout=10) as monitor:
        try:
            response = await monitor.post("/v1/event", json=body)
        except httpx.TransportError:
            return None
    assert response.status_code == 200, response.text
    return str(response.json()["event"]["fault"])


async def settled(server: ServeProcess, within_s: float = 60.0) -> tuple[dict[str, float], dict[str, Any]]:
    """Once the only fault shows ``recovered`` (or ``fence_failed``): its checkpoints and every instance."""
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": ADMIN}, timeout=10) as admin:
        while True:
            faults = (await admin.get("/v1/faults")).json()["faults"]
            if faults:
                profile = (await admin.get(f"/v1/faults/{faults[0]['id']}/profile")).json()["checkpoints"]
                if "recovered" in profile or "fence_failed" in profile:
                    instances = (await admin.get("/v1/instances")).json()["instances"]
                    return profile, {i["id"]: i for i in instances}
            assert time.monotonic() < deadline, f"not recovered: {server.tail()}"
            await asyncio.sleep(0.05)


def assert_recovered_once_after_the_fence(profile: dict[str, float], instances: dict[str, Any], bmcs: Bmcs) -> None:
    assert not bmcs.powered("compute-1")
    assert "fence_failed" not in profile
    assert profile["fence_confirmed"] <= profile["recovery_started"] <= profile["recovered"]
    assert sorted(instances) == sorted(["stby", *ON_FAILED]), "no instance lost, none made twice"
    for ident in ON_FAILED:
        assert (instances[ident]["state"], instances[ident]["host"] != "compute-1") == ("ACTIVE", True), ident
    assert instances["act"]["host"] != instances["stby"]["host"], "anti-affinity kept"


@pytest.mark.parametrize("point", ["before-fence", "after-fence", "mid-recovery"])
async def test_a_kill_at_a_fence_or_recovery_point_is_finished_by_the_restart(
    serve: ServeProcess, bmcs: Bmcs, point: str
) -> None:
    await serve.start(crash_at=point)
    await fail_compute_1(serve)
    await serve.wait(timeout_s=60)
    assert serve.killed_itself(), f"never reached {point}: {serve.tail()}"

    await serve.start()
    profile, instances = await settled(serve)

    assert_recovered_once_after_the_fence(profile, instances, bmcs)


async def test_a_kill_while_the_agent_waits_for_the_bmc_is_fenced_after_the_restart(
    serve: ServeProcess, bmcs: Bmcs, tmp_path: Path
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # the BMC does not answer: the agent waits
        silent.bind(("127.0.0.1", 0))
        serve.settings = settings(tmp_path, bmcs, ipmi_port=silent.getsockname()[1])
        await serve.start()
        await fail_compute_1(serve)
        await asyncio.sleep(1.0)  # the agent is waiting for the silent BMC
        await serve.kill()
    assert bmcs.powered("compute-1")

    serve.settings = settings(tmp_path, bmcs)
    await serve.start()
    profile, instances = await settled(serve)

    assert_recovered_once_after_the_fence(profile, instances, bmcs)
