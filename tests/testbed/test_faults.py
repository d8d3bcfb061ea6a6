"""vigil testbed fault: each kind breaks what it says, records T00, and --clear / repair undo it."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest

from vigil.testbed import bed, plan
from vigil.testbed.faults import Injector, has_loss_rule
from vigil.testbed.netns import run
from vigil.testbed.state import TestbedState, is_alive, is_frozen, pid_of


def vigil(state: TestbedState, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VIGIL_TESTBED_DIR": str(state.dir)}
    return subprocess.run([sys.executable, "-m", "vigil", *args], capture_output=True, text=True, timeout=60, env=env)


def link_up(ns: str, dev: str) -> bool:
    flags = run(["ip", "-n", ns, "-o", "link", "show", dev]).stdout.split("<", 1)[1].split(">", 1)[0].split(",")
    return "UP" in flags


def eventually(check: Callable[[], bool], what: str, within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"not within {within_s} s: {what}"
        time.sleep(0.05)


def vigil_status(state: TestbedState, host: str) -> str:
    with bed.admin_client(state) as client:
        status: str = client.get(f"/v1/hosts/{host}").json()["host"]["status"]
        return status


def test_link_down_sets_the_data_plane_nic_down_and_vigil_takes_the_host_down(testbed: TestbedState) -> None:
    before = time.time()
    result = vigil(testbed, "testbed", "fault", "compute-1", "link-down", "--json")
    assert result.returncode == 0, result.stderr
    fault = json.loads(result.stdout)
    assert fault["host"] == "compute-1"
    assert fault["kind"] == "link-down"
    assert before <= fault["t00"] <= time.time()
    assert not link_up("vgt-h1", plan.NS_DC_IF)
    assert link_up("vgt-h1", plan.NS_MGMT_IF)
    assert [(f.host, f.kind) for f in TestbedState.load(testbed.dir).faults] == [("compute-1", "link-down")]
    eventually(lambda: vigil_status(testbed, "compute-1") == "DOWN", "the agent's report takes compute-1 down")

    result = vigil(testbed, "testbed", "fault", "compute-1", "link-down", "--clear")
    assert result.returncode == 0, result.stderr
    assert link_up("vgt-h1", plan.NS_DC_IF)
    assert TestbedState.load(testbed.dir).faults == []
    eventually(lambda: vigil_status(testbed, "compute-1") == "UP", "the link's recovery brings compute-1 back")


def test_mgmt_down_silences_the_host_and_the_heartbeat_monitor_takes_it_down(testbed: TestbedState) -> None:
    injector = Injector(testbed)
    host = plan.host_by_name(testbed.hosts, "compute-2")
    try:
        fault = injector.inject(host, "mgmt-down")
        assert fault.t00 <= fault.broken
        assert not link_up("vgt-h2", plan.NS_MGMT_IF)
        assert link_up("vgt-h2", plan.NS_DC_IF)
        eventually(lambda: vigil_status(testbed, "compute-2") == "DOWN", "the monitor declares compute-2 lost")
        assert injector.clear(host) == ["mgmt-down"]
        assert link_up("vgt-h2", plan.NS_MGMT_IF)
        eventually(lambda: vigil_status(testbed, "compute-2") == "UP", "compute-2 is back after the hold-down")
    finally:
        injector.close()


def test_loss_installs_an_nftables_rule_in_the_host_namespace_and_clear_removes_it(testbed: TestbedState) -> None:
    result = vigil(testbed, "testbed", "fault", "compute-2", "loss", "30", "--on", "dc")
    assert result.returncode == 0, result.stderr
    assert has_loss_rule("vgt-h2")
    ruleset = run(["ip", "netns", "exec", "vgt-h2", "nft", "list", "table", "inet", plan.NFT_TABLE]).stdout
    assert "numgen random mod 100 < 30" in ruleset
    assert f'"{plan.NS_DC_IF}"' in ruleset
    assert not has_loss_rule("vgt-h1")
    result = vigil(testbed, "testbed", "repair", "compute-2")
    assert result.returncode == 0, result.stderr
    assert "loss" in result.stdout
    assert not has_loss_rule("vgt-h2")


def test_a_bad_loss_percentage_is_refused(testbed: TestbedState) -> None:
    result = vigil(testbed, "testbed", "fault", "compute-1", "loss", "0")
    assert result.returncode == 2
    assert "percentage" in result.stderr
    assert not has_loss_rule("vgt-h1")


def test_agent_freeze_stops_the_agent_and_clear_resumes_it(testbed: TestbedState) -> None:
    pid = pid_of(testbed.dir, "agent-compute-1")
    assert pid is not None
    result = vigil(testbed, "testbed", "fault", "1", "agent-freeze")
    assert result.returncode == 0, result.stderr
    assert "T00" in result.stdout
    assert is_frozen(pid)
    result = vigil(testbed, "testbed", "fault", "1", "agent-freeze", "--clear")
    assert result.returncode == 0, result.stderr
    assert not is_frozen(pid)
    assert is_alive(pid)


def test_agent_kill_kills_the_agent_and_repair_starts_a_new_one(testbed: TestbedState) -> None:
    old = pid_of(testbed.dir, "agent-compute-2")
    assert old is not None
    result = vigil(testbed, "testbed", "fault", "vgt-h2", "agent-kill")
    assert result.returncode == 0, result.stderr
    eventually(lambda: not is_alive(old), "the agent is dead")
    assert pid_of(testbed.dir, "agent-compute-2") is None
    result = vigil(testbed, "testbed", "repair", "compute-2")
    assert result.returncode == 0, result.stderr
    new = pid_of(testbed.dir, "agent-compute-2")
    assert new is not None
    assert new != old
    eventually(lambda: bed.monitored_hosts(testbed) == {"compute-1": "UP", "compute-2": "UP"}, "both hosts heard")


def test_the_service_address_stays_inside_the_testbed(testbed: TestbedState) -> None:
    """The API is reached from here over the testbed's own link; nothing else answers on its address."""
    route = run(["ip", "route", "get", plan.API_CTL_IP]).stdout
    assert f"dev {plan.API_ROOT_IF}" in route
    assert httpx.get(f"{plan.api_url()}/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize("kind", ["nonsense"])
def test_an_unknown_fault_kind_is_refused(testbed: TestbedState, kind: str) -> None:
    result = vigil(testbed, "testbed", "fault", "compute-1", kind)
    assert result.returncode == 2
    assert "unknown fault" in result.stderr
