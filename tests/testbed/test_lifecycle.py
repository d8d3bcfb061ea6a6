"""vigil testbed up / status / down: what is built, and that nothing is left behind, even after a crash."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed.conftest import require_nothing_up, require_root
from vigil.testbed import bed, plan
from vigil.testbed.netns import TestbedError, links, namespaces, netns_pids
from vigil.testbed.state import TestbedState, is_alive, recorded_pids


def vigil(*args: str, state_dir: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VIGIL_TESTBED_DIR": str(state_dir)}
    return subprocess.run(
        [sys.executable, "-m", "vigil", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def assert_nothing_left(state_dir: Path, pids: list[int]) -> None:
    assert namespaces(plan.PREFIX) == []
    assert links(plan.PREFIX) == []
    assert not state_dir.exists()
    assert [p for p in pids if is_alive(p)] == []


@pytest.mark.timeout(120)
def test_up_builds_the_hosts_with_vigil_and_agents_and_down_removes_everything(state_dir: Path) -> None:
    state = bed.up(2, state_dir)
    assert namespaces(plan.PREFIX) == sorted([plan.CTL_NS, plan.GW_NS, plan.BMC_NS, "vgt-h1", "vgt-h2"])
    assert {plan.MGMT_BRIDGE, plan.DC_BRIDGE, plan.BMC_BRIDGE, plan.API_ROOT_IF} <= set(links(plan.PREFIX))
    running = recorded_pids(state_dir)
    assert set(running) == {"serve", "bmc", "agent-compute-1", "agent-compute-2"}
    assert running["serve"] in netns_pids(plan.CTL_NS)
    assert running["bmc"] in netns_pids(plan.BMC_NS)
    assert running["agent-compute-1"] in netns_pids("vgt-h1")
    with bed.admin_client(state) as client:
        hosts = client.get("/v1/hosts").json()["hosts"]
        assert sorted((h["name"], h["status"]) for h in hosts) == [("compute-1", "UP"), ("compute-2", "UP")]
    assert bed.monitored_hosts(state) == {"compute-1": "UP", "compute-2": "UP"}
    assert TestbedState.load(state_dir) is not None

    status = vigil("testbed", "status", "--json", state_dir=state_dir)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["up"] is True
    assert [(h["host"], h["dc"], h["mgmt"], h["agent"], h["power"]) for h in report["host_status"]] == [
        ("compute-1", "up", "up", "running", "on"),
        ("compute-2", "up", "up", "running", "on"),
    ]
    assert report["bmc"] == running["bmc"]

    with pytest.raises(TestbedError, match="up already"):
        bed.up(1, state_dir)

    down = vigil("testbed", "down", state_dir=state_dir)
    assert down.returncode == 0, down.stderr
    assert_nothing_left(state_dir, list(running.values()))
    with pytest.raises(TestbedError, match="not"):  # never sent off the machine once the testbed is gone
        bed.admin_client(state)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("killed_once", ["bmc", "serve"])  # the BMC emulators just started; Vigil started
def test_down_removes_everything_after_the_orchestrator_was_killed_in_the_middle_of_up(
    state_dir: Path, killed_once: str
) -> None:
    up = subprocess.Popen(
        [sys.executable, "-m", "vigil", "testbed", "up", "--hosts", "2", "--state-dir", str(state_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while killed_once not in recorded_pids(state_dir):  # before the agents are all in
        assert up.poll() is None, "vigil testbed up ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    up.send_signal(signal.SIGKILL)
    up.wait()
    pids = list(recorded_pids(state_dir).values())
    assert "bmc" in recorded_pids(state_dir)  # the BMC emulators are started before Vigil
    assert plan.BMC_NS in namespaces(plan.PREFIX)  # the crash left the testbed half built

    down = vigil("testbed", "down", state_dir=state_dir)
    assert down.returncode == 0, down.stderr
    assert "removed" in down.stdout
    assert_nothing_left(state_dir, pids)


def test_down_with_nothing_up_removes_nothing(tmp_path: Path) -> None:
    require_root()
    require_nothing_up()
    result = vigil("testbed", "down", state_dir=tmp_path / "none")
    assert result.returncode == 0, result.stderr
    assert "nothing to remove" in result.stdout
    status = vigil("testbed", "status", state_dir=tmp_path / "none")
    assert status.returncode == 0
    assert "no testbed is up" in status.stdout


def test_commands_that_need_a_testbed_say_there_is_none(tmp_path: Path) -> None:
    require_root()
    result = vigil("testbed", "fault", "compute-1", "link-down", state_dir=tmp_path / "none")
    assert result.returncode == 2
    assert "no testbed is up" in result.stderr
