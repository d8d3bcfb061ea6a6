"""The testbed's BMC network: every host's IPMI and Redfish BMC in ``vgt-bmc``, reached by Debian's fence agents
through ``vigil fence`` from the root namespace and from the controller's; fencing a host really cuts its power
(every process of its namespace killed, its links down, the heartbeat monitor declaring it lost), and powering it
on brings it back."""

import json
import os
import stat
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from testbed.conftest import require_fence_agents
from vigil.cli import app
from vigil.testbed import bed, plan
from vigil.testbed.bmc import read_power
from vigil.testbed.faults import Injector
from vigil.testbed.netns import TestbedError, netns_pids, run
from vigil.testbed.state import TestbedState, is_alive, pid_of


@pytest.fixture(autouse=True, scope="module")
def _fence_agents() -> None:
    """Before the module's testbed is brought up (autouse fixtures come first)."""
    require_fence_agents()


def fence(state: TestbedState, *args: str) -> Result:
    """``vigil fence ARGS --config <the testbed's fence devices> --json``, in this process."""
    return CliRunner().invoke(app, ["fence", *args, "--config", str(state.fence_config), "--json"])


def link_up(ns: str, dev: str) -> bool:
    flags = run(["ip", "-n", ns, "-o", "link", "show", dev]).stdout.split("<", 1)[1].split(">", 1)[0].split(",")
    return "UP" in flags


def eventually(check: Callable[[], bool], what: str, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"not within {within_s} s: {what}"
        time.sleep(0.05)


def heartbeat(state: TestbedState, host: str) -> str | None:
    return (bed.monitored_hosts(state) or {}).get(host)


def vigil_status(state: TestbedState, host: str) -> str:
    with bed.admin_client(state) as client:
        status: str = client.get(f"/v1/hosts/{host}").json()["host"]["status"]
        return status


def addresses(ns: str | None, dev: str) -> set[str]:
    argv = ["ip", *(["-n", ns] if ns else []), "-o", "-4", "addr", "show", "dev", dev]
    return {line.split()[3].split("/")[0] for line in run(argv).stdout.splitlines()}


@pytest.fixture
def restored(testbed: TestbedState) -> Iterator[TestbedState]:
    """Whatever a test did to the hosts' power, every host is on again and UP at the end (the testbed is shared)."""
    yield testbed
    for host in plan.hosts(testbed.hosts):
        if not read_power(testbed.dir, host.name):
            fence(testbed, "on", host.name)
    eventually(
        lambda: bed.monitored_hosts(testbed) == {h.name: "UP" for h in plan.hosts(testbed.hosts)},
        "every host is heard from again",
    )


def test_the_bmc_network_holds_every_hosts_bmc_and_reaches_the_root_and_the_controller(
    testbed: TestbedState,
) -> None:
    state = testbed
    assert addresses(None, plan.BMC_BRIDGE) == {plan.BMC_ROOT_IP}
    assert addresses(plan.CTL_NS, plan.BMC_IF) == {plan.CTL_BMC_IP}
    assert addresses(plan.BMC_NS, plan.BMC_IF) == {"198.18.2.11", "198.18.2.12"}
    for host in ("vgt-h1", "vgt-h2"):  # out of band: the hosts have no link to it
        assert run(["ip", "-n", host, "-o", "link", "show"]).stdout.count(plan.BMC_IF) == 0
    bmc = pid_of(state.dir, bed.BMC_PROCESS)
    assert bmc is not None
    assert bmc in netns_pids(plan.BMC_NS)
    for secret in (state.bmc_password_file, state.path, state.bmc_dir / "config.json"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    assert state.bmc_password_file.read_text().strip() == state.bmc_password
    assert len(state.bmc_password) == 20
    # Vigil itself does not fence (up without fencing): only the file for 'vigil fence' has the devices.
    assert "fencing" not in yaml.safe_load(state.vigil_config.read_text())
    devices = yaml.safe_load(state.fence_config.read_text())["fencing"]["devices"]
    assert {h: d["agent"] for h, d in devices.items()} == {"compute-1": "fence_ipmilan", "compute-2": "fence_redfish"}


@pytest.mark.parametrize(("host", "agent"), [("compute-1", "fence_ipmilan"), ("compute-2", "fence_redfish")])
def test_vigil_fence_status_reads_each_host_on_through_its_agent(testbed: TestbedState, host: str, agent: str) -> None:
    listed = fence(testbed, "list")
    status = fence(testbed, "status", host)

    assert listed.exit_code == 0, listed.output
    assert {d["host"]: d["agent"] for d in json.loads(listed.output)}[host] == agent
    assert testbed.bmc_password not in listed.output
    assert status.exit_code == 0, status.output
    answer = json.loads(status.output)
    assert (answer["ok"], answer["power"]) == (True, "on")


def test_the_controller_reaches_the_bmcs_over_the_bmc_network(testbed: TestbedState) -> None:
    """What Vigil would fence through: the agents run in vgt-ctl, as ``vigil serve`` runs them there."""
    argv = [testbed.python, "-m", "vigil", "fence", "status", "compute-2", "--config", str(testbed.fence_config)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    done = subprocess.run(
        ["ip", "netns", "exec", plan.CTL_NS, *argv, "--json"], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["power"] == "on"


@pytest.mark.timeout(180)
@pytest.mark.parametrize("host", ["compute-1", "compute-2"])  # through IPMI, through Redfish
def test_fencing_a_host_cuts_its_power_and_powering_it_on_brings_it_back(restored: TestbedState, host: str) -> None:
    state = restored
    target = plan.host_by_name(state.hosts, host)
    eventually(lambda: heartbeat(state, host) == "UP", f"{host} is UP before it is fenced")
    old_agent = pid_of(state.dir, bed.agent_name(target))
    assert old_agent is not None

    fenced = fence(state, "off", host, "--yes")

    assert fenced.exit_code == 0, fenced.output
    assert json.loads(fenced.output)["confirmed"] is True
    assert not read_power(state.dir, host)
    assert not is_alive(old_agent)
    assert pid_of(state.dir, bed.agent_name(target)) is None
    assert netns_pids(target.netns) == []
    assert not link_up(target.netns, plan.NS_MGMT_IF)
    assert not link_up(target.netns, plan.NS_DC_IF)
    eventually(lambda: heartbeat(state, host) == "DOWN", f"the heartbeat monitor declares {host} lost")
    eventually(lambda: vigil_status(state, host) == "DOWN", f"Vigil has {host} DOWN")
    status = fence(state, "status", host)
    assert status.exit_code == 0, status.output
    assert json.loads(status.output)["power"] == "off"
    row = {r["host"]: r for r in bed.status(state.dir)["host_status"]}[host]
    assert (row["power"], row["agent"], row["mgmt"], row["dc"]) == ("off", "dead", "DOWN", "DOWN")
    injector = Injector(state)
    try:
        with pytest.raises(TestbedError, match="powered off"):  # a repair would bring a host without power back
            injector.clear(target)
    finally:
        injector.close()
    other = "compute-2" if host == "compute-1" else "compute-1"
    assert heartbeat(state, other) == "UP"  # nothing of the other host was touched

    powered = fence(state, "on", host)

    assert powered.exit_code == 0, powered.output
    assert json.loads(powered.output)["power"] == "on"
    assert read_power(state.dir, host)
    assert link_up(target.netns, plan.NS_MGMT_IF)
    assert link_up(target.netns, plan.NS_DC_IF)
    new_agent = pid_of(state.dir, bed.agent_name(target))
    assert new_agent is not None
    assert new_agent != old_agent
    assert new_agent in netns_pids(target.netns)
    eventually(lambda: heartbeat(state, host) == "UP", f"the heartbeat monitor has {host} UP again")
    eventually(lambda: vigil_status(state, host) == "UP", f"Vigil has {host} UP again")


def test_status_shows_each_hosts_power_and_bmc(testbed: TestbedState) -> None:
    env = {**os.environ, "VIGIL_TESTBED_DIR": str(testbed.dir)}
    done = subprocess.run(
        [testbed.python, "-m", "vigil", "testbed", "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["fence_config"] == str(testbed.fence_config)
    assert report["fencing"] is False
    assert [(r["host"], r["power"], r["bmc_ip"], r["fence_agent"]) for r in report["host_status"]] == [
        ("compute-1", "on", "198.18.2.11", "fence_ipmilan"),
        ("compute-2", "on", "198.18.2.12", "fence_redfish"),
    ]
