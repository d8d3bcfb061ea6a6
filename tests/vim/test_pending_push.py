"""A reconciliation does not copy back from Nova what Vigil is still pushing to it.

Vigil's map changes first and Nova is made to agree after; until it does,
Nova holds the old state. The case that lasts: a recovered host's forced-up,
which Nova refuses (400) for as long as evacuation records remain on the
host, and the pusher retries. A reconciliation reading Nova meanwhile saw
``forced_down`` true, took it for drift and forced Vigil's host down again,
though its monitor had said it was up. Vigil in front of the stand-in Nova
(``openstack_standin``), reconciling every 50 ms.
"""

import asyncio
from pathlib import Path

import httpx
import pytest

from vigil.settings import Settings, load_settings
from vim.openstack_standin import OpenStackStandIn, report, until, vigil


@pytest.fixture
def settings(tmp_path: Path, standin: OpenStackStandIn) -> Settings:
    vim = standin.vim_settings()
    vim["openstack"]["reconcile_interval_s"] = 0.05
    return load_settings(None, data_dir=tmp_path, inspector={"hold_down_s": 0}, vim=vim)


async def forced_down(admin: httpx.AsyncClient, host: str) -> bool:
    return bool((await admin.get(f"/v1/hosts/{host}")).json()["host"]["forced_down"])


async def test_a_forced_up_nova_refuses_for_a_while_is_not_undone_by_a_reconciliation(
    settings: Settings, standin: OpenStackStandIn
) -> None:
    async with vigil(settings) as client, client("admin") as admin, client("monitor") as monitor:
        answer = await monitor.post("/v1/event", json=report("compute-1", "d-1"))
        assert answer.json()["event"]["outcome"] == "fault_opened"
        await until(lambda: standin.shows_fault("compute-1"), "compute-1 down in Nova")

        standin.refuse_up = True  # the evacuation records stay until the compute comes back and cleans them
        answer = await monitor.post("/v1/event", json=report("compute-1", "u-1", "up"))
        assert answer.json()["event"]["outcome"] == "fault_cleared"
        assert not await forced_down(admin, "compute-1")
        reads = standin.inventory_reads
        seen = []
        while standin.inventory_reads < reads + 5:  # five reconciliations while Nova still says forced down
            seen.append(await forced_down(admin, "compute-1"))
            await asyncio.sleep(0.02)
        seen.append(await forced_down(admin, "compute-1"))
        assert standin.forced_down["compute-1"]  # Nova still refuses
        assert not any(seen), "a reconciliation forced the recovered host down again from Nova's stale state"

        standin.refuse_up = False  # the compute cleaned its records up: the pusher's retry lands
        await until(lambda: not standin.forced_down["compute-1"], "compute-1 forced up in Nova")
        reads = standin.inventory_reads
        await until(lambda: standin.inventory_reads >= reads + 2, "two reconciliations after")
        assert not await forced_down(admin, "compute-1")
