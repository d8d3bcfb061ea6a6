"""End to end with Debian's Prometheus, Alertmanager and node_exporter, started by the test on loopback
(vigil.harness.prometheus): node_exporter stopped, Prometheus's NodeDown fires, Alertmanager posts it to
POST /v1/ingest/alertmanager with a Bearer monitor token, and Vigil takes the host down and notifies; node_exporter
started again, the alert resolves and the host comes back."""

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import Receiver, require_programs

from vigil.harness.prometheus import ALERT, missing_binaries, prometheus_stack
from vigil.serving import BackgroundServer
from vigil.settings import Settings

from .conftest import serving


def with_node_exporter_as_compute_1(settings: Settings) -> Settings:
    """node_exporter's instance label, 127.0.0.1:<port>, names compute-1 (its port stripped, then mapped)."""
    alertmanager = settings.ingest.alertmanager.model_copy(update={"hosts": {"127.0.0.1": "compute-1"}})
    return settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"alertmanager": alertmanager})})


async def until(check: Any, within_s: float) -> Any:
    deadline = time.monotonic() + within_s
    while not (value := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within_s} s")
        await asyncio.sleep(0.1)
    return value


@pytest.mark.timeout(180)
async def test_node_exporter_stopped_takes_its_host_down_through_alertmanager_and_back_up(
    settings: Settings, tmp_path: Path
) -> None:
    require_programs(missing_binaries(), "make sysdeps as root: prometheus, prometheus-alertmanager, node-exporter")
    hooks = Receiver()
    async with (
        serving(with_node_exporter_as_compute_1(settings)) as api,
        BackgroundServer(hooks.app) as receiver,
        api.client("admin-token") as admin,
    ):
        subscribed = await admin.post(
            "/v1/subscriptions", json={"callbacks": [f"{receiver.url}/admin"], "filter": {"event_types": ["host.down"]}}
        )
        assert subscribed.status_code == 201, subscribed.text
        async with prometheus_stack(
            tmp_path / "prometheus", f"{api.url}/v1/ingest/alertmanager", "monitor-token"
        ) as stack:
            assert await host(admin, "compute-1") == "UP"
            stopped_at = await stack.stop_node_exporter()
            [notification] = await hooks.wait_for(1, "/admin", within_s=30)
            assert notification["body"]["current"] == "alarm"
            assert await host(admin, "compute-1") == "DOWN"
            [fault] = (await admin.get("/v1/faults", params={"state": "ACTIVE"})).json()["faults"]
            assert fault["hosts"] == ["compute-1"]
            [event] = await reports(admin)
            assert (event["type"], event["outcome"], event["hostname"]) == (
                "compute.host.down",
                "fault_opened",
                "compute-1",
            )
            [alert] = [a for a in await stack.active_alerts() if a["labels"]["alertname"] == ALERT]
            assert event["monitor_event_id"] == alert["fingerprint"]
            assert alert["labels"]["instance"] == stack.instance
            assert stopped_at < notification["received_at"] < stopped_at + 30

            await stack.start_node_exporter()
            await until(lambda: up(admin), within_s=30)
            cleared = [e for e in await reports(admin) if e["type"] == "compute.host.up"]
            assert [e["outcome"] for e in cleared] == ["fault_cleared"]
            assert cleared[0]["monitor_event_id"] == alert["fingerprint"]
        record = (await admin.get("/v1/ingest")).json()["alertmanager"]
        assert record["rejected"] == 0
        assert record["outcomes"].get("fault_opened") == 1
        assert record["outcomes"].get("fault_cleared") == 1


async def host(admin: httpx.AsyncClient, name: str) -> str:
    status: str = (await admin.get(f"/v1/hosts/{name}")).json()["host"]["status"]
    return status


async def up(admin: httpx.AsyncClient) -> bool:
    faults = (await admin.get("/v1/faults", params={"state": "ACTIVE"})).json()["faults"]
    return not faults and await host(admin, "compute-1") == "UP"


async def reports(admin: httpx.AsyncClient) -> list[dict[str, Any]]:
    events = (await admin.get("/v1/fault-events")).json()["fault_events"]
    return [e for e in reversed(events) if e["monitor"] == "alertmanager"]
