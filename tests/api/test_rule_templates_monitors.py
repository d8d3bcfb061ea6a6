"""Rule templates written for the monitors operators run, as Vitrage names their alarms, matched through Vigil's own
ingest: a Zabbix alarm by its trigger's unexpanded name (``rawtext``, TRIGGER.NAME.ORIG) and Zabbix's own severity
(``HIGH``), a Prometheus alarm by its ``alertname``. Each template is done when its alarm fires and undone (or, for a
fence, deliberately not) when it clears."""

from pathlib import Path
from typing import Any

import httpx
from bmc_support import Bmcs, running_bmcs
from conftest import serving
from test_fence_first import device
from test_rule_templates import TEMPLATES, deduced, rule_settings, states, until

AGENT_TRIGGER = "Zabbix agent on {HOST.NAME} is unreachable for 5 minutes"


def zabbix_text(host: str, rawtext: str, value: int, *, priority: int = 4, triggerid: int = 13491) -> str:
    """Enea's media type message (seed 004), as Zabbix sends it once its macros expanded."""
    description = rawtext.replace("{HOST.NAME}", host)
    return (
        f"host={host} hostid=10105 hostip=10.0.0.13 triggerid={triggerid} description={description} "
        f"rawtext={rawtext} expression={{{host}:agent.ping.nodata(20s)}}=1 value={value} priority={priority} "
        "lastchange=2026.03.14 09:26:53"
    )


def alertmanager(name: str, host: str, status: str) -> dict[str, Any]:
    ends = "2026-03-14T09:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z"
    alert = {
        "status": status,
        "labels": {"alertname": name, "instance": f"{host}:9100", "device": "eth1", "severity": "critical"},
        "annotations": {"summary": f"{name} on {host}"},
        "startsAt": "2026-03-14T09:26:53.589Z",
        "endsAt": ends,
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": f"fp-{name}-{host}",
    }
    return {
        "version": "4",
        "status": status,
        "receiver": "vigil",
        "alerts": [alert],
        "groupKey": "{}",
        "groupLabels": {},
    }


# Vigil alone only warns of these (one failure of the two a host needs): what happens beyond that is the template's.
WARN_ONLY = {"zabbix": {"triggers": [{"match": "(?i)zabbix agent|connectivity", "type": "compute.process"}]}}


async def ports(admin: httpx.AsyncClient, host: str) -> dict[str, str]:
    listed = (await admin.get("/v1/ports", params={"host": host})).json()["ports"]
    return {p["id"]: p["data_plane_status"] for p in listed}


async def zabbix(client: httpx.AsyncClient, text: str) -> None:
    response = await client.post("/v1/ingest/zabbix", content=text, headers={"content-type": "text/plain"})
    assert response.status_code == 200, response.text
    assert response.json()["reports"] == 1, response.text


async def test_a_zabbix_alarm_is_matched_by_its_trigger_name_through_included_definitions_and_undone(
    tmp_path: Path,
) -> None:
    templates = [TEMPLATES / "vigil_definitions.yaml", TEMPLATES / "agent_unreachable.yaml"]
    async with (
        serving(rule_settings(tmp_path, *templates, ingest=WARN_ONLY)) as api,
        api.client("admin-token") as admin,
        api.client("monitor-token") as monitor,
    ):
        before, ports_before = await states(admin, "compute-1"), await ports(admin, "compute-1")
        await zabbix(monitor, zabbix_text("compute-1", AGENT_TRIGGER, 1))

        async def done() -> bool:
            return set((await ports(admin, "compute-1")).values()) == {"DOWN"}

        await until(done)
        done_states = await states(admin, "compute-1")
        await zabbix(monitor, zabbix_text("compute-1", AGENT_TRIGGER, 0))

        async def undone() -> bool:
            return await ports(admin, "compute-1") == ports_before

        await until(undone)
        after = await states(admin, "compute-1")
        host = (await admin.get("/v1/hosts/compute-1")).json()["host"]

    assert set(before.values()) == {"ACTIVE"}
    assert ports_before
    assert set(ports_before.values()) == {"ACTIVE"}
    assert set(done_states.values()) == {"ERROR"}, "set_state ERROR of the first scenario"
    assert after == before, "each instance back to the state it had"
    assert not host["forced_down"], "Vigil itself only warned of one failed check"


async def test_the_enea_template_matches_zabbixs_own_severity_through_zabbix_ingest(tmp_path: Path) -> None:
    """Seed 004's path: Zabbix's media type to the Enea template, whose alarm entity asks for ``severity: HIGH``
    (Zabbix's priority 4), while Vigil's own alarm gets the mapped severity."""
    async with (
        serving(rule_settings(tmp_path, TEMPLATES / "enea_mark_inst_err.yaml", ingest=WARN_ONLY)) as api,
        api.client("admin-token") as admin,
        api.client("monitor-token") as monitor,
    ):
        before = await states(admin, "compute-1")
        await zabbix(monitor, zabbix_text("compute-1", AGENT_TRIGGER, 1, priority=3))  # AVERAGE: no match
        await zabbix(monitor, zabbix_text("compute-2", AGENT_TRIGGER, 1, priority=4, triggerid=13492))

        async def marked() -> bool:
            return bool((await admin.get("/v1/hosts/compute-2")).json()["host"]["forced_down"])

        await until(marked)
        [degraded] = [
            a
            for a in (await admin.get("/v1/alarms", params={"kind": "host.degraded"})).json()["alarms"]
            if a["resource_id"] == "compute-2" and a["state"] == "ACTIVE"
        ]
        untouched = (await admin.get("/v1/hosts/compute-1")).json()["host"]
        first_states = await states(admin, "compute-1")
        await zabbix(monitor, zabbix_text("compute-2", AGENT_TRIGGER, 0, priority=4, triggerid=13492))

        async def undone() -> bool:
            return not (await admin.get("/v1/hosts/compute-2")).json()["host"]["forced_down"]

        await until(undone)

    assert not untouched["forced_down"], "an AVERAGE trigger does not match HIGH"
    assert first_states == before
    [reported] = degraded["details"]["events"].values()
    assert (reported["severity"], reported["alarm"]["severity"]) == ("MAJOR", "HIGH"), "Vigil's, and Zabbix's own"
    assert reported["alarm"]["rawtext"] == AGENT_TRIGGER


async def test_a_zabbix_connectivity_alarm_raises_a_deduced_alarm_on_each_instance_and_clears_it(
    tmp_path: Path,
) -> None:
    async with (
        serving(rule_settings(tmp_path, TEMPLATES / "instance_connectivity.yaml", ingest=WARN_ONLY)) as api,
        api.client("admin-token") as admin,
        api.client("monitor-token") as monitor,
    ):
        on_host = set(await states(admin, "compute-2"))
        await zabbix(monitor, zabbix_text("compute-2", "host connectivity problem", 1))

        async def all_raised() -> list[dict[str, Any]]:
            found = await deduced(admin)
            return found if {a["resource_id"] for a in found} == on_host else []

        raised = await until(all_raised)
        await zabbix(monitor, zabbix_text("compute-2", "host connectivity problem", 0))

        async def cleared() -> bool:
            return not await deduced(admin)

        await until(cleared)
        after = await states(admin, "compute-2")

    assert on_host
    assert {a["details"]["alarm_name"] for a in raised} == {"instance_connectivity_problem"}
    assert {a["severity"] for a in raised} == {"CRITICAL"}
    assert set(after.values()) == {"ACTIVE"}, "SUBOPTIMAL is Vitrage's, not an instance state: refused, not applied"


async def test_a_prometheus_nic_alarm_fences_the_host_and_evacuates_it_and_its_resolution_undoes_nothing(
    tmp_path: Path,
) -> None:
    """nic_down_recovery: ``fence`` and ``execute_mistral: evacuate_host``, matched by the alertname; neither is
    undone when the alert resolves (a fenced host waits for an admin)."""
    with running_bmcs(tmp_path) as bmcs:
        await _nic_down_recovery(tmp_path, bmcs)


async def _nic_down_recovery(tmp_path: Path, bmcs: Bmcs) -> None:
    groups = {
        "fencing": {"devices": {h: device(bmcs, h) for h in ("compute-1", "compute-2")}},
        "ingest": {"alertmanager": {"alerts": {"NodeNetworkInterfaceDown": "network.link.down"}}},
        "recovery": {"default": {"action": "evacuate"}},
    }
    async with (
        serving(rule_settings(tmp_path, TEMPLATES / "nic_down_recovery.yaml", **groups)) as api,
        api.client("admin-token") as admin,
        api.client("monitor-token") as monitor,
    ):
        on_host = set(await states(admin, "compute-1"))
        response = await monitor.post(
            "/v1/ingest/alertmanager", json=alertmanager("NodeNetworkInterfaceDown", "compute-1", "firing")
        )
        assert response.status_code == 200, response.text

        async def evacuated() -> bool:
            listed = (await admin.get("/v1/instances")).json()["instances"]
            moved = {i["id"]: i for i in listed if i["id"] in on_host}
            return all(i["host"] != "compute-1" and i["state"] == "ACTIVE" for i in moved.values())

        await until(evacuated, within_s=60)
        powered_after_fence = bmcs.powered("compute-1")
        response = await monitor.post(
            "/v1/ingest/alertmanager", json=alertmanager("NodeNetworkInterfaceDown", "compute-1", "resolved")
        )
        assert response.status_code == 200, response.text
        await until(lambda: _no_degraded(admin))
        host = (await admin.get("/v1/hosts/compute-1")).json()["host"]

    assert on_host
    assert powered_after_fence is False, "fenced through its BMC before anything was evacuated"
    assert bmcs.powered("compute-1") is False, "a fence is not undone"
    assert host["admin_state"] == "disabled", "the fenced host waits for an admin"
    assert bmcs.powered("compute-2") is True


async def _no_degraded(admin: httpx.AsyncClient) -> bool:
    alarms = (await admin.get("/v1/alarms", params={"kind": "host.degraded"})).json()["alarms"]
    return not [a for a in alarms if a["state"] == "ACTIVE"]


WORKFLOW_ONLY = """\
metadata:
  version: 3
  name: nic_down_workflow
  type: standard
  description: the recovery workflow alone, its host given by get_attr as Vitrage's templates give it
entities:
  nic_alarm:
    type: prometheus
    name: NodeNetworkInterfaceDown
  host:
    type: nova.host
scenarios:
  - condition: nic_alarm [on] host
    actions:
      - execute_mistral:
          workflow: evacuate_host
          input:
            host_name: get_attr(host, name)
"""


async def test_a_workflows_get_attr_input_names_each_matching_host_so_each_is_fenced(tmp_path: Path) -> None:
    """One workflow run per binding, its ``host_name`` read off the bound host: two hosts, two fences."""
    template = tmp_path / "nic_down_workflow.yaml"
    template.write_text(WORKFLOW_ONLY)
    with running_bmcs(tmp_path) as bmcs:
        groups = {
            "fencing": {"devices": {h: device(bmcs, h) for h in ("compute-1", "compute-2")}},
            "ingest": {"alertmanager": {"alerts": {"NodeNetworkInterfaceDown": "network.link.down"}}},
        }
        async with (
            serving(rule_settings(tmp_path, template, **groups)) as api,
            api.client("monitor-token") as monitor,
        ):
            both = alertmanager("NodeNetworkInterfaceDown", "compute-1", "firing")
            both["alerts"] += alertmanager("NodeNetworkInterfaceDown", "compute-2", "firing")["alerts"]
            response = await monitor.post("/v1/ingest/alertmanager", json=both)
            assert response.status_code == 200, response.text

            async def fenced() -> bool:
                return not bmcs.powered("compute-1") and not bmcs.powered("compute-2")

            await until(fenced, within_s=30)
