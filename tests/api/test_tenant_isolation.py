"""What a tenant can learn of others (findings 3 and 4 of the security issue).

Seen before: naming another project's instance, port, group or project in a
subscription filter got 403, but a name that does not exist got 422, and
hosts and switches likewise: a way to enumerate other tenants' ids and the
infrastructure's names. And ``GET /v1/instances`` and ``/v1/ports`` showed
members the host names that alarms carefully hid behind opaque host ids.

Now "not yours" and "does not exist" get the same answer on every route that
names a resource (a matrix over the routes, tenant B naming tenant A's
resources against names nobody has), and no answer to a member contains a
host name: members see Nova's opaque host id, the one their alarms carry.
"""

import json
import re
from typing import Any

import httpx
import pytest
from conftest import Api
from support import Receiver

from vigil.domain.model import opaque_host_id

HOSTS = [f"compute-{n}" for n in range(1, 7)]


def answer(response: httpx.Response) -> tuple[int, str]:
    """The status, and the message with the name asked for blanked out."""
    body = response.json()
    message = body.get("error", {}).get("message", "") if isinstance(body, dict) else ""
    return response.status_code, message


async def a_resources(admin: httpx.AsyncClient) -> dict[str, str]:
    """One of vnf-a's resources of each kind."""
    instances = (await admin.get("/v1/instances", params={"project": "vnf-a"})).json()["instances"]
    ports = (await admin.get("/v1/ports", params={"instance": instances[0]["id"]})).json()["ports"]
    return {"instance": instances[0]["id"], "port": ports[0]["id"], "group": "vnf-a-ha", "project": "vnf-a"}


def requests_naming(ident: str, kind: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every route a member may call that names a resource, by method, path and body."""
    found: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/v1/subscriptions", {"callbacks": ["http://127.0.0.1:9/x"], "filter": {"resource_ids": [ident]}}),
    ]
    if kind == "instance":
        found += [
            ("GET", f"/v1/instances/{ident}", None),
            ("DELETE", f"/v1/instances/{ident}", None),
            ("POST", f"/v1/instances/{ident}/action", {"action": "stop"}),
            ("GET", f"/v1/instance/{ident}", None),
            ("PUT", f"/v1/instance/{ident}", {"lead_time": 1}),
            ("DELETE", f"/v1/instance/{ident}", None),
            ("GET", f"/v1/ports?instance={ident}", None),
        ]
    if kind == "port":
        found += [("GET", f"/v1/ports/{ident}", None)]
    if kind == "group":
        found += [
            ("GET", f"/v1/server-groups/{ident}", None),
            ("PATCH", f"/v1/server-groups/{ident}", {"alarm_threshold": 2}),
            ("GET", f"/v1/instance_group/{ident}", None),
            ("PUT", f"/v1/instance_group/{ident}", {"max_impacted_members": 1}),
            ("DELETE", f"/v1/instance_group/{ident}", None),
            ("POST", "/v1/instances", {"name": "x", "group": ident}),
        ]
    return found


@pytest.mark.parametrize("kind", ["instance", "port", "group", "project", "host", "switch"])
async def test_a_tenant_naming_anothers_resource_gets_the_answer_for_a_missing_one(
    admin: httpx.AsyncClient, vnf_b: httpx.AsyncClient, kind: str
) -> None:
    theirs = {**(await a_resources(admin)), "host": "compute-1", "switch": "tor-1"}[kind]
    missing = f"no-such-{kind}"
    checked = 0
    for (method, path, body), (_, missing_path, missing_body) in zip(
        requests_naming(theirs, kind), requests_naming(missing, kind), strict=True
    ):
        real = await vnf_b.request(method, path, json=body)
        absent = await vnf_b.request(method, missing_path, json=missing_body)
        status, message = answer(real)
        assert status == absent.status_code, (method, path, real.text, absent.text)
        assert status in (200, 404, 422), (method, path, real.text)  # 200: a list filtered to nothing
        assert message.replace(theirs, "NAME") == answer(absent)[1].replace(missing, "NAME"), (method, path)
        if status == 200:
            assert real.json() == absent.json(), (method, path)
        checked += 1
    assert checked >= 1


def fill(path: str, ids: dict[str, str]) -> str:
    """A documented path with the member's own resources in its parameters, chosen by what the path is about."""
    for prefix, key in (
        ("/v1/instances/", "instance"),
        ("/v1/instance/", "instance"),
        ("/v1/ports/", "port"),
        ("/v1/server-groups/", "group"),
        ("/v1/instance_group/", "group"),
        ("/v1/alarms/", "alarm"),
        ("/v1/subscriptions/", "subscription"),
        ("/v1/faults/", "fault"),
        ("/v1/maintenance/", "session"),
        ("/v1/hosts/", "host"),
        ("/v1/monitor/hosts/", "host"),
    ):
        if path.startswith(prefix):
            path = re.sub(r"\{[^}/]+\}", ids[key], path, count=1)
            break
    return path.replace("{project_id}", "vnf-a")


async def test_no_answer_to_a_member_names_a_host(
    api: Api, vnf_a: httpx.AsyncClient, monitor: httpx.AsyncClient, admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Every GET of the document, as a member, with its own resources' ids and while a fault and a maintenance
    session concern it; and every notification it receives."""
    subscribed = await vnf_a.post("/v1/subscriptions", json={"callbacks": [f"{receiver.url}/vnf-a"]})
    assert subscribed.status_code == 201, subscribed.text
    event = {
        "time": "2026-12-07T00:00:00Z",
        "type": "compute.host.down",
        "details": {"hostname": "compute-2", "status": "down", "monitor": "m", "monitor_event_id": "h1"},
    }
    assert (await monitor.post("/v1/event", json=event)).status_code == 200
    instances = (await vnf_a.get("/v1/instances")).json()["instances"]
    act = next(i for i in instances if i["id"] == "vnf-a-app-act")
    assert act["host"] == opaque_host_id("vnf-a", "compute-1")
    session = await admin.post("/v1/maintenance", json={"hosts": ["compute-1"]})
    assert session.status_code == 200, session.text
    await receiver.wait_for(2)  # the instance.down alarm and the session's first message
    alarms = (await vnf_a.get("/v1/alarms")).json()["alarms"]
    ids = {
        "instance": act["id"],
        "port": (await vnf_a.get("/v1/ports")).json()["ports"][0]["id"],
        "group": "vnf-a-ha",
        "alarm": alarms[0]["id"],
        "subscription": subscribed.json()["subscription"]["id"],
        "fault": (await admin.get("/v1/faults")).json()["faults"][0]["id"],
        "session": session.json()["session_id"],
        "host": act["host"],
    }
    doc = (await vnf_a.get("/openapi.json")).json()
    walked: dict[str, int] = {}
    for path, item in doc["paths"].items():
        if "get" in item:
            response = await vnf_a.get(fill(path, ids), params={"limit": 1000} if "limit" in str(item) else None)
            walked[path] = response.status_code
            assert not any(h in response.text for h in HOSTS), (path, response.text[:300])
    assert len(walked) == sum("get" in item for item in doc["paths"].values())
    assert sum(status == 200 for status in walked.values()) >= 14, walked  # all a member may read
    assert walked["/v1/maintenance/{session_id}/{project_id}"] == 200, walked
    for notification in receiver.delivered():
        assert not any(h in json.dumps(notification["body"]) for h in HOSTS), notification["body"]
    # A member filters by the opaque id it was shown.
    mine = (await vnf_a.get("/v1/instances", params={"host": act["host"]})).json()["instances"]
    assert {i["id"] for i in mine} == {i["id"] for i in instances if i["host"] == act["host"]}
    assert (await vnf_a.get("/v1/instances", params={"host": "compute-1"})).json()["instances"] == []
    # Admins still see the real names.
    assert (await admin.get(f"/v1/instances/{act['id']}")).json()["instance"]["host"] == "compute-1"
