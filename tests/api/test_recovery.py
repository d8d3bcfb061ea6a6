"""Recovery after a confirmed fence: a fenced host's instances evacuated by their policy on the planner's rules
(capacity, anti-affinity), reserved hosts by Masakari's methods, and what fits nowhere left ERROR with
host.recovery_failed; nothing is recovered from a host whose fence failed."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from bmc_support import Bmcs, running_bmcs
from conftest import serving
from support import Receiver
from test_fault_path import subscribe
from test_fence_first import device, profile_until, report, traits

from vigil.serving import BackgroundServer
from vigil.settings import Settings, load_settings

TOPOLOGY = {
    "switches": [{"name": "tor-1"}],
    "hosts": [
        {"name": "compute-1", "switch": "tor-1", "vcpus": 8},
        {"name": "compute-2", "switch": "tor-1", "vcpus": 8},
        {"name": "compute-3", "switch": "tor-1", "vcpus": 4, "admin_state": "disabled", "disabled_reason": "spare"},
        {"name": "compute-4", "switch": "tor-1", "vcpus": 2},
    ],
    "projects": [{"id": "vnf-a", "name": "VNF A"}],
    "server_groups": [{"id": "ha", "name": "ha", "project": "vnf-a", "policy": "anti-affinity"}],
    "instances": [
        {"id": "act", "name": "act", "project": "vnf-a", "vcpus": 2, "group": "ha", "host": "compute-1"},
        {"id": "stby", "name": "stby", "project": "vnf-a", "vcpus": 2, "group": "ha", "host": "compute-2"},
        {"id": "w1", "name": "w1", "project": "vnf-a", "vcpus": 2, "host": "compute-1"},
        {"id": "w2", "name": "w2", "project": "vnf-a", "vcpus": 4, "host": "compute-1"},
    ],
}
EVACUATED = ("act", "w1", "w2")


def recovery_settings(tmp_path: Path, bmcs: Bmcs, recovery: dict[str, Any], password: str | None = None) -> Settings:
    topology = tmp_path / "cloud.yaml"
    topology.write_text(yaml.safe_dump(TOPOLOGY))
    fence = device(bmcs, "compute-1", **({"password": password} if password else {}))
    return load_settings(
        None,
        data_dir=tmp_path / "vigil",
        cloud={"topology": topology, "evacuate_s": 0.05},
        notifier={"retry_initial_s": 0.01, "retry_max_delay_s": 0.05, "retry_horizon_s": 30, "timeout_s": 2.0},
        inspector={"hold_down_s": 0},
        fencing={"devices": {"compute-1": fence}},
        recovery=recovery,
    )


@pytest.fixture
def bmcs(tmp_path: Path) -> Iterator[Bmcs]:
    with running_bmcs(tmp_path) as running:
        yield running


async def where(admin: httpx.AsyncClient) -> dict[str, tuple[str, str]]:
    """Each instance's (host, state)."""
    instances = (await admin.get("/v1/instances")).json()["instances"]
    return {i["id"]: (i["host"], i["state"]) for i in instances}


async def test_a_fenced_hosts_instances_are_evacuated_on_the_placement_rules(bmcs: Bmcs, tmp_path: Path) -> None:
    hooks = Receiver()
    settings = recovery_settings(tmp_path, bmcs, {"default": {"action": "evacuate"}})
    async with BackgroundServer(hooks.app) as receiver, serving(settings) as api, api.client("admin-token") as admin:
        async with api.client("vnf-a-token") as vnf_a:
            await subscribe(vnf_a, f"{receiver.url}/vnf-a", filter={"event_types": ["instance.down"]})
        fault = await report(api, "compute-1", "e1")

        checkpoints = await profile_until(admin, fault, lambda c: "recovered" in c)
        placed = await where(admin)
        notes = hooks.delivered("/vnf-a")
        failed = (await admin.get("/v1/alarms", params={"kind": "host.recovery_failed"})).json()["alarms"]

    assert checkpoints["fence_confirmed"] <= checkpoints["recovery_started"] <= checkpoints["recovered"]
    assert {i: placed[i][1] for i in EVACUATED} == dict.fromkeys(EVACUATED, "ACTIVE")
    assert placed["act"][0] == "compute-4", "anti-affinity: not beside stby on compute-2, and compute-3 is disabled"
    assert placed["w1"][0] == placed["w2"][0] == "compute-2"
    assert failed == []
    last = traits(notes[-1])
    assert (last["fence"], last["recovery"], last["not_recovered"]) == ("confirmed", "done", "")
    assert sorted(str(last["recovered"]).split(",")) == sorted(EVACUATED)
    assert not re.search(r"compute-\d", str([n["body"] for n in notes])), "owners are never told a host's name"


async def test_what_fits_nowhere_stays_error_and_admins_get_host_recovery_failed(bmcs: Bmcs, tmp_path: Path) -> None:
    settings = recovery_settings(tmp_path, bmcs, {"default": {"action": "evacuate"}})
    async with serving(settings) as api, api.client("admin-token") as admin:
        disabled = await admin.post("/v1/hosts/compute-4/action", json={"action": "disable", "reason": "full"})
        assert disabled.status_code == 200, disabled.text
        fault = await report(api, "compute-1", "e1")

        await profile_until(admin, fault, lambda c: "recovered" in c)
        placed = await where(admin)
        [alarm] = (await admin.get("/v1/alarms", params={"kind": "host.recovery_failed"})).json()["alarms"]
        hosts = {h["name"]: h for h in (await admin.get("/v1/hosts")).json()["hosts"]}

    assert placed["act"] == ("compute-1", "ERROR"), "no host left for act beside the anti-affinity rule"
    assert (placed["w1"], placed["w2"]) == (("compute-2", "ACTIVE"), ("compute-2", "ACTIVE"))
    assert alarm["resource_ids"] == ["act"]
    assert "act" in alarm["details"]["not_recovered"]
    assert sum(placed[i][1] == "ACTIVE" and placed[i][0] == "compute-2" for i in placed) == 3  # stby, w1, w2: 8 vCPUs
    assert hosts["compute-2"]["vcpus"] == 8


async def test_rh_priority_fills_the_reserved_host_first_and_enables_it(bmcs: Bmcs, tmp_path: Path) -> None:
    recovery = {"default": {"action": "evacuate", "method": "rh_priority"}, "reserved_hosts": ["compute-3"]}
    settings = recovery_settings(tmp_path, bmcs, recovery)
    async with serving(settings) as api, api.client("admin-token") as admin:
        fault = await report(api, "compute-1", "e1")
        await profile_until(admin, fault, lambda c: "recovered" in c)
        placed = await where(admin)
        reserved = (await admin.get("/v1/hosts/compute-3")).json()["host"]

    assert placed["act"] == ("compute-3", "ACTIVE")
    assert placed["w1"] == ("compute-3", "ACTIVE")
    assert placed["w2"] == ("compute-2", "ACTIVE"), "4 vCPUs: no room left on the reserved host"
    assert reserved["admin_state"] == "enabled"


async def test_a_project_whose_policy_is_none_is_left_to_its_owner(bmcs: Bmcs, tmp_path: Path) -> None:
    recovery = {"default": {"action": "evacuate"}, "projects": {"vnf-a": {"action": "none"}}}
    async with serving(recovery_settings(tmp_path, bmcs, recovery)) as api, api.client("admin-token") as admin:
        fault = await report(api, "compute-1", "e1")
        checkpoints = await profile_until(admin, fault, lambda c: "fence_confirmed" in c)
        placed = await where(admin)

    assert "recovery_started" not in checkpoints
    assert {i: placed[i] for i in EVACUATED} == dict.fromkeys(EVACUATED, ("compute-1", "ERROR"))


async def test_nothing_is_recovered_from_a_host_whose_fence_failed(bmcs: Bmcs, tmp_path: Path) -> None:
    settings = recovery_settings(tmp_path, bmcs, {"default": {"action": "evacuate"}}, password="wrong")
    async with serving(settings) as api, api.client("admin-token") as admin:
        fault = await report(api, "compute-1", "e1")
        checkpoints = await profile_until(admin, fault, lambda c: "fence_failed" in c)
        placed = await where(admin)

    assert "recovery_started" not in checkpoints
    assert {i: placed[i] for i in EVACUATED} == dict.fromkeys(EVACUATED, ("compute-1", "ERROR"))
    assert bmcs.powered("compute-1")


def test_a_method_using_reserved_hosts_needs_some() -> None:
    from vigil.settings import SettingsError

    with pytest.raises(SettingsError, match=r"needs recovery\.reserved_hosts"):
        load_settings(None, recovery={"default": {"action": "evacuate", "method": "reserved_host"}})


async def test_a_recovery_cut_off_by_a_stop_ends_after_the_next_start(bmcs: Bmcs, tmp_path: Path) -> None:
    slow = recovery_settings(tmp_path, bmcs, {"default": {"action": "evacuate"}})
    slow = slow.model_copy(update={"cloud": slow.cloud.model_copy(update={"evacuate_s": 60.0})})
    async with serving(slow) as api, api.client("admin-token") as admin:
        fault = await report(api, "compute-1", "e1")
        await profile_until(admin, fault, lambda c: "recovery_started" in c)
    # stopped with the evacuations under way: first steps durable (BUILD on their targets), no end recorded

    quick = recovery_settings(tmp_path, bmcs, {"default": {"action": "evacuate"}})
    async with serving(quick) as api, api.client("admin-token") as admin:
        checkpoints = await profile_until(admin, fault, lambda c: "recovered" in c)
        placed = await where(admin)

    assert "fence_failed" not in checkpoints
    assert {i: placed[i][1] for i in EVACUATED} == dict.fromkeys(EVACUATED, "ACTIVE")
    assert all(placed[i][0] != "compute-1" for i in EVACUATED)
