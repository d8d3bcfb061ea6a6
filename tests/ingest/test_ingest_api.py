"""POST /v1/ingest/alertmanager and /v1/ingest/zabbix against a real server: reports through the southbound path,
what is ignored, what is refused (nothing of a bad payload applied), and GET /v1/ingest's record."""

import json
from typing import Any

import httpx
import pytest
from api.conftest import Api

from .conftest import serving

STARTED = "2026-03-14T09:26:53.589123456Z"


def alert(name: str = "NodeDown", instance: str = "10.0.0.11:9100", status: str = "firing", **extra: Any) -> dict:  # type: ignore[type-arg]
    labels = {"alertname": name, "job": "node", **({"instance": instance} if instance else {})}
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": f"{name} on {instance}"},
        "startsAt": STARTED,
        "endsAt": "2026-03-14T09:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": f"fp-{name}-{instance}",
        **extra,
    }


def webhook(*alerts: dict, **extra: Any) -> dict:  # type: ignore[type-arg]
    return {
        "version": "4",
        "groupKey": '{}:{alertname="NodeDown"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "vigil",
        "groupLabels": {"alertname": "NodeDown"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
        **extra,
    }


SEED = (
    "host={host} hostid=10105 hostip=10.0.0.13 triggerid=13491 "
    "description=Zabbix agent on {host} is unreachable for 5 minutes "
    "rawtext=Zabbix agent on {{HOST.NAME}} is unreachable for 5 minutes "
    "expression={{{host}:agent.ping.nodata(20s)}}=1 value={value} priority=4 lastchange=2026.03.14 09:26:53"
)


async def post(api: Api, path: str, token: str | None = "monitor-token", **kwargs: Any) -> httpx.Response:
    async with api.client(token) as client:
        return await client.post(path, **kwargs)


async def get(api: Api, path: str) -> Any:
    async with api.client("admin-token") as client:
        response = await client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


async def host_status(api: Api, name: str) -> str:
    host: str = (await get(api, f"/v1/hosts/{name}"))["host"]["status"]
    return host


async def active_faults(api: Api) -> list[str]:
    faults = await get(api, "/v1/faults?state=ACTIVE")
    return sorted(h for f in faults["faults"] for h in f["hosts"])


async def test_a_firing_alert_takes_its_host_down_and_its_resolution_brings_it_back(api: Api) -> None:
    response = await post(api, "/v1/ingest/alertmanager", json=webhook(alert()))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["reports"], body["outcomes"], body["ignored"]) == (1, {"fault_opened": 1}, [])
    [event] = body["events"]
    assert (event["type"], event["hostname"], event["outcome"]) == ("compute.host.down", "compute-1", "fault_opened")
    assert await active_faults(api) == ["compute-1"]
    assert await host_status(api, "compute-1") == "DOWN"

    again = await post(api, "/v1/ingest/alertmanager", json=webhook(alert()))  # repeat_interval: the same alert
    assert again.json()["outcomes"] == {"duplicate": 1}

    resolved = await post(api, "/v1/ingest/alertmanager", json=webhook(alert(status="resolved"), status="resolved"))
    assert resolved.json()["outcomes"] == {"fault_cleared": 1}
    assert await active_faults(api) == []
    events = await get(api, "/v1/fault-events")
    mine = [e for e in events["fault_events"] if e["monitor"] == "alertmanager"]
    assert {e["monitor_event_id"] for e in mine} == {"fp-NodeDown-10.0.0.11:9100"}
    assert {e["alarm"]["name"] for e in mine} == {"NodeDown"}, "the alarm as Alertmanager named it"


async def test_alertmanagers_bearer_token_is_taken_and_only_monitors_and_admins_report(api: Api) -> None:
    bearer = {"Authorization": "Bearer monitor-token"}
    unmapped = webhook(alert("Watchdog"))
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
        assert (await client.post("/v1/ingest/alertmanager", json=unmapped, headers=bearer)).status_code == 200
        assert (await client.post("/v1/ingest/alertmanager", json=unmapped)).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await client.post("/v1/ingest/alertmanager", json=unmapped, headers=wrong)).status_code == 401
    assert (await post(api, "/v1/ingest/alertmanager", "vnf-a-token", json=unmapped)).status_code == 403
    assert (await post(api, "/v1/ingest/zabbix", "vnf-a-token", content="x")).status_code == 403


async def test_alerts_no_mapping_names_are_ignored_counted_and_answered_200(api: Api) -> None:
    response = await post(api, "/v1/ingest/alertmanager", json=webhook(alert("Watchdog"), alert("NicDown")))
    assert response.status_code == 200
    body = response.json()
    assert (body["reports"], body["outcomes"]) == (1, {"aggregated": 1})
    [ignored] = body["ignored"]
    assert ignored["name"] == "Watchdog"
    assert "not mapped" in ignored["reason"]
    record = (await get(api, "/v1/ingest"))["alertmanager"]
    assert (record["received"], record["reports"], record["ignored"], record["rejected"]) == (1, 1, 1, 0)
    assert [(e["kind"], e["what"]) for e in record["recent"]] == [("ignored", "Watchdog (fp-Watchdog-10.0.0.11:9100)")]


async def test_a_payload_with_one_bad_alert_applies_none_of_it_and_is_recorded(api: Api) -> None:
    good, bad = alert(instance="10.0.0.12:9100"), alert(instance="")
    response = await post(api, "/v1/ingest/alertmanager", json=webhook(good, bad))
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert "alerts[1] (NodeDown" in message
    assert "no label 'instance'" in message
    assert "no alert" in message
    assert await active_faults(api) == []
    assert await host_status(api, "compute-2") == "UP"
    record = (await get(api, "/v1/ingest"))["alertmanager"]
    assert (record["rejected"], record["reports"]) == (1, 0)
    assert record["recent"][-1]["kind"] == "rejected"
    assert "no label 'instance'" in record["recent"][-1]["why"]


async def test_an_unknown_host_refuses_the_payload_and_journals_the_reports_as_unknown_host(api: Api) -> None:
    response = await post(api, "/v1/ingest/alertmanager", json=webhook(alert(), alert(instance="10.9.9.9:9100")))
    assert response.status_code == 422
    assert "unknown host" in response.json()["error"]["message"]
    assert await active_faults(api) == []
    events = await get(api, "/v1/fault-events")
    outcomes = sorted(e["outcome"] for e in events["fault_events"] if e["monitor"] == "alertmanager")
    assert outcomes == ["not_applied", "unknown_host"]
    assert (await get(api, "/v1/ingest"))["alertmanager"]["rejected"] == 1


@pytest.mark.parametrize(
    ("body", "status", "problem"),
    [
        (b"{not json", 400, "not valid JSON"),
        (json.dumps(webhook(alert(), version="3")).encode(), 422, "version"),
        (json.dumps(webhook(alert(status="pending"))).encode(), 422, "status"),
        (json.dumps(webhook({"labels": {}})).encode(), 422, "startsAt"),
        (json.dumps({"alerts": "none"}).encode(), 422, "version"),
    ],
)
async def test_bad_alertmanager_bodies_get_a_clear_4xx_and_are_recorded(
    api: Api, body: bytes, status: int, problem: str
) -> None:
    response = await post(api, "/v1/ingest/alertmanager", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert problem in response.text
    record = (await get(api, "/v1/ingest"))["alertmanager"]
    assert (record["received"], record["rejected"]) == (1, 1)
    assert problem in record["recent"][-1]["why"]


async def test_zabbix_enea_message_as_text_opens_and_its_ok_clears_the_fault(api: Api) -> None:
    text = {"content-type": "text/plain"}
    problem = await post(api, "/v1/ingest/zabbix", content=SEED.format(host="compute-3", value=1), headers=text)
    assert problem.status_code == 200, problem.text
    [event] = problem.json()["events"]
    assert (event["type"], event["hostname"], event["outcome"]) == ("compute.host.down", "compute-3", "fault_opened")
    assert await active_faults(api) == ["compute-3"]
    ok = await post(api, "/v1/ingest/zabbix", content=SEED.format(host="compute-3", value=0), headers=text)
    assert ok.json()["outcomes"] == {"fault_cleared": 1}
    assert await active_faults(api) == []
    events = await get(api, "/v1/fault-events")
    zabbix = {e["monitor_event_id"]: e["time"] for e in events["fault_events"] if e["monitor"] == "zabbix"}
    at = "2026-03-14T09:26:53Z"  # lastchange, in the Zabbix server's zone (ingest.zabbix.timezone, UTC)
    assert zabbix == {"trigger-13491:problem": at, "trigger-13491:ok": at}


async def test_zabbix_webhook_json_with_a_host_mapped(api: Api) -> None:
    body = {
        "host": "node-3.domain.tld",
        "triggerid": "13491",
        "eventid": "88",
        "description": "Zabbix agent is not available (for 3m)",
        "value": "1",
        "priority": "5",
    }
    response = await post(api, "/v1/ingest/zabbix", json=body)
    assert response.status_code == 200, response.text
    [event] = response.json()["events"]
    assert (event["hostname"], event["outcome"]) == ("compute-3", "fault_opened")


@pytest.mark.parametrize(
    ("content", "media", "status", "problem"),
    [
        (SEED.format(host="compute-3", value=7).encode(), "text/plain", 422, "value '7'"),
        (b'{"host": "compute-3", "value": "1"}', "application/json", 422, "missing triggerid"),
        (b"{broken", "application/json", 400, "not valid JSON"),
        (b"\xff\xfe", "text/plain", 400, "not UTF-8"),
        (b"<xml/>", "application/xml", 400, "text/plain"),
        (SEED.format(host="compute-99", value=1).encode(), "text/plain", 422, "unknown host"),
    ],
)
async def test_bad_zabbix_bodies_get_a_clear_4xx_apply_nothing_and_are_recorded(
    api: Api, content: bytes, media: str, status: int, problem: str
) -> None:
    response = await post(api, "/v1/ingest/zabbix", content=content, headers={"content-type": media})
    assert response.status_code == status, response.text
    assert problem in response.json()["error"]["message"]
    assert await active_faults(api) == []
    record = (await get(api, "/v1/ingest"))["zabbix"]
    assert (record["received"], record["rejected"], record["reports"]) == (1, 1, 0)
    assert problem in record["recent"][-1]["why"]


async def test_a_zabbix_trigger_no_rule_matches_is_ignored(api: Api) -> None:
    body = {"host": "compute-3", "triggerid": 7, "value": 1, "description": "Free disk space is less than 20%"}
    response = await post(api, "/v1/ingest/zabbix", json=body)
    assert response.status_code == 200
    assert response.json()["reports"] == 0
    assert response.json()["ignored"][0]["id"] == "trigger 7"
    assert (await get(api, "/v1/ingest"))["zabbix"]["ignored"] == 1


async def test_where_reports_must_be_signed_an_unsigned_webhook_is_refused(settings: Any) -> None:
    monitor = settings.monitor.model_copy(update={"key": "k", "require_signed_reports": True})
    async with serving(settings.model_copy(update={"monitor": monitor})) as api:
        response = await post(api, "/v1/ingest/alertmanager", json=webhook(alert()))
        assert response.status_code == 401
        assert await active_faults(api) == []
