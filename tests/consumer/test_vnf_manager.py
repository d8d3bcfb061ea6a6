"""The sample VNF manager against a real Vigil: its own webhook server gets the
notification, it switches its standby to active, then recreates what failed."""

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from consumer.conftest import EMPTY_VNF, Vigil
from vigil.consumer.manager import Health, Role, VnfManager, VnfSpec
from vigil.consumer.webhook import running_consumer

Serve = Callable[[dict[str, Any] | None], Awaitable[Vigil]]


def roles(vnfm: VnfManager) -> dict[str, Role]:
    return {m.name: m.role for m in vnfm.members.values()}


@pytest.mark.parametrize("payload_format", ["aodh", "sol003"])
async def test_a_host_failure_switches_the_standby_to_active_and_the_failed_are_recreated(
    serve: Serve, payload_format: str
) -> None:
    vigil = await serve(None)
    async with running_consumer(vigil.url, "vnf-a-token", payload_format=payload_format) as (vnfm, _):
        assert vnfm.project == "vnf-a"
        assert vnfm.act is not None
        assert vnfm.act.id == "vnf-a-app-act"
        assert vnfm.stby is not None
        assert vnfm.stby.id == "vnf-a-app-stby"
        first_subscription = vnfm.state()["subscription"]
        lb = next(m for m in vnfm.members.values() if m.name == "lb-1")
        assert lb.role is Role.SINGLE

        await vigil.fail_host("compute-1")  # runs app-act and lb-1
        await vnfm.wait_for(lambda m: bool(m.switchovers))
        [switch] = vnfm.switchovers
        assert (switch.failed, switch.new_act) == ("vnf-a-app-act", "vnf-a-app-stby")
        assert switch.at >= switch.received_at
        assert vnfm.act is not None
        assert vnfm.act.id == "vnf-a-app-stby"

        await vnfm.settle()
        assert sorted((r.name, r.role, r.error) for r in vnfm.recreations) == [
            ("app-act", Role.STBY, None),
            ("lb-1", Role.SINGLE, None),
        ]
        assert (await vigil.instance("vnf-a-app-act")).status_code == 404
        assert (await vigil.instance(lb.id)).status_code == 404
        new_stby = vnfm.stby
        assert new_stby is not None
        assert new_stby.name == "app-act"
        booted = (await vigil.instance(new_stby.id)).json()["instance"]
        active = (await vigil.instance("vnf-a-app-stby")).json()["instance"]
        assert booted["state"] == "ACTIVE"
        assert booted["group"] == "vnf-a-ha"
        assert booted["metadata"]["role"] == "STBY"
        assert booted["host"] not in ("compute-1", active["host"])  # anti-affinity holds
        assert all(m.health is Health.OK for m in vnfm.members.values())

        state = vnfm.state()
        [note] = state["notifications"]
        assert set(note["resource_ids"]) == {"vnf-a-app-act", lb.id}
        assert note["format"] == payload_format
        assert state["subscription"] != first_subscription  # moved to the new instances
        subs = (await vigil.admin.get("/v1/subscriptions")).json()["subscriptions"]
        [sub] = [s for s in subs if s["project"] == "vnf-a"]
        assert sub["id"] == state["subscription"]
        assert new_stby.id in sub["filter"]["resource_ids"]
        assert "vnf-a-app-act" not in sub["filter"]["resource_ids"]


async def test_a_repeated_notification_is_acted_on_once(serve: Serve) -> None:
    vigil = await serve(None)
    async with (
        running_consumer(vigil.url, "vnf-a-token") as (vnfm, server),
        httpx.AsyncClient(base_url=server.url) as hooks,
    ):
        await vigil.fail_host("compute-1")
        await vnfm.wait_for(lambda m: bool(m.switchovers))
        [note] = vnfm.notifications
        again = await hooks.post("/notify", json=dict(note.body), headers={"X-Vigil-Notification-Id": note.id})
        assert again.status_code == 200
        assert again.json()["received_at"] > 0
        await vnfm.settle()
        assert vnfm.duplicates == 1
        assert len(vnfm.switchovers) == 1
        assert len(vnfm.notifications) == 1


async def test_the_webhook_shows_the_state_answers_callback_tests_and_refuses_what_is_no_notification(
    serve: Serve,
) -> None:
    vigil = await serve(None)
    async with (
        running_consumer(vigil.url, "vnf-a-token") as (vnfm, server),
        httpx.AsyncClient(base_url=server.url) as hooks,
    ):
        state = (await hooks.get("/state")).json()
        assert state["act"] == "vnf-a-app-act"
        assert state["stby"] == "vnf-a-app-stby"
        assert state["switchovers"] == []
        assert (await hooks.get("/notify")).status_code == 204
        assert (await hooks.post("/notify", content=b"not json")).status_code == 400
        assert (await hooks.post("/notify", json={"hello": 1})).status_code == 400
        assert (await hooks.put("/notify", json={})).status_code == 405
        assert vnfm.notifications == []


async def test_it_boots_the_pair_and_a_worker_when_its_project_has_none(serve: Serve) -> None:
    vigil = await serve(EMPTY_VNF)
    spec = VnfSpec(name="x", workers=1)
    async with running_consumer(vigil.url, "vnf-x-token", project="vnf-x", spec=spec) as (vnfm, _):
        assert roles(vnfm) == {"x-act": Role.ACT, "x-stby": Role.STBY, "x-worker-1": Role.SINGLE}
        assert vnfm.act is not None
        assert vnfm.stby is not None
        act = (await vigil.instance(vnfm.act.id)).json()["instance"]
        stby = (await vigil.instance(vnfm.stby.id)).json()["instance"]
        assert act["group"] == stby["group"] == "vnf-x-ha"
        assert act["host"] != stby["host"]
        assert act["state"] == stby["state"] == "ACTIVE"

        await vigil.fail_host(act["host"])
        await vnfm.wait_for(lambda m: bool(m.switchovers))
        assert vnfm.act.id == stby["id"]
        await vnfm.settle()
        assert vnfm.stby is not None
        assert vnfm.stby.name == "x-act"
        assert (await vigil.instance(vnfm.stby.id)).json()["instance"]["state"] == "ACTIVE"


async def test_without_an_anti_affinity_group_it_says_so(serve: Serve) -> None:
    vigil = await serve({**EMPTY_VNF, "server_groups": []})
    with pytest.raises(Exception, match="no anti-affinity server group"):
        async with running_consumer(vigil.url, "vnf-x-token", project="vnf-x"):
            pass
