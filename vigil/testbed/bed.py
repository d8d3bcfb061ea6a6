"""Bringing a testbed up, looking at it, and taking it down.

:func:`up` builds the networks of :mod:`.plan` (``ip -batch`` for the
root namespace, one batch per created namespace), starts the hosts' BMCs
(``python -m vigil.testbed.bmc`` in namespace ``vgt-bmc``: an IPMI and a
Redfish BMC for every host, at its BMC address, with one random password
kept in the state; powering a host off there kills every process of its
namespace and takes its links down, see :mod:`.power`), writes Vigil's
configuration into ``<state>/ctl`` (the topology of the testbed's hosts,
a token file with an admin, a monitor and a member token, and settings:
API on every address of ``vgt-ctl``, heartbeat monitor on its management
address, and ``network.link`` critical, since each testbed host has one
data-plane NIC and is useless without it), starts ``vigil serve`` in
``vgt-ctl``, waits for its API and for the BMCs, then starts one ``vigil
agent`` per host namespace and waits until every host is heard from.

Fence devices: one per host, odd hosts through ``fence_ipmilan``, even ones
through ``fence_redfish`` (both BMCs serve every host, so both agents are
used), the password read from ``<state>/bmc/password``. They are always in
``<state>/ctl/fencing.yaml`` (for ``vigil fence ... --config``), and in
Vigil's own settings only with ``fencing=True`` (``up --fencing``): Vigil
fences every host it finds failed (fence first), so a fault injected then
powers its host off, and the host stays disabled in Vigil until an admin
enables it; without it, faults and repairs stay what :mod:`.faults` says.
``recovery`` (Vigil's ``recovery`` settings, e.g. ``{"projects": {"vnf-testbed":
{"action": "evacuate"}}}``) is written into Vigil's settings as given; with
fencing, a fenced host's instances whose policy is ``evacuate`` are rebuilt
on the other hosts (none without: evacuation waits for a confirmed fence).

:func:`down` needs nothing but the prefix: it stops every process in a
``vgt-`` namespace and every process named by a pid file (the BMCs first,
so none powers a host on meanwhile), deletes the ``vgt-`` namespaces
(their veths go with them), the ``vgt-`` links left in the root namespace
(bridges, veth ends), any ``vgt-`` nftables table of the root namespace,
and the state directory. It works after a crash at any point of
:func:`up`, and on a machine with nothing to remove.
"""

import contextlib
import importlib.util
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from vigil.api.auth import Role, new_token
from vigil.api.tokens import TokenEntry, digest, write_entries, write_secret
from vigil.domain.callbacks import LOOPBACK
from vigil.settings import Settings
from vigil.testbed import maintain, plan
from vigil.testbed.bmc import BmcConfig, BmcSpec
from vigil.testbed.netns import (
    TestbedError,
    ip,
    links,
    namespaces,
    netns_pids,
    require_root,
    run,
)
from vigil.testbed.state import (
    TestbedState,
    default_state_dir,
    prepare,
    recorded_pids,
    start_process,
    terminate,
)

DEFAULT_PROJECT = "vnf-testbed"
# The agents run under SCHED_FIFO at this priority (``vigil agent --realtime``), as
# a BFD daemon would: on this 2-core machine, shared with test suites, a burst of
# process start-ups elsewhere otherwise delays an agent by more than 3 x 20 ms, and
# its host is declared lost. Each takes it once started, not at exec (see Agent.start).
AGENT_PRIORITY = 10


def agent_command(python: str = sys.executable) -> list[str]:
    """``python -m vigil agent``, or ``VIGIL_TESTBED_AGENT`` (split like a shell) to run another."""
    override = os.environ.get("VIGIL_TESTBED_AGENT")
    return shlex.split(override) if override else [python, "-m", "vigil", "agent"]


def agent_argv(state: TestbedState, host: plan.HostPlan) -> list[str]:
    return [
        *state.agent,
        "--host",
        host.name,
        "--vigil",
        plan.mgmt_api_url(),
        "--token",
        state.tokens["monitor"],
        "--heartbeat",
        plan.heartbeat_address(),
        "--nic",
        plan.NS_DC_IF,
        "--gateway",
        plan.GW_IP,
    ]


def agent_name(host: plan.HostPlan) -> str:
    return f"agent-{host.name}"


BMC_PROCESS = "bmc"  # the BMC emulators' pid and log name


# -- up ------------------------------------------------------------------------------


def _batch(lines: list[str], ns: str | None = None) -> None:
    argv = ["ip", *(["-n", ns] if ns else []), "-batch", "-"]
    done = subprocess.run(argv, input="\n".join(lines) + "\n", capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise TestbedError(f"{' '.join(argv)}: {done.stderr.strip()}")


def _build_networks(count: int) -> None:
    hosts = plan.hosts(count)
    root: list[str] = []
    for bridge in (plan.MGMT_BRIDGE, plan.DC_BRIDGE, plan.BMC_BRIDGE):
        root += [f"link add {bridge} type bridge stp_state 0 forward_delay 0", f"link set {bridge} up"]
    root.append(f"addr add {plan.BMC_ROOT_IP}/{plan.PREFIXLEN} dev {plan.BMC_BRIDGE}")
    for ns in (plan.CTL_NS, plan.GW_NS, plan.BMC_NS, *(h.netns for h in hosts)):
        root.append(f"netns add {ns}")

    def pair(outside: str, ns: str, inside: str, bridge: str | None) -> None:
        root.append(f"link add {outside} type veth peer name {inside} netns {ns}")
        if bridge:
            root.append(f"link set {outside} master {bridge}")
        root.append(f"link set {outside} up")

    pair(f"{plan.PREFIX}ctl-m", plan.CTL_NS, plan.NS_MGMT_IF, plan.MGMT_BRIDGE)
    pair(plan.API_ROOT_IF, plan.CTL_NS, plan.API_CTL_IF, None)
    root.append(f"addr add {plan.API_ROOT_IP}/{plan.API_PREFIXLEN} dev {plan.API_ROOT_IF}")
    pair(plan.CTL_BMC_PEER, plan.CTL_NS, plan.BMC_IF, plan.BMC_BRIDGE)
    pair(plan.BMC_PEER, plan.BMC_NS, plan.BMC_IF, plan.BMC_BRIDGE)
    pair(f"{plan.PREFIX}gw-d", plan.GW_NS, plan.NS_DC_IF, plan.DC_BRIDGE)
    for h in hosts:
        pair(h.mgmt_peer, h.netns, plan.NS_MGMT_IF, plan.MGMT_BRIDGE)
        pair(h.dc_peer, h.netns, plan.NS_DC_IF, plan.DC_BRIDGE)
    _batch(root)

    def inside(ns: str, addresses: list[tuple[str, str, int]]) -> None:
        lines = ["link set lo up"]
        for dev, address, prefixlen in addresses:
            lines += [f"addr add {address}/{prefixlen} dev {dev}", f"link set {dev} up"]
        _batch(lines, ns)

    inside(
        plan.CTL_NS,
        [
            (plan.NS_MGMT_IF, plan.CTL_MGMT_IP, plan.PREFIXLEN),
            (plan.API_CTL_IF, plan.API_CTL_IP, plan.API_PREFIXLEN),
            (plan.BMC_IF, plan.CTL_BMC_IP, plan.PREFIXLEN),
        ],
    )
    inside(plan.BMC_NS, [(plan.BMC_IF, h.bmc_ip, plan.PREFIXLEN) for h in hosts])
    inside(plan.GW_NS, [(plan.NS_DC_IF, plan.GW_IP, plan.PREFIXLEN)])
    for h in hosts:
        inside(h.netns, [(plan.NS_MGMT_IF, h.mgmt_ip, plan.PREFIXLEN), (plan.NS_DC_IF, h.dc_ip, plan.PREFIXLEN)])


def require_bmc_emulators() -> None:
    for module in ("pyghmi", "sushy_tools"):
        if importlib.util.find_spec(module) is None:
            raise TestbedError(f"the testbed's BMCs need {module}: pip install 'vigil[testbed]'")


def start_bmcs(state: TestbedState) -> int:
    """The BMC emulators in ``vgt-bmc``: every host's IPMI (UDP 623) and Redfish (HTTPS 443) BMC at its BMC
    address, one login (``plan.BMC_USER``, the state's password), power kept in ``<state>/power`` and switching
    the testbed's hosts (:mod:`vigil.testbed.power`). The password is also written alone, for the fence devices."""
    write_secret(state.bmc_password_file, state.bmc_password + "\n")
    config = BmcConfig(
        state_dir=state.dir,
        username=plan.BMC_USER,
        password=state.bmc_password,
        bmcs=[BmcSpec(h.name, h.bmc_ip, plan.IPMI_PORT, plan.REDFISH_PORT) for h in plan.hosts(state.hosts)],
        testbed_dir=state.dir,
    )
    path = state.bmc_dir / "config.json"
    config.write(path)
    return start_process(state.dir, BMC_PROCESS, plan.BMC_NS, [state.python, "-m", "vigil.testbed.bmc", str(path)])


def wait_bmcs(state: TestbedState, timeout_s: float) -> None:
    """Until the BMC emulators say ``ready`` (every BMC listens)."""
    log = state.dir / "logs" / f"{BMC_PROCESS}.log"
    deadline = time.monotonic() + timeout_s
    while True:
        alive = BMC_PROCESS in recorded_pids(state.dir)
        with contextlib.suppress(FileNotFoundError):
            if alive and "ready" in log.read_text().splitlines():
                return
        if not alive:
            raise TestbedError(f"the BMC emulators exited; see {log}")
        if time.monotonic() > deadline:
            raise TestbedError(f"the BMC emulators were not ready within {timeout_s} s; see {log}")
        time.sleep(0.1)


def _vigil_config(state: TestbedState, *, interval_ms: float | None) -> Path:
    """Topology, tokens and settings of the controller, in ``<state>/ctl``."""
    ctl = state.ctl_dir
    topology = ctl / "topology.yaml"
    topology.write_text(yaml.safe_dump(plan.vigil_topology(state.hosts, state.project), sort_keys=False))
    principals = {
        "admin": ("admin", Role.ADMIN),
        "monitor": ("monitoring", Role.MONITOR),
        "member": (state.project, Role.MEMBER),
    }
    tokens_file = ctl / "tokens.yaml"
    write_entries(
        tokens_file, [TokenEntry(digest(state.tokens[k]), p, str(r), name=k) for k, (p, r) in principals.items()]
    )
    write_secret(ctl / "admin-token", state.tokens["admin"] + "\n")
    settings: dict[str, Any] = {
        "data_dir": str(ctl),
        "log_level": "WARNING",
        "server": {"host": "0.0.0.0", "port": plan.API_PORT},  # every address of vgt-ctl, none elsewhere
        "cloud": {"topology": str(topology)},
        "auth": {"tokens_file": str(tokens_file)},
    }
    # The VNF manager listens in the root namespace, on the testbed's benchmarking addresses.
    settings["notifier"] = {"allowed_callback_networks": [plan.TESTBED_NETWORK, *LOOPBACK]}
    # What a maintenance session may do to a testbed host (sessions carry no command line).
    settings["maintenance"] = {
        "actions": {"upgrade": {"plugin": "upgrade"}, maintain.ACTION: maintain.configuration(sys.executable)}
    }
    fields = Settings.model_fields
    if "monitor" in fields:
        settings["monitor"] = {"listen": plan.heartbeat_address()}
        if interval_ms is not None:
            settings["monitor"]["interval_ms"] = interval_ms
    if "inspector" in fields:
        # One data-plane NIC per host: losing it leaves the host useless, so it acts at once.
        settings["inspector"] = {"critical": ["compute.host", "network.switch", "network.link"]}
    # Every host's BMCs speak both; odd hosts are fenced by IPMI, even ones by Redfish, so both are used.
    fencing = {"devices": plan.fence_devices(state.hosts, str(state.bmc_password_file))}
    state.fence_config.write_text(yaml.safe_dump({"data_dir": str(ctl), "fencing": fencing}, sort_keys=False))
    if state.fencing:
        settings["fencing"] = fencing
    if state.recovery is not None:
        settings["recovery"] = state.recovery
    config = state.vigil_config
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    return config


def wait_api(state: TestbedState, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        require_api_link()
        try:
            response = httpx.get(f"{plan.api_url()}/healthz", timeout=1.0)
            if response.status_code == 200:
                return
            last = f"status {response.status_code}"
        except httpx.HTTPError as exc:
            last = str(exc) or type(exc).__name__
        if "serve" not in recorded_pids(state.dir):
            raise TestbedError(f"vigil serve exited; see {state.dir / 'logs' / 'serve.log'}")
        time.sleep(0.1)
    raise TestbedError(f"the controller's API at {plan.api_url()} did not answer within {timeout_s} s ({last})")


def start_agent(state: TestbedState, host: plan.HostPlan) -> int:
    argv = agent_argv(state, host)
    if state.agent_priority > 0:  # the agent takes it itself once started (see vigil.agent.agent)
        argv = [*argv, "--realtime", "--realtime-priority", str(state.agent_priority)]
    return start_process(state.dir, agent_name(host), host.netns, argv)


def require_api_link() -> None:
    """Refuse to talk to the controller's address unless the testbed's link to it exists:
    without it, the address would be routed off this machine (it is not ours then)."""
    if not (Path("/sys/class/net") / plan.API_ROOT_IF).exists():
        raise TestbedError(f"the testbed's link {plan.API_ROOT_IF} is missing: the testbed is not (fully) up")


def admin_client(state: TestbedState, timeout_s: float = 10.0) -> httpx.Client:
    require_api_link()
    return httpx.Client(base_url=plan.api_url(), headers={"X-Auth-Token": state.tokens["admin"]}, timeout=timeout_s)


def monitored_hosts(state: TestbedState) -> dict[str, str] | None:
    """Each host's heartbeat state as the controller's monitor sees it (None if it has none)."""
    with admin_client(state) as client:
        response = client.get("/v1/monitor/hosts")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    body = response.json()
    rows = body.get("hosts", body) if isinstance(body, dict) else body
    return {str(r.get("host") or r.get("name")): str(r.get("state")) for r in rows}


def wait_agents(state: TestbedState, timeout_s: float) -> None:
    """Until every agent runs and, if the controller has a heartbeat monitor, every host is UP in it."""
    deadline = time.monotonic() + timeout_s
    names = [agent_name(h) for h in plan.hosts(state.hosts)]
    while True:
        running = recorded_pids(state.dir)
        dead = [n for n in names if n not in running]
        if dead:
            raise TestbedError(f"agents exited: {', '.join(dead)}; see their logs in {state.dir / 'logs'}")
        try:
            seen = monitored_hosts(state)
        except httpx.HTTPError:
            seen = {}
        if seen is None:
            time.sleep(0.5)  # no monitor to ask: give the agents time to open their watches
            return
        missing = [h.name for h in plan.hosts(state.hosts) if seen.get(h.name) != "UP"]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TestbedError(f"hosts not heard from within {timeout_s} s: {', '.join(missing)}")
        time.sleep(0.1)


def up(
    count: int,
    state_dir: Path | None = None,
    *,
    project: str = DEFAULT_PROJECT,
    agent: list[str] | None = None,
    interval_ms: float | None = None,
    agent_priority: int = AGENT_PRIORITY,
    fencing: bool = False,
    recovery: Mapping[str, Any] | None = None,
    timeout_s: float = 60.0,
) -> TestbedState:
    """Build a testbed of ``count`` hosts and start Vigil and the agents; see the module docstring."""
    require_root()
    require_bmc_emulators()
    plan.hosts(count)  # validates
    directory = state_dir or default_state_dir()
    if TestbedState.load(directory) is not None or namespaces(plan.PREFIX) or links(plan.PREFIX):
        raise TestbedError("a testbed is up already (or left over): run 'vigil testbed down' first")
    prepare(directory)
    tokens = {"admin": new_token(), "monitor": new_token(), "member": new_token()}
    python = sys.executable
    state = TestbedState(
        directory,
        count,
        project,
        python,
        agent or agent_command(python),
        tokens,
        agent_priority,
        bmc_password=secrets.token_hex(10),  # 20 characters: IPMI 2.0's longest password
        fencing=fencing,
        recovery=None if recovery is None else dict(recovery),
    )
    state.save()  # first, so 'down' knows the state directory even if the rest fails
    try:
        _build_networks(count)
        start_bmcs(state)
        config = _vigil_config(state, interval_ms=interval_ms)
        start_process(directory, "serve", plan.CTL_NS, [python, "-m", "vigil", "serve", "--config", str(config)])
        wait_api(state, timeout_s)
        wait_bmcs(state, timeout_s)
        for host in plan.hosts(count):
            start_agent(state, host)
        wait_agents(state, timeout_s)
    except BaseException:
        down(directory)
        raise
    state.ready = True
    state.save()
    return state


def load(state_dir: Path | None = None) -> TestbedState:
    directory = state_dir or default_state_dir()
    state = TestbedState.load(directory)
    if state is None:
        raise TestbedError(f"no testbed is up (no state in {directory}): run 'vigil testbed up'")
    return state


# -- down ------------------------------------------------------------------------------


@dataclass(slots=True)
class Removed:
    processes: list[int] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    nft_tables: list[str] = field(default_factory=list)
    state_dir: str | None = None

    def __bool__(self) -> bool:
        return bool(self.processes or self.namespaces or self.links or self.nft_tables or self.state_dir)


def _root_nft_tables() -> list[tuple[str, str]]:
    if shutil.which("nft") is None:
        return []
    done = run(["nft", "-j", "list", "tables"], check=False)
    if done.returncode != 0:
        return []
    with contextlib.suppress(ValueError, KeyError, TypeError):
        entries = json.loads(done.stdout)["nftables"]
        return [
            (e["table"]["family"], e["table"]["name"])
            for e in entries
            if "table" in e and str(e["table"]["name"]).startswith(plan.PREFIX)
        ]
    return []


def leftovers() -> dict[str, list[str]]:
    """What carries the prefix now: namespaces, root links, root nftables tables."""
    return {
        "namespaces": namespaces(plan.PREFIX),
        "links": links(plan.PREFIX),
        "nft_tables": [f"{f} {n}" for f, n in _root_nft_tables()],
    }


def down(state_dir: Path | None = None) -> Removed:
    """Remove everything the testbed made; see the module docstring."""
    require_root()
    directory = state_dir or default_state_dir()
    removed = Removed()
    # The BMCs first: one switching a host on now would start an agent after the others were found.
    bmcs = set(netns_pids(plan.BMC_NS))
    if (bmc := recorded_pids(directory).get(BMC_PROCESS)) is not None:
        bmcs.add(bmc)
    bmcs.discard(os.getpid())
    terminate(sorted(bmcs))
    pids = set(recorded_pids(directory).values())
    for ns in namespaces(plan.PREFIX):
        pids.update(netns_pids(ns))
    pids.discard(os.getpid())
    terminate(sorted(pids - bmcs))
    removed.processes = sorted(pids | bmcs)
    for family, table in _root_nft_tables():
        run(["nft", "delete", "table", family, table], check=False)
        removed.nft_tables.append(f"{family} {table}")
    for ns in namespaces(plan.PREFIX):
        ip("netns", "del", ns, check=False)
        removed.namespaces.append(ns)
    # Deleting a namespace deletes its veths, and so their peers here; then the bridges.
    for name in links(plan.PREFIX):
        ip("link", "del", name, check=False)
        removed.links.append(name)
    if directory.exists():
        shutil.rmtree(directory, ignore_errors=True)
        removed.state_dir = str(directory)
    deadline = time.monotonic() + 3.0  # the kernel tears namespaces down in the background
    while still := {k: v for k, v in leftovers().items() if v}:
        if time.monotonic() > deadline:
            raise TestbedError(f"could not remove: {still}")
        for name in still.get("links", []):
            ip("link", "del", name, check=False)
        time.sleep(0.05)
    return removed


# -- status ----------------------------------------------------------------------------


def status(state_dir: Path | None = None) -> dict[str, Any]:
    """What is up: the state, the processes, each host's links, loss rules and Vigil's view."""
    from vigil.testbed.faults import host_view  # the faults module knows how to look at a host

    directory = state_dir or default_state_dir()
    state = TestbedState.load(directory)
    report: dict[str, Any] = {"state_dir": str(directory), "up": state is not None, "leftovers": leftovers()}
    if state is None:
        return report
    running = recorded_pids(directory)
    report.update(
        hosts=state.hosts,
        project=state.project,
        ready=state.ready,
        api=plan.api_url(),
        admin_token_file=str(state.ctl_dir / "admin-token"),
        vigil_config=str(state.vigil_config),
        fence_config=str(state.fence_config),
        fencing=state.fencing,
        recovery=state.recovery,
        serve=running.get("serve"),
        bmc=running.get(BMC_PROCESS),
        faults=[{"host": f.host, "kind": f.kind, "t00": f.t00, **f.detail} for f in state.faults],
    )
    vigil_hosts: dict[str, str] = {}
    monitor: dict[str, str] | None = None
    with contextlib.suppress(httpx.HTTPError, ValueError, TestbedError):
        with admin_client(state, timeout_s=2.0) as client:
            response = client.get("/v1/hosts", params={"limit": 1000})
            if response.status_code == 200:
                vigil_hosts = {h["name"]: h["status"] for h in response.json()["hosts"]}
        monitor = monitored_hosts(state)
    report["host_status"] = [
        host_view(state, h, running, vigil_hosts.get(h.name), (monitor or {}).get(h.name))
        for h in plan.hosts(state.hosts)
    ]
    return report
