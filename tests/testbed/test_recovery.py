"""Fence first, then recover, on real namespaces: ``vigil demo recovery --testbed`` (a host that only lost its
management network is fenced by Vigil through its BMC while its instances still answer, then they are evacuated
and answer elsewhere, and never again from the failed host), and a host Vigil fenced that is powered on again is
not re-admitted until an admin enables it."""

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from testbed.conftest import require_fence_agents, require_nothing_up, require_root
from vigil.cli import app
from vigil.testbed import bed, plan
from vigil.testbed.bmc import read_power
from vigil.testbed.faults import Injector
from vigil.testbed.state import TestbedState, is_alive, pid_of


def eventually(check: Callable[[], bool], what: str, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"not within {within_s} s: {what}"
        time.sleep(0.05)


@pytest.mark.timeout(420)
def test_the_testbed_recovery_demo_fences_before_recovering_and_the_failed_host_never_answers_after() -> None:
    require_root()
    require_fence_agents()
    require_nothing_up()

    run = subprocess.run(
        [sys.executable, "-m", "vigil", "demo", "recovery", "--testbed", "--json"],
        capture_output=True,
        text=True,
        timeout=400,
    )

    assert run.returncode == 0, run.stderr + run.stdout
    report = json.loads(run.stdout)
    assert report["error"] is None, report
    failed, instances = report["host"], report["instances"]
    assert f"{bed.DEFAULT_PROJECT}-act-1" in instances  # the active's host failed, and it held workers too
    assert len(instances) >= 2
    # The fault left the host's data plane up: its instances answered after Vigil had declared it lost...
    assert report["answers_after_t01"] > 0, report
    # ...and not once after the fence was confirmed, though asked all along.
    assert report["requests_after_fence"] > 0, report
    assert report["answers_after_fence"] == 0, report
    assert report["two_hosts"] == 0, report
    assert report["double_active"] == 0, report
    checkpoints = report["checkpoints_ms"]
    assert checkpoints["fence_requested"] < checkpoints["fence_confirmed"] <= checkpoints["recovery_started"]
    assert checkpoints["recovery_started"] < checkpoints["recovered"]
    assert report["fence_ms"] == checkpoints["fence_confirmed"]
    assert report["recovered_ms"] >= checkpoints["recovered"]
    # Every instance of the failed host ACTIVE on another one, its new process started after the fence, answering.
    assert report["instances_recovered"] == len(instances)
    assert sorted(report["recovered"]) == sorted(instances)
    for instance, seen in report["recovered"].items():
        assert seen["host"] != failed, instance
        assert report["fence_ms"] < seen["serving_ms"] <= seen["answered_ms"] <= report["recovered_ms"], seen
    require_nothing_up()  # it took its testbed down again


def host(state: TestbedState, name: str) -> dict[str, Any]:
    with bed.admin_client(state) as client:
        response = client.get(f"/v1/hosts/{name}")
        response.raise_for_status()
        found: dict[str, Any] = response.json()["host"]
        return found


def fault_of(state: TestbedState, name: str) -> dict[str, Any] | None:
    with bed.admin_client(state) as client:
        faults = client.get("/v1/faults").raise_for_status().json()["faults"]
    mine = [f for f in faults if (f["resource_type"], f["resource_id"]) == ("host", name)]
    return mine[-1] if mine else None


def checkpoints(state: TestbedState, fault: str) -> dict[str, float]:
    with bed.admin_client(state) as client:
        found: dict[str, float] = client.get(f"/v1/faults/{fault}/profile").raise_for_status().json()["checkpoints"]
        return found


@pytest.mark.timeout(300)
def test_a_host_vigil_fenced_and_powered_on_again_stays_disabled_until_an_admin_enables_it(state_dir: Path) -> None:
    require_fence_agents()
    state = bed.up(2, state_dir, fencing=True)
    name = "compute-2"  # fenced through Redfish
    target = plan.host_by_name(state.hosts, name)
    eventually(lambda: host(state, name)["status"] == "UP", f"{name} is UP before its fault")
    old_agent = pid_of(state.dir, bed.agent_name(target))
    assert old_agent is not None
    injector = Injector(state)
    try:
        injector.inject(target, "mgmt-down")
    finally:
        injector.close()

    eventually(lambda: fault_of(state, name) is not None, f"Vigil has a fault of {name}")
    fault = fault_of(state, name)
    assert fault is not None
    eventually(lambda: "fence_confirmed" in checkpoints(state, fault["id"]), f"Vigil fenced {name}")
    assert "fence_failed" not in checkpoints(state, fault["id"])
    assert not read_power(state.dir, name)
    assert not is_alive(old_agent)
    fenced = host(state, name)
    assert (fenced["admin_state"], fenced["forced_down"]) == ("disabled", True)
    assert fenced["disabled_reason"].startswith("fenced: ")

    powered = CliRunner().invoke(app, ["fence", "on", name, "--config", str(state.fence_config), "--json"])

    assert powered.exit_code == 0, powered.output
    assert read_power(state.dir, name)
    new_agent = pid_of(state.dir, bed.agent_name(target))
    assert new_agent is not None
    assert new_agent != old_agent
    eventually(lambda: (bed.monitored_hosts(state) or {}).get(name) == "UP", f"{name}'s heartbeats are back")
    with bed.admin_client(state) as client:
        eventually(
            lambda: client.get(f"/v1/faults/{fault['id']}").json()["fault"]["state"] == "CLEARED",
            f"the fault of {name} is cleared",
        )
    back = host(state, name)
    assert (back["reachable"], back["forced_down"], back["admin_state"]) == (True, False, "disabled")
    assert back["disabled_reason"].startswith("fenced: ")
    assert back["status"] == "MAINTENANCE"
    time.sleep(2.5)  # past the monitor's and the inspector's hold-downs: nothing re-admits it by itself
    assert host(state, name)["admin_state"] == "disabled"

    with bed.admin_client(state) as client:
        enabled = client.post(f"/v1/hosts/{name}/action", json={"action": "enable"})

    assert enabled.status_code == 200, enabled.text
    after = host(state, name)
    assert (after["admin_state"], after["status"]) == ("enabled", "UP")
    assert not after["disabled_reason"] or not after["disabled_reason"].startswith("fenced: ")
