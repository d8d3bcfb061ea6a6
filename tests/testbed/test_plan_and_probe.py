"""The testbed's names, addresses, topology and fence devices, and the probe's outage arithmetic (no root needed)."""

import asyncio
import contextlib
import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from vigil.settings import Settings, load_settings
from vigil.testbed import bed, plan
from vigil.testbed.probe import Probe, Sample, outage, read_samples, target_of
from vigil.testbed.scenario import ProbeLog
from vigil.testbed.state import TestbedState, prepare
from vigil.topology.yaml_file import load_topology

BENCHMARKING = [ipaddress.ip_network("198.18.0.0/15")]  # RFC 2544


def test_every_address_is_in_the_benchmarking_range() -> None:
    addresses = [plan.CTL_MGMT_IP, plan.API_ROOT_IP, plan.API_CTL_IP, plan.GW_IP, plan.SERVICE_IP]
    addresses += [plan.BMC_ROOT_IP, plan.CTL_BMC_IP]
    for host in plan.hosts(plan.MAX_HOSTS):
        addresses += [host.mgmt_ip, host.dc_ip, host.bmc_ip]
    assert len(set(addresses)) == len(addresses)
    for address in addresses:
        assert any(ipaddress.ip_address(address) in net for net in BENCHMARKING), address


def test_every_name_has_the_prefix_and_fits_an_interface_name() -> None:
    names = [plan.MGMT_BRIDGE, plan.DC_BRIDGE, plan.CTL_NS, plan.GW_NS, plan.API_ROOT_IF, plan.API_CTL_IF]
    names += [plan.NS_MGMT_IF, plan.NS_DC_IF, plan.NFT_TABLE]
    names += [plan.BMC_BRIDGE, plan.BMC_NS, plan.BMC_IF, plan.BMC_PEER, plan.CTL_BMC_PEER]
    for host in plan.hosts(plan.MAX_HOSTS):
        names += [host.netns, host.mgmt_peer, host.dc_peer]
    for name in names:
        assert name.startswith(plan.PREFIX), name
        assert len(name) <= 15, name


def test_the_bmcs_are_on_their_own_network() -> None:
    bmc_net = ipaddress.ip_network(f"{plan.BMC_NET}.0/{plan.PREFIXLEN}")
    on_it = [plan.BMC_ROOT_IP, plan.CTL_BMC_IP, *(h.bmc_ip for h in plan.hosts(plan.MAX_HOSTS))]
    assert all(ipaddress.ip_address(a) in bmc_net for a in on_it)
    others = [plan.CTL_MGMT_IP, plan.API_CTL_IP, plan.GW_IP, *(h.mgmt_ip for h in plan.hosts(3))]
    assert not any(ipaddress.ip_address(a) in bmc_net for a in others)
    assert plan.HostPlan(1).bmc_ip == "198.18.2.11"


def test_odd_hosts_are_fenced_by_ipmi_and_even_ones_by_redfish_at_their_bmc() -> None:
    devices = plan.fence_devices(3, "/state/bmc/password")
    assert {h: d["agent"] for h, d in devices.items()} == {
        "compute-1": "fence_ipmilan",
        "compute-2": "fence_redfish",
        "compute-3": "fence_ipmilan",
    }
    assert devices["compute-1"]["options"] == {
        "ip": "198.18.2.11",
        "username": plan.BMC_USER,
        "ipport": "623",
        "lanplus": "1",
    }
    assert devices["compute-2"]["options"] == {
        "ip": "198.18.2.12",
        "username": plan.BMC_USER,
        "ipport": "443",
        "ssl_insecure": "1",
        "systems_uri": "/redfish/v1/Systems/compute-2",
    }
    assert all(d["secret_files"] == {"password": "/state/bmc/password"} for d in devices.values())
    settings = Settings(fencing={"devices": devices})  # what Vigil's settings accept
    assert settings.fencing.devices["compute-3"].secret_files == {"password": Path("/state/bmc/password")}


@pytest.mark.parametrize("fencing", [False, True])
def test_the_fence_devices_are_in_vigils_settings_only_when_vigil_fences(tmp_path: Path, fencing: bool) -> None:
    tokens = {"admin": "a", "monitor": "m", "member": "u"}
    state = TestbedState(tmp_path, 2, "vnf-x", "python3", ["vigil-agent"], tokens, fencing=fencing)
    prepare(tmp_path)
    served = load_settings(bed._vigil_config(state, interval_ms=None))
    for_the_cli = load_settings(state.fence_config)
    assert sorted(for_the_cli.fencing.devices) == ["compute-1", "compute-2"]
    assert for_the_cli.fencing.devices["compute-2"].secret_files == {"password": state.bmc_password_file}
    assert served.fencing.devices == (for_the_cli.fencing.devices if fencing else {})


@pytest.mark.parametrize("recovery", [None, {"projects": {"vnf-x": {"action": "evacuate", "method": "auto"}}}])
def test_vigils_recovery_settings_are_what_up_was_given(tmp_path: Path, recovery: dict[str, Any] | None) -> None:
    tokens = {"admin": "a", "monitor": "m", "member": "u"}
    state = TestbedState(tmp_path, 3, "vnf-x", "python3", ["vigil-agent"], tokens, fencing=True, recovery=recovery)
    prepare(tmp_path)
    served = load_settings(bed._vigil_config(state, interval_ms=None))
    policy = served.recovery.projects.get("vnf-x")
    assert (policy.action if policy else None) == ("evacuate" if recovery else None)
    assert served.recovery.default.action == "none"  # other projects' owners still recover their own
    state.save()
    loaded = TestbedState.load(tmp_path)
    assert loaded is not None
    assert loaded.recovery == recovery


def test_the_probe_sends_to_several_targets_in_turn(tmp_path: Path) -> None:
    servers = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        for server in servers:
            server.bind(("127.0.0.1", 0))
            server.setblocking(False)
        targets = [("127.0.0.1", int(s.getsockname()[1])) for s in servers]

        async def answer_then_stop() -> None:
            loop = asyncio.get_running_loop()
            for n, server in enumerate(servers):
                loop.add_reader(server.fileno(), _echo, server, f"i{n}".encode())
            with (tmp_path / "out").open("w") as out:
                probe = Probe(targets, 500.0, 0.2, out)
                loop.call_later(0.1, probe._stop.set)
                await probe.run()
            for server in servers:
                loop.remove_reader(server.fileno())

        asyncio.run(answer_then_stop())
    finally:
        for server in servers:
            server.close()
    answered = [s for s in read_samples(tmp_path / "out") if s.ok]
    assert len(answered) >= 6
    assert all(s.server == f"i{target_of(s.seq, 3)}" for s in answered), answered
    assert {s.server for s in answered} == {"i0", "i1", "i2"}


def _echo(server: socket.socket, name: bytes) -> None:
    with contextlib.suppress(BlockingIOError):
        while True:
            data, peer = server.recvfrom(2048)
            server.sendto(data + b" " + name, peer)


def test_hosts_are_found_by_compute_name_namespace_or_index() -> None:
    assert plan.host_by_name(3, "compute-2") == plan.host_by_name(3, "vgt-h2") == plan.host_by_name(3, "2")
    with pytest.raises(ValueError, match="no host"):
        plan.host_by_name(3, "compute-4")
    with pytest.raises(ValueError, match="1 to 200 hosts"):
        plan.hosts(0)


def test_the_generated_topology_is_valid_with_the_pair_on_two_hosts(tmp_path: Path) -> None:
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(plan.vigil_topology(3, "vnf-x")))
    topology = load_topology(path)
    assert [h.name for h in topology.hosts] == ["compute-1", "compute-2", "compute-3"]
    roles = {i.metadata["role"]: i.host for i in topology.instances}
    assert roles == {"ACT": "compute-1", "STBY": "compute-2"}


def _samples(outcomes: str, start: float = 100.0, step: float = 0.002) -> list[Sample]:
    """'o' answered, 'x' lost, one request every ``step`` s."""
    return [
        Sample(n, start + n * step, c == "o", start + n * step + 0.0005 if c == "o" else None, "a" if n < 5 else "b")
        for n, c in enumerate(outcomes)
    ]


def test_the_outage_runs_from_the_last_answer_before_the_fault_to_the_first_after() -> None:
    samples = _samples("oooooxxxxooo")
    t00 = samples[5].sent - 0.001
    measured = outage(samples, t00)
    assert measured is not None
    assert measured.last_ok_before == samples[4].sent
    assert measured.first_ok_after == samples[9].sent
    assert measured.ms == pytest.approx(10.0)
    assert measured.lost == 4
    assert measured.served_by == "b"


def test_no_outage_is_measured_until_a_request_after_the_fault_is_answered() -> None:
    samples = _samples("oooooxxxx")
    assert outage(samples, samples[5].sent) is None


def test_the_probe_log_is_read_as_it_grows(tmp_path: Path) -> None:
    path = tmp_path / "probe.out"
    log = ProbeLog(path)
    assert log.refresh() == []
    path.write_text("ok 1 100.000000 100.000500 a\nlost 2 100.002000\nok 3 100.0")
    assert [s.seq for s in log.refresh()] == [1, 2]
    with path.open("a") as f:
        f.write("04000 100.004500 b\n")
    samples = log.refresh()
    assert [(s.seq, s.ok, s.server) for s in samples] == [(1, True, "a"), (2, False, None), (3, True, "b")]
    assert read_samples(path) == samples
