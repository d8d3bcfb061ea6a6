"""Subscribing to maintenance messages through the API: the event types are
accepted by name, host messages are for admins, and messages come in the
Aodh format only."""

from typing import Any

import httpx
from support import Receiver


async def post(client: httpx.AsyncClient, url: str, event_types: list[str], format_: str = "aodh") -> httpx.Response:
    body: dict[str, Any] = {"callbacks": [url], "format": format_, "filter": {"event_types": event_types}}
    return await client.post("/v1/subscriptions", json=body)


async def test_a_member_subscribes_to_its_maintenance_messages_by_event_type(
    vnf_a: httpx.AsyncClient, receiver: Receiver
) -> None:
    created = await post(vnf_a, f"{receiver.url}/vnfm", ["maintenance.scheduled", "instance.down"])
    assert created.status_code == 201, created.text
    made = created.json()["subscription"]
    assert made["filter"]["event_types"] == ["maintenance.scheduled", "instance.down"]
    [listed] = (await vnf_a.get("/v1/subscriptions")).json()["subscriptions"]
    assert listed["filter"]["event_types"] == ["maintenance.scheduled", "instance.down"]
    shown = (await vnf_a.get(f"/v1/subscriptions/{made['id']}")).json()["subscription"]
    assert shown["filter"]["event_types"] == ["maintenance.scheduled", "instance.down"]


async def test_only_an_admin_may_subscribe_to_host_messages(
    vnf_a: httpx.AsyncClient, admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    refused = await post(vnf_a, f"{receiver.url}/a", ["maintenance.host"])
    assert refused.status_code == 403
    assert "only an admin may subscribe to maintenance.host" in refused.json()["error"]["message"]
    accepted = await post(admin, f"{receiver.url}/admin", ["maintenance.host", "maintenance.scheduled"])
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["subscription"]["filter"]["event_types"] == ["maintenance.host", "maintenance.scheduled"]


async def test_a_sol003_subscription_may_not_name_a_maintenance_event_type(
    vnf_a: httpx.AsyncClient, admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    for client, event_type in ((vnf_a, "maintenance.scheduled"), (admin, "maintenance.host")):
        refused = await post(client, f"{receiver.url}/sol", ["instance.down", event_type], format_="sol003")
        assert refused.status_code == 422
        message = refused.json()["error"]["message"]
        assert event_type in message
        assert "aodh format only" in message
    assert (await post(vnf_a, f"{receiver.url}/sol", ["instance.down"], format_="sol003")).status_code == 201
    assert len((await admin.get("/v1/subscriptions")).json()["subscriptions"]) == 1


async def test_an_unknown_event_type_is_422(vnf_a: httpx.AsyncClient, receiver: Receiver) -> None:
    refused = await post(vnf_a, f"{receiver.url}/a", ["maintenance.bogus"])
    assert refused.status_code == 422
    assert "event_types" in refused.json()["error"]["message"]
