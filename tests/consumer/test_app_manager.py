"""The sample app manager in a real maintenance session: it ACKs each step,
moves its active role off a host before that host is emptied, answers
MIGRATE for its instances, scales in when asked and back out at the end."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from consumer.conftest import Vigil
from vigil.consumer.app_manager import AppManager
from vigil.consumer.webhook import running_consumer

Serve = Callable[[dict[str, Any] | None], Awaitable[Vigil]]

# Three hosts of 2 vCPUs, every vCPU used: no host can be emptied until the app scales in.
FULL = {
    "switches": [{"name": "tor-1"}],
    "hosts": [{"name": f"compute-{h}", "switch": "tor-1", "vcpus": 2} for h in range(1, 4)],
    "projects": [{"id": "vnf-x", "name": "VNF X"}],
    "server_groups": [{"id": "vnf-x-ha", "name": "x-ha", "project": "vnf-x"}],
    "instances": [
        {"id": "x-act", "name": "app-act", "project": "vnf-x", "group": "vnf-x-ha", "host": "compute-1",
         "metadata": {"role": "ACT"}},
        {"id": "x-stby", "name": "app-stby", "project": "vnf-x", "group": "vnf-x-ha", "host": "compute-2",
         "metadata": {"role": "STBY"}},
        *({"id": f"x-w{n}", "name": f"worker-{n}", "project": "vnf-x", "host": f"compute-{h}",
           "metadata": {"role": "worker"}} for n, h in ((1, 1), (2, 2), (3, 3), (4, 3))),
    ],
}  # fmt: skip


def roomy() -> dict[str, Any]:
    """The same VNF on hosts of 4 vCPUs: room to empty a host without scaling in."""
    return {**FULL, "hosts": [{"name": f"compute-{h}", "switch": "tor-1", "vcpus": 4} for h in range(1, 4)]}


def too_small() -> dict[str, Any]:
    """Two full hosts: even scaled in, the anti-affinity pair leaves no host to empty."""
    instances = [i for i in FULL["instances"] if i["host"] in ("compute-1", "compute-2")]  # type: ignore[index]
    return {**FULL, "hosts": FULL["hosts"][:2], "instances": instances}  # type: ignore[index]


async def finished(vigil: Vigil, session: str) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            shown = (await vigil.admin.get(f"/v1/maintenance/{session}")).json()
            if shown["state"] in ("MAINTENANCE_DONE", "MAINTENANCE_FAILED"):
                return dict(shown)
            await asyncio.sleep(0.02)


async def test_the_app_manager_moves_its_active_role_away_and_the_session_completes(serve: Serve) -> None:
    vigil = await serve(roomy())
    async with running_consumer(vigil.url, "vnf-x-token", maintenance=True) as (manager, _):
        assert isinstance(manager, AppManager)
        created = await vigil.admin.post("/v1/maintenance", json={"hosts": ["compute-1", "compute-2", "compute-3"]})
        assert created.status_code == 200, created.text
        done = await finished(vigil, created.json()["session_id"])
        assert done["state"] == "MAINTENANCE_DONE", done
        # compute-1 ran the active instance: the role moved to the standby before it was emptied.
        assert "SCALE_IN" not in [s.state for s in manager.maintenance]
        assert [(s.failed, s.new_act) for s in manager.switchovers][:1] == [("x-act", "x-stby")]
        answered = [(s.state, s.reply) for s in manager.maintenance]
        assert answered[0] == ("MAINTENANCE", "ACK_MAINTENANCE")
        assert answered[-1] == ("MAINTENANCE_COMPLETE", "ACK_MAINTENANCE_COMPLETE")
        assert all(reply in (f"ACK_{state}", None) for state, reply in answered)
        assert all(s.error is None for s in manager.maintenance)
        assert manager.act is not None
        active = (await vigil.instance(manager.act.id)).json()["instance"]
        assert active["state"] == "ACTIVE"


async def test_a_full_cloud_scales_in_then_back_out(serve: Serve) -> None:
    vigil = await serve(FULL)
    async with running_consumer(vigil.url, "vnf-x-token", maintenance=True) as (manager, _):
        members_before = len(manager.members)
        created = await vigil.admin.post("/v1/maintenance", json={"hosts": []})  # every host
        done = await finished(vigil, created.json()["session_id"])
        assert done["state"] == "MAINTENANCE_DONE", done
        states = [s.state for s in manager.maintenance]
        assert "SCALE_IN" in states
        assert states.index("SCALE_IN") < states.index("MAINTENANCE_COMPLETE")
        assert manager.scaled_in == []  # booted back
        assert len(manager.members) == members_before
        instances = (await vigil.admin.get("/v1/instances")).json()["instances"]
        assert len(instances) == members_before
        assert all(i["state"] == "ACTIVE" for i in instances)


async def test_a_failed_session_after_a_scale_in_lets_the_app_scale_back_out(serve: Serve) -> None:
    vigil = await serve(too_small())
    async with running_consumer(vigil.url, "vnf-x-token", maintenance=True) as (manager, _):
        members_before = len(manager.members)
        created = await vigil.admin.post("/v1/maintenance", json={"hosts": []})
        failed = await finished(vigil, created.json()["session_id"])
        assert failed["state"] == "MAINTENANCE_FAILED"
        assert "even after scaling in" in failed["reason"]
        await manager.wait_for(lambda m: any(s.state == "MAINTENANCE_FAILED" for s in m.maintenance))
        await manager.settle()
        states = [s.state for s in manager.maintenance]
        assert states[:2] == ["MAINTENANCE", "SCALE_IN"]
        assert manager.scaled_in == []
        assert len(manager.members) == members_before
        instances = (await vigil.admin.get("/v1/instances")).json()["instances"]
        assert sorted(i["id"] for i in instances if i["state"] == "ACTIVE") == sorted(manager.members)
