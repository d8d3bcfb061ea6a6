"""The maintenance API's authorization and validation, over real HTTP.

Sessions are the admin's; a project's endpoints answer that project or an
admin (403 otherwise); constraints are their resource owner's (another
project's resources look missing, 404). Bad bodies are 422 with a message
naming the problem; a reply nobody asked for is 409.
"""

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from conftest import Api

from vigil.settings import Settings


async def open_session(admin: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await admin.post("/v1/maintenance", json={"state": "MAINTENANCE", **body})


@pytest.mark.parametrize("token", [None, "vnf-a-token", "monitor-token"])
async def test_only_an_admin_manages_sessions(clients: Any, token: str | None) -> None:
    client: httpx.AsyncClient = clients(token)
    expected = 401 if token is None else 403
    assert (await open_session(client, hosts=["compute-3"])).status_code == expected
    assert (await client.get("/v1/maintenance")).status_code == expected
    assert (await client.get("/v1/maintenance/some-id")).status_code == expected
    assert (await client.get("/v1/maintenance/some-id/detail")).status_code == expected
    assert (await client.delete("/v1/maintenance/some-id")).status_code == expected


async def test_a_project_sees_and_answers_only_for_itself(
    admin: httpx.AsyncClient, vnf_a: httpx.AsyncClient, vnf_b: httpx.AsyncClient
) -> None:
    # A session far in the future: it waits, with its hosts untouched, until cancelled.
    created = await open_session(admin, hosts=["compute-1"], maintenance_at="2099-01-01 00:00:00")
    assert created.status_code == 200, created.text
    session = created.json()["session_id"]
    shown = (await admin.get(f"/v1/maintenance/{session}")).json()
    assert shown["state"] == "MAINTENANCE"
    assert shown["maintenance_at"].startswith("2099-01-01T00:00:00")  # Fenix's format, read as UTC
    assert [s["session_id"] for s in (await admin.get("/v1/maintenance")).json()["sessions"]] == [session]

    assert (await vnf_b.get(f"/v1/maintenance/{session}/vnf-a")).status_code == 403
    refused = await vnf_b.put(f"/v1/maintenance/{session}/vnf-a", json={"state": "ACK_MAINTENANCE"})
    assert refused.status_code == 403
    # vnf-a was not asked anything yet: nothing to show, nothing to answer.
    assert (await vnf_a.get(f"/v1/maintenance/{session}/vnf-a")).status_code == 404
    early = await vnf_a.put(f"/v1/maintenance/{session}/vnf-a", json={"state": "ACK_MAINTENANCE"})
    assert early.status_code == 409
    assert "not waiting for a reply from project vnf-a" in early.json()["error"]["message"]

    detail = (await admin.get(f"/v1/maintenance/{session}/detail")).json()
    assert detail["percent_done"] == 0
    assert [h["host"] for h in detail["hosts"]] == ["compute-1"]
    assert {i["instance_id"] for i in detail["instances"]} >= {"vnf-a-app-act"}
    assert (await admin.delete(f"/v1/maintenance/{session}")).json()["state"] == "MAINTENANCE_FAILED"


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"hosts": ["compute-99"]}, 422, "host 'compute-99' does not exist"),
        ({"hosts": ["compute-1"], "workflow": "fancy"}, 422, "unknown workflow 'fancy'"),
        ({"hosts": ["compute-1"], "actions": [{"action": "reboot"}]}, 422, "unknown action 'reboot'"),
        ({"hosts": ["compute-1"], "actions": [{"action": "upgrade", "duration_s": -1}]}, 422, "duration_s must be"),
        # No command line travels in a request: "script" is no action unless the operator named one so.
        ({"hosts": ["compute-1"], "actions": [{"plugin": "script", "command": ["rm", "-rf", "/"]}]}, 422, "'script'"),
        ({"hosts": ["compute-1"], "actions": [{"action": "mark", "command": ["id"]}]}, 422, "unknown: command"),
        ({"hosts": ["compute-1"], "actions": [{"action": "mark", "dir": 3}]}, 422, "is a string"),
        ({"hosts": ["compute-1"], "state": "IN_MAINTENANCE"}, 422, "state"),
        ({"hosts": ["compute-1"], "color": "red"}, 422, "color"),
        ({"hosts": ["compute-1"], "maintenance_at": "soon"}, 422, "maintenance_at"),
    ],
)
async def test_bad_session_requests_are_422(
    admin: httpx.AsyncClient, body: dict[str, Any], status: int, fragment: str
) -> None:
    answer = await admin.post("/v1/maintenance", json={"state": "MAINTENANCE", **body})
    assert answer.status_code == status
    assert fragment in answer.json()["error"]["message"]
    assert (await admin.get("/v1/maintenance")).json()["sessions"] == []


async def test_a_host_in_an_open_session_cannot_be_in_another(admin: httpx.AsyncClient) -> None:
    first = await open_session(admin, hosts=["compute-1", "compute-2"], maintenance_at="2099-01-01T00:00:00Z")
    assert first.status_code == 200
    second = await open_session(admin, hosts=["compute-2", "compute-3"])
    assert second.status_code == 409
    assert "compute-2" in second.json()["error"]["message"]
    await admin.delete(f"/v1/maintenance/{first.json()['session_id']}")
    assert (await open_session(admin, hosts=["compute-3"], maintenance_at="2099-01-01T00:00:00Z")).status_code == 200


async def test_unknown_sessions_are_404(admin: httpx.AsyncClient, vnf_a: httpx.AsyncClient) -> None:
    assert (await admin.get("/v1/maintenance/nope")).status_code == 404
    assert (await admin.get("/v1/maintenance/nope/detail")).status_code == 404
    assert (await admin.delete("/v1/maintenance/nope")).status_code == 404
    assert (await vnf_a.get("/v1/maintenance/nope/vnf-a")).status_code == 404
    answer = await vnf_a.put("/v1/maintenance/nope/vnf-a", json={"state": "ACK_MAINTENANCE"})
    assert answer.status_code == 404


async def test_a_reply_that_does_not_parse_is_422(admin: httpx.AsyncClient, vnf_a: httpx.AsyncClient) -> None:
    session = (await open_session(admin, hosts=["compute-3"], maintenance_at="2099-01-01T00:00:00Z")).json()
    url = f"/v1/maintenance/{session['session_id']}/vnf-a"
    bad_state = await vnf_a.put(url, json={"state": "MAYBE_MAINTENANCE"})
    assert bad_state.status_code == 422
    assert "ACK_<STATE> or NACK_<STATE>" in bad_state.json()["error"]["message"]
    bad_action = await vnf_a.put(url, json={"state": "ACK_MAINTENANCE", "instance_actions": {"x": "TELEPORT"}})
    assert bad_action.status_code == 422
    not_json = await vnf_a.put(url, content=b"{not json", headers={"content-type": "application/json"})
    assert not_json.status_code == 400


async def test_instance_constraints_belong_to_the_instance_owner(
    admin: httpx.AsyncClient, vnf_a: httpx.AsyncClient, vnf_b: httpx.AsyncClient
) -> None:
    body = {"max_interruption_time": 5, "migration_type": "LIVE_MIGRATE", "lead_time": 60, "instance_name": "app-act"}
    assert (await vnf_b.put("/v1/instance/vnf-a-app-act", json=body)).status_code == 404
    saved = await vnf_a.put("/v1/instance/vnf-a-app-act", json=body)
    assert saved.status_code == 200, saved.text
    expected = {
        "instance_id": "vnf-a-app-act",
        "project_id": "vnf-a",
        "group_id": "vnf-a-ha",
        "max_interruption_time": 5.0,
        "migration_type": "LIVE_MIGRATE",
        "resource_mitigation": False,
        "lead_time": 60.0,
    }
    assert saved.json() == expected
    assert (await admin.get("/v1/instance/vnf-a-app-act")).json() == expected
    assert (await vnf_b.get("/v1/instance/vnf-a-app-act")).status_code == 404
    assert (await vnf_a.put("/v1/instance/vnf-a-app-act", json={"migration_type": "BEAM"})).status_code == 422
    mismatch = await vnf_a.put("/v1/instance/vnf-a-app-act", json={"instance_id": "other"})
    assert mismatch.status_code == 422
    assert "differs from the path" in mismatch.json()["error"]["message"]
    assert (await vnf_b.delete("/v1/instance/vnf-a-app-act")).status_code == 404
    assert (await vnf_a.delete("/v1/instance/vnf-a-app-act")).status_code == 204
    assert (await vnf_a.get("/v1/instance/vnf-a-app-act")).status_code == 404
    assert (await vnf_a.put("/v1/instance/no-such-instance", json={})).status_code == 404


async def test_group_constraints_belong_to_the_group_owner_and_survive_a_restart(
    settings: Settings, restart: Callable[[Settings], AbstractAsyncContextManager[Api]]
) -> None:
    body = {"max_impacted_members": 1, "recovery_time": 2.5, "anti_affinity_group": True, "group_name": "app-ha"}
    async with restart(settings) as api, api.client("vnf-a-token") as vnf_a, api.client("vnf-b-token") as vnf_b:
        assert (await vnf_b.put("/v1/instance_group/vnf-a-ha", json=body)).status_code == 404
        saved = await vnf_a.put("/v1/instance_group/vnf-a-ha", json=body)
        assert saved.status_code == 200, saved.text
        assert saved.json()["max_impacted_members"] == 1
        assert (await vnf_a.put("/v1/instance_group/vnf-a-ha", json={"max_impacted_members": -1})).status_code == 422
    async with restart(settings) as api, api.client("vnf-a-token") as vnf_a:
        kept = (await vnf_a.get("/v1/instance_group/vnf-a-ha")).json()
        assert kept == {
            "group_id": "vnf-a-ha",
            "project_id": "vnf-a",
            "anti_affinity_group": True,
            "max_instances_per_host": 0,
            "max_impacted_members": 1,
            "recovery_time": 2.5,
        }
        assert (await vnf_a.delete("/v1/instance_group/vnf-a-ha")).status_code == 204
        assert (await vnf_a.get("/v1/instance_group/vnf-a-ha")).status_code == 404
