"""Every value the API accepts fits the store (finding 4 of the crash-safety issue).

The store keeps 64-bit integers, finite floats, datetimes within years 1 to
9999 once normalised to UTC, and text without NUL characters (PostgreSQL
refuses those). A value outside that used to pass the API, poison the shared
commit, and fail every request of the batch with 500 after 1.6 s of retries;
a host failure sent with it was notified and then lost at the restart. Now
such a value is a 422 naming the field, on SQLite and PostgreSQL alike, and
nothing of its request is applied or notified.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from conftest import Api
from support import Receiver, fresh_postgres_database

from vigil.settings import Settings

BIG = 2**63


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def any_api(
    request: pytest.FixtureRequest, settings: Settings, restart: Callable[[Settings], AbstractAsyncContextManager[Api]]
) -> AsyncIterator[Api]:
    """A server on SQLite, then one on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        async with restart(settings) as api:
            yield api
        return
    async with fresh_postgres_database() as url:
        on_postgres = settings.model_copy(update={"store": settings.store.model_copy(update={"url": url})})
        async with restart(on_postgres) as api:
            yield api


def event(host: str, ident: str, *, time: str | None = None, **details: Any) -> dict[str, Any]:
    return {
        "time": time or datetime.now(UTC).isoformat(),
        "type": "compute.host.down",
        "details": {"hostname": host, "status": "down", "monitor": "m1", "monitor_event_id": ident, **details},
    }


def refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["message"]


async def test_an_integer_beyond_64_bits_in_a_group_constraint_is_422(any_api: Api) -> None:
    async with any_api.client("vnf-a-token") as member:
        response = await member.put("/v1/instance_group/vnf-a-ha", json={"max_instances_per_host": BIG})
        refused(response, "max_instances_per_host")
        response = await member.put("/v1/instance_group/vnf-a-ha", json={"max_impacted_members": BIG - 1})
        assert response.status_code == 200, response.text  # the largest 64-bit integer fits
        assert (await member.get("/v1/instance_group/vnf-a-ha")).json()["max_impacted_members"] == BIG - 1


async def test_an_event_time_beyond_year_9999_in_utc_is_422(any_api: Api) -> None:
    async with any_api.client("monitor-token") as monitor, any_api.client("admin-token") as admin:
        response = await monitor.post("/v1/event", json=event("compute-1", "e1", time="9999-12-31T23:59:59-23:59"))
        refused(response, "time")
        response = await monitor.post("/v1/event", json=event("compute-1", "e2", time="0001-01-01T00:00:00+01:00"))
        refused(response, "time")
        host = (await admin.get("/v1/hosts/compute-1")).json()["host"]
        assert host["status"] == "UP"


async def test_an_extreme_maintenance_at_is_422(any_api: Api) -> None:
    async with any_api.client("admin-token") as admin:
        body = {"hosts": ["compute-3"], "maintenance_at": "9999-12-31T23:59:59-23:59"}
        refused(await admin.post("/v1/maintenance", json=body), "maintenance_at")
        assert (await admin.get("/v1/maintenance")).json()["sessions"] == []


async def test_text_with_a_nul_character_is_422(any_api: Api) -> None:
    async with any_api.client("monitor-token") as monitor, any_api.client("vnf-a-token") as member:
        refused(await monitor.post("/v1/event", json=event("compute-1", "e\u00001")), "monitor_event_id")
        body = {"name": "bad\u0000name", "callbacks": ["http://127.0.0.1:9/x"]}
        refused(await member.post("/v1/subscriptions", json=body), "name")


async def test_a_float_that_is_not_finite_is_422(any_api: Api) -> None:
    async with any_api.client("monitor-token") as monitor:
        raw = '{"time": "2026-12-07T00:00:00Z", "type": "compute.host.down", "details": {"hostname": "compute-1", '
        raw += '"status": "down", "monitor": "m1", "monitor_event_id": "e1", "injected_at": Infinity}}'
        response = await monitor.post("/v1/event", content=raw, headers={"content-type": "application/json"})
        refused(response, "injected_at")
    async with any_api.client("admin-token") as admin:
        nested = '{"hosts": ["compute-3"], "actions": [{"action": "upgrade", "duration_s": Infinity}]}'
        response = await admin.post("/v1/maintenance", content=nested, headers={"content-type": "application/json"})
        refused(response, "actions")


async def test_a_sequence_number_beyond_64_bits_is_422_not_500(any_api: Api) -> None:
    async with any_api.client("admin-token") as admin:
        refused(await admin.get("/v1/resource-events", params={"after": BIG}), "after")
        assert (await admin.get("/v1/resource-events", params={"after": BIG - 1})).json()["events"] == []


async def test_nul_in_a_path_or_query_is_a_clear_error(any_api: Api) -> None:
    async with any_api.client("admin-token") as admin:
        response = await admin.get("/v1/deliveries", params={"subscription": "a\u0000b"})
        assert response.status_code == 400, response.text
        assert "NUL" in response.json()["error"]["message"]
        response = await admin.get("/v1/alarms/a%00b")
        assert response.status_code == 400, response.text


async def test_a_failure_sent_with_a_bad_value_is_neither_applied_nor_notified(
    any_api: Api, restart: Callable[[Settings], AbstractAsyncContextManager[Api]], receiver: Receiver
) -> None:
    async with any_api.client("admin-token") as admin, any_api.client("monitor-token") as monitor:
        response = await admin.post("/v1/subscriptions", json={"callbacks": [f"{receiver.url}/admin"]})
        assert response.status_code == 201, response.text
        batch = [event("compute-1", "real"), event("compute-2", "bad", time="9999-12-31T23:59:59-23:59")]
        refused(await monitor.put("/events", json=batch), "time")
        host = (await admin.get("/v1/hosts/compute-1")).json()["host"]
        assert host["status"] == "UP"
        assert (await admin.get("/v1/alarms")).json()["alarms"] == []
    assert receiver.received == []
