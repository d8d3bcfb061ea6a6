"""Fault actions that had not reached Nova when Vigil stopped are pushed after its restart, recoveries included.

Vigil's map changes first and Nova is made to agree after. A restart used
to push again only the state of the hosts a fault still held forced down,
so two things were lost when Vigil stopped before Nova took them (seen with
both tests below failing):

* a recovery's forced-up (Nova refusing it while evacuation records remain):
  after the restart Nova still had the host forced down, and the first
  reconciliation copied that back, forcing Vigil's recovered host down again;
* a fault and its recovery that both came while Nova was away: the servers'
  ERROR, which the consumer had been notified of, never reached Nova, and
  the first reconciliation copied Nova's ACTIVE back over Vigil's ERROR.

Vigil in front of the stand-in Nova (``openstack_standin``), stopped and
started again on the same store; nothing is written at stop, so a stop is
what a kill leaves for this.
"""

from pathlib import Path

import httpx
import pytest

from vigil.settings import Settings, load_settings
from vim.openstack_standin import OpenStackStandIn, report, until, vigil


@pytest.fixture
def settings(tmp_path: Path, standin: OpenStackStandIn) -> Settings:
    vim = standin.vim_settings()
    vim["openstack"]["reconcile_interval_s"] = 0.1
    return load_settings(None, data_dir=tmp_path, inspector={"hold_down_s": 0}, vim=vim)


async def host(admin: httpx.AsyncClient, name: str) -> dict[str, object]:
    shown: dict[str, object] = (await admin.get(f"/v1/hosts/{name}")).json()["host"]
    return shown


async def test_a_recoverys_forced_up_that_nova_had_not_taken_lands_after_a_restart(
    settings: Settings, standin: OpenStackStandIn
) -> None:
    async with vigil(settings) as client, client("monitor") as monitor:
        assert (await monitor.post("/v1/event", json=report("compute-1", "d-1"))).status_code == 200
        await until(lambda: standin.shows_fault("compute-1"), "compute-1 down in Nova")
        standin.refuse_up = True  # the evacuation records stay until the compute cleans them up
        answer = await monitor.post("/v1/event", json=report("compute-1", "u-1", "up"))
        assert answer.json()["event"]["outcome"] == "fault_cleared"
    assert standin.forced_down["compute-1"]  # Vigil stopped before Nova took the forced-up

    standin.refuse_up = False
    async with vigil(settings) as client, client("admin") as admin:
        await until(lambda: not standin.forced_down["compute-1"], "compute-1 forced up in Nova after the restart")
        reads = standin.inventory_reads
        await until(lambda: standin.inventory_reads >= reads + 1, "a reconciliation after")
        shown = await host(admin, "compute-1")
        assert shown["forced_down"] is False, shown
        assert shown["status"] == "UP", shown


async def test_a_fault_and_its_recovery_while_nova_was_away_reach_nova_after_a_restart(
    settings: Settings, standin: OpenStackStandIn
) -> None:
    async with vigil(settings) as client, client("monitor") as monitor, client("admin") as admin:
        standin.nova_status = 503
        assert (await monitor.post("/v1/event", json=report("compute-1", "d-1"))).status_code == 200
        answer = await monitor.post("/v1/event", json=report("compute-1", "u-1", "up"))
        assert answer.json()["event"]["outcome"] == "fault_cleared"
        assert (await admin.get("/v1/instances/s-1")).json()["instance"]["state"] == "ERROR"
    assert standin.servers["s-1"]["status"] == "ACTIVE"  # nothing reached Nova

    standin.nova_status = None
    async with vigil(settings) as client, client("admin") as admin:
        await until(lambda: standin.servers["s-1"]["status"] == "ERROR", "s-1 ERROR in Nova after the restart")
        reads = standin.inventory_reads
        await until(lambda: standin.inventory_reads >= reads + 1, "a reconciliation after")
        assert not standin.forced_down["compute-1"]  # the host recovered: its forced-down is not pushed back
        assert (await admin.get("/v1/instances/s-1")).json()["instance"]["state"] == "ERROR"
        assert (await host(admin, "compute-1"))["forced_down"] is False
