"""``vigil demo recovery``: a host fails, is fenced through its BMC, and its instances come back elsewhere.

Masakari's use case, on one machine, with Vigil as the whole chain:

1. an embedded cloud in a scratch directory (:func:`vigil.demo.demo_topology`:
   ``N`` instances on ``compute-1``, the ACT of an anti-affinity pair
   among them), every instance's recovery policy ``evacuate`` (``auto``);
2. BMC emulators on loopback (:mod:`vigil.testbed.bmc`: pyghmi's IPMI BMC),
   compute-1 fenced through Debian's real ``fence_ipmilan`` with its default
   timings (``power_wait`` and the status polling are the agent's);
3. ``compute.host.down`` for compute-1 is reported (T01); Vigil notifies,
   fences (off, then a status that must read off), then evacuates by the
   planner's rules.

It prints ``fence_ms`` (T01 to the fence confirmed), ``recovered_ms`` (T01
to the last evacuation ended), ``instances_recovered`` (ACTIVE on another
host) and ``double_active``: how many instances were rebuilt elsewhere
while the BMC still had compute-1 powered (the recovery's start against the
moment the emulator's power switch went off, as the emulator recorded it).
Fence-first makes it 0; it is measured, not assumed.

Needs fence-agents and ipmitool (``make sysdeps``, as root) and the
testbed's emulators (``pip install 'vigil[testbed]'``).
"""

import asyncio
import contextlib
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from vigil.api.auth import Principal, Role, TokenRegistry, new_token
from vigil.demo import DEMO_PROJECT, FAILED_HOST, demo_topology
from vigil.settings import load_settings
from vigil.testbed.bmc import device_settings, loopback_bmcs, power_file
from vigil.wiring import BackgroundServer, create_server_app

BMC_USER = "admin"


@dataclass(slots=True)
class RecoveryDemoResult:
    instances: int
    fault: str | None = None
    fence_ms: float | None = None
    recovered_ms: float | None = None
    instances_recovered: int = 0
    double_active: int | None = None
    checkpoints_ms: dict[str, float] | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "instances": self.instances,
            "fence_ms": self.fence_ms,
            "recovered_ms": self.recovered_ms,
            "instances_recovered": self.instances_recovered,
            "double_active": self.double_active,
            "checkpoints_ms": self.checkpoints_ms,
            "fault": self.fault,
            "error": self.error,
        }


def missing_tools() -> list[str]:
    """What the demo needs of the machine and is not there."""
    return [tool for tool in ("fence_ipmilan", "ipmitool") if shutil.which(tool, path="/usr/sbin:/usr/bin") is None]


async def run_recovery_demo(instances: int, *, timeout_s: float = 60.0, evacuate_s: float = 0.5) -> RecoveryDemoResult:
    """Build, fence, recover, measure; see the module docstring."""
    result = RecoveryDemoResult(instances)
    missing = missing_tools()
    if missing:
        result.error = f"needs {', '.join(missing)} (make sysdeps installs fence-agents and ipmitool as root)"
        return result
    with tempfile.TemporaryDirectory(prefix="vigil-recovery-") as scratch:
        directory = Path(scratch)
        password = new_token()[:20]  # IPMI 2.0 passwords are at most 20 bytes
        with loopback_bmcs(directory, [FAILED_HOST], BMC_USER, password) as bmcs:
            topology = directory / "cloud.yaml"
            topology.write_text(yaml.safe_dump(demo_topology(instances), sort_keys=False))
            device = device_settings(bmcs.bmcs[0], "fence_ipmilan", BMC_USER, secrets={"password": password})
            settings = load_settings(
                None,
                data_dir=directory / "vigil",
                cloud={"topology": topology, "evacuate_s": evacuate_s},
                monitor={"listen": "off"},
                inspector={"hold_down_s": 0},
                fencing={"devices": {FAILED_HOST: device}},
                recovery={"default": {"action": "evacuate"}},
            )
            admin, monitor = new_token(), new_token()
            tokens = TokenRegistry({admin: Principal("admin", Role.ADMIN), monitor: Principal("m", Role.MONITOR)})
            async with (
                BackgroundServer(create_server_app(settings, tokens)) as server,
                httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": admin}, timeout=timeout_s) as adm,
                httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": monitor}, timeout=timeout_s) as mon,
            ):
                before = await _instances(adm)
                on_failed = {i for i, (host, _) in before.items() if host == FAILED_HOST}
                await _measure(result, mon, adm, timeout_s)
                if result.fault is None or result.error:
                    return result
                after = await _instances(adm)
                result.instances_recovered = sum(
                    1 for i in on_failed if after[i][0] != FAILED_HOST and after[i][1] == "ACTIVE"
                )
                off_at = power_file(bmcs.state_dir, FAILED_HOST).stat().st_mtime
                started = (result.checkpoints_ms or {}).get("recovery_started")
                base = await _t01(adm, result.fault)
                if started is not None and base is not None:
                    early = base + started / 1000 < off_at
                    result.double_active = result.instances_recovered if early else 0
    return result


async def _measure(
    result: RecoveryDemoResult, monitor: httpx.AsyncClient, admin: httpx.AsyncClient, wait: float
) -> None:
    event = {
        "time": datetime.now(UTC).isoformat(),
        "type": "compute.host.down",
        "details": {
            "hostname": FAILED_HOST,
            "status": "down",
            "monitor": "vigil-demo",
            "monitor_event_id": f"recovery-{time.time():.6f}",
        },
    }
    response = await monitor.post("/v1/event", json=event)
    if response.status_code != 200:
        result.error = f"the event was refused: {response.status_code} {response.text}"
        return
    result.fault = response.json()["event"]["fault"]
    deadline = time.monotonic() + wait
    while True:
        profile = (await admin.get(f"/v1/faults/{result.fault}/profile")).json()
        relative: dict[str, float] = profile["ms_after_T01"]
        if "fence_failed" in relative:
            result.error = "the fence failed: see the host.fence_failed alarm"
            break
        if "recovered" in relative:
            break
        if time.monotonic() > deadline:
            result.error = f"not recovered within {wait} s (checkpoints: {sorted(relative)})"
            break
        await asyncio.sleep(0.02)
    result.checkpoints_ms = relative
    result.fence_ms = relative.get("fence_confirmed")
    result.recovered_ms = relative.get("recovered")


async def _instances(admin: httpx.AsyncClient) -> dict[str, tuple[str, str]]:
    listed = (await admin.get("/v1/instances", params={"project": DEMO_PROJECT})).json()["instances"]
    return {i["id"]: (i["host"], i["state"]) for i in listed}


async def _t01(admin: httpx.AsyncClient, fault: str) -> float | None:
    with contextlib.suppress(KeyError):
        return float((await admin.get(f"/v1/faults/{fault}/profile")).json()["checkpoints"]["T01"])
    return None
