"""Rule templates in Vitrage's format evaluated by a running Vigil: the Enea template of seed 004 verbatim, a
condition with ``not``, a causal relationship; each done when its condition holds and undone when it stops holding,
and reloaded without a restart."""

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import EXAMPLE, Api, serving
from test_fault_path import host_down
from test_instance_failure import instance_event

from vigil.settings import SettingsError, load_settings
from vigil.wiring import running

TEMPLATES = Path(__file__).parents[1] / "rules" / "templates"

STANDBY_LOST = """\
metadata:
  version: 3
  name: standby_lost
  type: standard
  description: a member of a server group failed while another member has no alarm on it
entities:
  down:
    category: ALARM
    name: instance.down
  other:
    category: ALARM
  group:
    type: nova.server_group
  failed:
    type: nova.instance
  peer:
    type: nova.instance
scenarios:
  - condition: down [on] failed AND group [contains] failed AND group [contains] peer AND NOT other [on] peer
    actions:
      - raise_alarm:
          target: group
          alarm_name: server_group.standby_lost
          severity: WARNING
"""


def rule_settings(tmp_path: Path, *templates: Path | str, **groups: Any) -> Any:
    """Settings loading ``templates`` (files, or template texts), with other settings ``groups``."""
    folder = tmp_path / "templates"
    folder.mkdir(exist_ok=True)
    for n, template in enumerate(templates):
        if isinstance(template, Path):
            shutil.copy(template, folder / template.name)
        else:
            (folder / f"inline-{n}.yaml").write_text(template)
    return load_settings(
        None,
        data_dir=tmp_path / "vigil",
        cloud={"topology": EXAMPLE},
        inspector={"hold_down_s": 0},
        rules={"paths": [folder]},
        **groups,
    )


async def until(check: Callable[[], Any], within_s: float = 10.0) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def states(admin: httpx.AsyncClient, host: str) -> dict[str, str]:
    listed = (await admin.get("/v1/instances", params={"host": host})).json()["instances"]
    return {i["id"]: i["state"] for i in listed}


async def deduced(admin: httpx.AsyncClient) -> list[dict[str, Any]]:
    alarms: list[dict[str, Any]] = (await admin.get("/v1/alarms", params={"kind": "deduced"})).json()["alarms"]
    return [a for a in alarms if a["state"] == "ACTIVE"]


async def test_the_enea_template_marks_a_zabbix_alarms_host_down_and_undoes_it_when_it_clears(tmp_path: Path) -> None:
    async with (
        serving(rule_settings(tmp_path, TEMPLATES / "enea_mark_inst_err.yaml")) as api,
        api.client("admin-token") as admin,
        api.client("monitor-token") as monitor,
    ):
        before = await states(admin, "compute-1")
        # Zabbix reports a failed process on compute-1 at HIGH: Vigil alone only warns (one failure of two).
        problem = host_down(
            "compute-1",
            "z1",
            type_="compute.process.down",
            severity="HIGH",
            related_to="nova-compute",
            monitor="zabbix",
        )
        assert (await monitor.post("/v1/event", json=problem)).json()["event"]["outcome"] == "aggregated"

        async def marked() -> bool:
            host = (await admin.get("/v1/hosts/compute-1")).json()["host"]
            return bool(host["forced_down"])

        await until(marked)
        done_host = (await admin.get("/v1/hosts/compute-1")).json()["host"]
        done_states = await states(admin, "compute-1")
        ok = host_down(
            "compute-1", "z2", type_="compute.process.up", status="up", related_to="nova-compute", monitor="zabbix"
        )
        await monitor.post("/v1/event", json=ok)

        async def undone() -> bool:
            host = (await admin.get("/v1/hosts/compute-1")).json()["host"]
            return not host["forced_down"]

        await until(undone)
        after_host = (await admin.get("/v1/hosts/compute-1")).json()["host"]
        after_states = await states(admin, "compute-1")
        rules = (await admin.get("/v1/rules")).json()

    assert (done_host["admin_state"], done_host["disabled_reason"]) == (
        "disabled",
        "rule: test_mark_inst_err (test_mark_inst_err-scenario0)",
    )
    assert set(done_states.values()) == {"ERROR"}
    assert (after_host["admin_state"], after_host["forced_down"]) == ("enabled", False)
    assert after_states == before, "each instance back to the state it had"
    [template] = rules["templates"]
    assert template["name"] == "test_mark_inst_err"
    assert template["scenarios"][0]["actions"] == ["mark_down", "set_state", "set_instance_state"]
    assert template["scenarios"][0]["active_actions"] == 0


async def test_a_not_condition_raises_a_deduced_alarm_until_the_peer_fails_too(tmp_path: Path) -> None:
    async with (
        serving(rule_settings(tmp_path, STANDBY_LOST)) as api,
        api.client("admin-token") as admin,
        api.client("monitor-token") as monitor,
    ):
        await monitor.post("/v1/event", json=instance_event("vnf-a-app-act", "i1"))
        [lost] = await until(lambda: deduced(admin))
        await monitor.post("/v1/event", json=instance_event("vnf-a-app-stby", "i2"))

        async def gone() -> bool:
            return not await deduced(admin)

        await until(gone)

    assert (lost["resource_id"], lost["project"], lost["severity"]) == ("vnf-a-ha", "vnf-a", "WARNING")
    assert lost["details"]["alarm_name"] == "server_group.standby_lost"


async def test_a_causal_template_raises_deduced_alarms_on_the_failed_hosts_instances_and_clears_them(
    tmp_path: Path,
) -> None:
    async with (
        serving(rule_settings(tmp_path, TEMPLATES / "host_down_causal.yaml")) as api,
        api.client("admin-token") as admin,
        api.client("monitor-token") as monitor,
    ):
        on_host = set(await states(admin, "compute-1"))
        await monitor.post("/v1/event", json=host_down("compute-1", "d1"))

        async def all_raised() -> list[dict[str, Any]]:
            found = await deduced(admin)
            return found if {a["resource_id"] for a in found} == on_host else []

        raised = await until(all_raised)
        await monitor.post("/v1/event", json=host_down("compute-1", "u1", type_="compute.host.up", status="up"))

        async def cleared() -> bool:
            return not await deduced(admin)

        await until(cleared)

    assert {a["details"]["alarm_name"] for a in raised} == {"Instance Down"}
    assert {a["severity"] for a in raised} == {"CRITICAL"}


async def test_templates_reload_without_a_restart_and_a_bad_one_keeps_the_rules_in_force(tmp_path: Path) -> None:
    settings = rule_settings(tmp_path, STANDBY_LOST)
    folder = tmp_path / "templates"
    async with serving(settings) as api, api.client("admin-token") as admin:
        (folder / "broken.yaml").write_text("metadata:\n  version: 3\n  name: broken\nscenarios: [\n")
        refused = await admin.post("/v1/rules/reload")
        (folder / "broken.yaml").unlink()
        shutil.copy(TEMPLATES / "enea_mark_inst_err.yaml", folder)
        reloaded = await admin.post("/v1/rules/reload")
        names = [t["name"] for t in (await admin.get("/v1/rules")).json()["templates"]]
        async with api.client("vnf-a-token") as member:
            forbidden = await member.get("/v1/rules")

    assert refused.status_code == 422
    assert "broken.yaml:" in refused.json()["error"]["message"]
    assert reloaded.status_code == 200
    assert sorted(names) == ["standby_lost", "test_mark_inst_err"]
    assert forbidden.status_code == 403


def test_a_bad_template_stops_the_start_naming_its_file_and_line(tmp_path: Path) -> None:
    settings = rule_settings(tmp_path, "metadata:\n  version: 3\n  name: x\nentities:\n  h:\n    type: nova.hostt\n")

    async def start() -> None:
        async with running(settings):
            pass

    with pytest.raises(SettingsError, match=r"inline-0\.yaml:\d+"):
        asyncio.run(start())


async def test_without_rules_the_api_says_so(api: Api, admin: httpx.AsyncClient) -> None:
    response = await admin.get("/v1/rules")
    assert response.status_code == 404


BAD_STATE_FIRST = """\
metadata:
  version: 3
  name: suboptimal_then_alarm
  type: standard
  description: a state Vigil's instances do not have, then a deduced alarm, in one scenario
entities:
  host_down:
    category: ALARM
    name: compute.host.down
  host:
    type: nova.host
  instance:
    type: nova.instance
scenarios:
  - condition: host_down [on] host AND host [contains] instance
    actions:
      - set_state:
          target: instance
          state: SUBOPTIMAL
      - raise_alarm:
          target: instance
          alarm_name: degraded_by_host
          severity: MAJOR
"""


async def test_an_action_vigil_cannot_take_is_skipped_and_the_others_still_apply(tmp_path: Path) -> None:
    """Vitrage's aggregated states (SUBOPTIMAL) are not Nova's: that set_state is refused, the alarm still raised."""
    async with (
        serving(rule_settings(tmp_path, BAD_STATE_FIRST)) as api,
        api.client("admin-token") as admin,
        api.client("monitor-token") as monitor,
    ):
        on_host = set(await states(admin, "compute-1"))
        await monitor.post("/v1/event", json=host_down("compute-1", "d1"))

        async def all_raised() -> list[dict[str, Any]]:
            found = await deduced(admin)
            return found if {a["resource_id"] for a in found} == on_host else []

        raised = await until(all_raised)

    assert {a["details"]["alarm_name"] for a in raised} == {"degraded_by_host"}
