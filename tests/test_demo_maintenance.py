"""``vigil demo maintenance``: Doctor's NFVI maintenance test in one process.

The demo runs for real (embedded cloud, Vigil's API, the sample app manager,
the probe); the assertions are the use case's promises: every host
maintained, MAINTENANCE_DONE, no request lost, and no fewer migrations than
the layout makes unavoidable (fewer would mean a host was not emptied).
"""

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.demo_maintenance import (
    DemoSetup,
    MaintenanceDemoResult,
    ServiceProbe,
    fill,
    maintenance_topology,
    minimum_migrations,
    run_maintenance_demo,
)
from vigil.domain.errors import NotFound
from vigil.domain.ids import HostName, InstanceId, ProjectId
from vigil.domain.model import Host, Instance
from vigil.domain.states import AdminState, InstanceState

runner = CliRunner()
PROBE_RATE = 200  # requests per second the probe must send at least


def assert_zero_downtime(result: MaintenanceDemoResult, hosts: int) -> None:
    assert result.error is None, result.error
    assert result.state == "MAINTENANCE_DONE", result.reason
    assert result.hosts_maintained == hosts
    assert result.failed_requests == 0, result.outages
    assert result.migrations >= result.minimum_migrations > 0
    assert result.duration_s is not None
    assert result.requests >= PROBE_RATE * result.duration_s * 0.5
    assert result.ok


# -- the layout -----------------------------------------------------------------------------


@pytest.mark.parametrize(("hosts", "vcpus"), [(3, 4), (4, 4), (5, 3), (16, 4), (64, 2)])
def test_the_default_cloud_leaves_one_hosts_worth_free_and_no_host_empty(hosts: int, vcpus: int) -> None:
    counts = fill(hosts, vcpus, full=False)
    assert sum(counts.values()) == (hosts - 1) * vcpus
    assert all(0 < n <= vcpus for n in counts.values())
    assert max(counts.values()) - min(counts.values()) <= 1  # spread evenly
    assert sum(fill(hosts, vcpus, full=True).values()) == hosts * vcpus


def test_the_topology_puts_the_pair_apart_in_an_anti_affinity_group() -> None:
    document = maintenance_topology(4, 4)
    pair = {i["metadata"]["role"]: i for i in document["instances"] if i["metadata"]["role"] in ("ACT", "STBY")}
    assert (pair["ACT"]["host"], pair["STBY"]["host"]) == ("compute-1", "compute-2")
    assert pair["ACT"]["group"] == pair["STBY"]["group"] == document["server_groups"][0]["id"]
    assert document["server_groups"][0]["policy"] == "anti-affinity"
    per_host = {h["name"]: 0 for h in document["hosts"]}
    for inst in document["instances"]:
        per_host[inst["host"]] += 1
    assert per_host == fill(4, 4, full=False)


def test_two_hosts_cannot_hold_an_anti_affinity_pair_through_maintenance() -> None:
    with pytest.raises(ValueError, match="at least 3 hosts"):
        fill(2, 4, full=False)
    with pytest.raises(ValueError, match="2 vCPUs"):
        fill(4, 1, full=False)


def test_minimum_migrations_moves_the_first_hosts_instances_twice_when_no_host_is_empty() -> None:
    assert minimum_migrations({"a": 3, "b": 3, "c": 2}) == 8 + 2
    assert minimum_migrations({"a": 3, "b": 0, "c": 2}) == 5  # the empty host is maintained first
    assert minimum_migrations({}) == 0


# -- the probe --------------------------------------------------------------------------------


@dataclass
class FakeInventory:
    hosts: dict[str, Host] = field(default_factory=dict)
    instances: dict[str, Instance] = field(default_factory=dict)

    def instance(self, ident: str) -> Instance:
        try:
            return self.instances[ident]
        except KeyError:
            raise NotFound("instance", ident) from None

    def host(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise NotFound("host", name) from None


def inventory() -> FakeInventory:
    found = FakeInventory()
    found.hosts["h1"] = Host(HostName("h1"))
    found.instances["act"] = Instance(InstanceId("act"), "act", ProjectId("p"), HostName("h1"))
    return found


def test_the_app_serves_only_from_an_active_instance_on_a_working_host() -> None:
    inv = inventory()
    probe = ServiceProbe(inv, lambda: "act")
    assert probe.serving()
    inv.hosts["h1"].admin_state = AdminState.DISABLED  # disabled for new instances: still serving
    assert probe.serving()
    for change, undo in (
        (
            lambda: setattr(inv.hosts["h1"], "in_maintenance", True),
            lambda: setattr(inv.hosts["h1"], "in_maintenance", False),
        ),
        (lambda: setattr(inv.hosts["h1"], "forced_down", True), lambda: setattr(inv.hosts["h1"], "forced_down", False)),
        (lambda: setattr(inv.hosts["h1"], "reachable", False), lambda: setattr(inv.hosts["h1"], "reachable", True)),
    ):
        change()
        assert not probe.serving()
        undo()
        assert probe.serving()
    for state in (InstanceState.MIGRATING, InstanceState.ERROR, InstanceState.SHUTOFF, InstanceState.BUILD):
        inv.instances["act"].state = state
        assert not probe.serving(), state
    inv.instances["act"].state = InstanceState.ACTIVE
    assert not ServiceProbe(inv, lambda: "gone").serving()
    assert not ServiceProbe(inv, lambda: None).serving()


async def test_the_probe_counts_every_request_on_its_schedule_and_the_longest_outage() -> None:
    inv = inventory()
    probe = ServiceProbe(inv, lambda: "act", interval_s=0.005)
    loop = asyncio.get_running_loop()
    async with probe.running():
        await asyncio.sleep(0.05)
        inv.hosts["h1"].in_maintenance = True
        started = loop.time()
        await asyncio.sleep(0.1)
        inv.hosts["h1"].in_maintenance = False
        outage_s = loop.time() - started
        await asyncio.sleep(0.05)
    assert probe.requests == pytest.approx(probe.duration_s / 0.005)
    assert probe.requests >= 0.2 / 0.005 * 0.9  # no drift: ~40 requests in ~0.2 s
    assert len(probe.outages) == 1
    assert probe.failures * 5 == probe.longest_outage_ms == pytest.approx(outage_s * 1000, abs=10)


# -- the demo ---------------------------------------------------------------------------------


async def test_a_rolling_maintenance_of_three_hosts_loses_no_request(tmp_path: Path) -> None:
    result = await run_maintenance_demo(DemoSetup(hosts=3), data_dir=tmp_path)
    assert_zero_downtime(result, 3)
    assert all(result.layout.values())  # no host was empty: the PREPARE_MAINTENANCE path
    assert result.scale_in == 0
    assert result.switchovers >= 1  # the ACT's host was maintained too: the app moved it away first
    assert any(step.startswith("PREPARE_MAINTENANCE: ACK") for step in result.app_steps)


async def test_a_full_cloud_is_scaled_in_first_and_still_loses_no_request(tmp_path: Path) -> None:
    result = await run_maintenance_demo(DemoSetup(hosts=3, full=True), data_dir=tmp_path)
    assert_zero_downtime(result, 3)
    assert sum(result.layout.values()) == 3 * 4  # every vCPU was used
    assert result.scale_in > 0
    assert "SCALE_IN: ACK_SCALE_IN" in result.app_steps
    assert any(line.startswith("scaled out") for line in result.app_log)  # back after MAINTENANCE_COMPLETE


def test_the_maintenance_demo_prints_the_issues_json_keys() -> None:
    result = runner.invoke(app, ["demo", "maintenance", "--hosts", "3", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"hosts_maintained", "migrations", "failed_requests", "duration_s", "state"} <= set(report)
    assert report["state"] == "MAINTENANCE_DONE"
    assert report["hosts_maintained"] == 3
    assert report["failed_requests"] == 0
    assert report["migrations"] >= report["minimum_migrations"]
    assert report["requests"] >= PROBE_RATE * report["duration_s"] * 0.5


def test_the_maintenance_demo_refuses_two_hosts() -> None:
    result = runner.invoke(app, ["demo", "maintenance", "--hosts", "2"])
    assert result.exit_code == 2
