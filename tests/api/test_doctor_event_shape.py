"""Doctor's southbound event as Doctor's requirements define it, taken as Doctor's sample monitor's is.

OPNFV Doctor's requirements (``docs/development/requirements/05-implementation.rst``, "Fault event
interface") show the event with the details ``hostname``, ``source``, ``cause``, ``severity``, ``status``,
``monitor_id`` and ``monitor_event_id``, and a ``related_to`` that is "the array of IDs which related to
this event"; Vitrage's Doctor datasource takes that shape. Doctor's own sample monitor names itself in
``monitor`` instead. Vigil takes both: ``monitor`` defaults to ``monitor_id``, then to ``source``.
"""

from datetime import datetime
from typing import Any

import httpx


def spec_event(**details: Any) -> dict[str, Any]:
    """The requirements' example event (its time made current)."""
    example = {
        "hostname": "compute-1",
        "source": "sample_monitor",
        "cause": "link-down",
        "severity": "critical",
        "status": "down",
        "monitor_id": "monitor-1",
        "monitor_event_id": "123",
    }
    return {"time": datetime.now().isoformat(), "type": "compute.host.down", "details": {**example, **details}}


async def test_the_requirements_example_event_is_taken_and_its_monitor_id_names_the_monitor(
    admin: httpx.AsyncClient, monitor: httpx.AsyncClient
) -> None:
    event = spec_event()
    answer = await monitor.put("/events", json=[event])
    assert answer.status_code == 200, answer.text
    assert answer.json()["events"][0]["outcome"] == "fault_opened"
    [recorded] = (await admin.get("/v1/fault-events")).json()["fault_events"]
    assert (recorded["monitor"], recorded["monitor_event_id"]) == ("monitor-1", "123")
    again = await monitor.post("/v1/event", json=event)
    assert again.json()["event"]["outcome"] == "duplicate"  # the same (monitor_id, monitor_event_id, time)


async def test_a_monitor_named_only_by_its_source_is_that_monitor(
    admin: httpx.AsyncClient, monitor: httpx.AsyncClient
) -> None:
    event = spec_event()
    del event["details"]["monitor_id"]
    answer = await monitor.post("/v1/event", json=event)
    assert answer.status_code == 200, answer.text
    [recorded] = (await admin.get("/v1/fault-events")).json()["fault_events"]
    assert recorded["monitor"] == "sample_monitor"


async def test_monitor_wins_over_monitor_id_and_source(admin: httpx.AsyncClient, monitor: httpx.AsyncClient) -> None:
    answer = await monitor.post("/v1/event", json=spec_event(monitor="monitor_sample"))
    assert answer.status_code == 200, answer.text
    [recorded] = (await admin.get("/v1/fault-events")).json()["fault_events"]
    assert recorded["monitor"] == "monitor_sample"


async def test_an_event_naming_no_monitor_at_all_is_refused(monitor: httpx.AsyncClient) -> None:
    event = spec_event()
    del event["details"]["monitor_id"], event["details"]["source"]
    answer = await monitor.post("/v1/event", json=event)
    assert answer.status_code == 422
    assert "monitor" in answer.text


async def test_related_to_may_be_the_array_of_ids_the_requirements_describe(
    admin: httpx.AsyncClient, monitor: httpx.AsyncClient
) -> None:
    first = spec_event(monitor_event_id="l-1", related_to=["eth1"])
    second = spec_event(monitor_event_id="l-2", related_to=["eth2", "gateway:192.0.2.1"])
    for event in (first, second):
        event["type"] = "network.link.down"
    answer = await monitor.put("/events", json=[first])
    assert answer.status_code == 200, answer.text
    assert answer.json()["events"][0]["outcome"] == "aggregated"  # one non-critical failure: the host degraded
    answer = await monitor.put("/events", json=[second])
    assert answer.json()["events"][0]["outcome"] == "fault_opened"  # a second, distinct one: the host down
    assert (await admin.get("/v1/hosts/compute-1")).json()["host"]["status"] == "DOWN"
    bad = await monitor.put("/events", json=[spec_event(monitor_event_id="l-3", related_to=["eth1", 3])])
    assert bad.status_code == 422
