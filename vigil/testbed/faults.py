"""Real faults on a testbed host, each with its T00.

=============  =============================================  ======================================
kind           what breaks                                    T00
=============  =============================================  ======================================
link-down      the host's data-plane NIC (``vgt-dc0``) is     immediately before the ``ioctl`` that
               set down inside its namespace (its agent's     sets it down (one syscall, ~0.2 ms)
               carrier watch sees it)
mgmt-down      the management NIC (``vgt-mgmt0``): the        the same, on ``vgt-mgmt0``
               agent's heartbeats and reports stop
loss PCT       nftables in the host's namespace drops PCT %   when ``nft`` returns (the rule is in
               of the packets in and out of one NIC           force from its commit)
               (``--on mgmt``, the default, or ``dc``)
agent-kill     SIGKILL to the host's agent                    immediately before ``kill``
agent-freeze   SIGSTOP to the host's agent                    immediately before ``kill``
=============  =============================================  ======================================

(``tc netem`` would be the usual tool for loss; this machine's kernel has
no netem, so loss is ``numgen random mod 100 < PCT drop``.)

:func:`inject` records the fault in the state file (``vigil testbed
status`` lists it) and returns it; :func:`clear` undoes one kind or every
fault of a host (``repair``): link up, the nft table deleted, SIGCONT, or a
new agent. For repeated injections in one process (the benchmarks),
:class:`Injector` keeps the namespace sockets open, so each injection is
the one syscall. A host its BMC powered off (:mod:`.power`) takes no
fault and no repair: it is powered on through its BMC (``vigil fence on``).
"""

import os
import signal
import subprocess
import time
from typing import Any

from vigil.testbed import plan
from vigil.testbed.bed import agent_name, start_agent
from vigil.testbed.bmc import read_power
from vigil.testbed.netns import Flip, LinkSwitch, TestbedError, in_netns, run
from vigil.testbed.state import InjectedFault, TestbedState, is_frozen, pid_of, recorded_pids

KINDS = ("link-down", "mgmt-down", "loss", "agent-kill", "agent-freeze")
NICS = {"mgmt": plan.NS_MGMT_IF, "dc": plan.NS_DC_IF}


def _loss_rules(dev: str, pct: int) -> str:
    return (
        f"table inet {plan.NFT_TABLE} {{\n"
        f"  chain input {{ type filter hook input priority 0; policy accept; "
        f'iifname "{dev}" numgen random mod 100 < {pct} drop; }}\n'
        f"  chain output {{ type filter hook output priority 0; policy accept; "
        f'oifname "{dev}" numgen random mod 100 < {pct} drop; }}\n'
        "}\n"
    )


def _nft(ns: str, *args: str, stdin: str | None = None) -> tuple[float, float]:
    argv = in_netns(ns, ["nft", *args])
    before = time.time()
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    after = time.time()
    if done.returncode != 0:
        raise TestbedError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return before, after


def has_loss_rule(ns: str) -> bool:
    done = run(in_netns(ns, ["nft", "list", "tables"]), check=False)
    return f"inet {plan.NFT_TABLE}" in done.stdout


class Injector:
    """Injects faults into one testbed, with each namespace's sockets opened once."""

    def __init__(self, state: TestbedState) -> None:
        self.state = state
        self._switches: dict[tuple[str, str], LinkSwitch] = {}

    def switch(self, host: plan.HostPlan, dev: str) -> LinkSwitch:
        key = (host.netns, dev)
        if key not in self._switches:
            self._switches[key] = LinkSwitch(host.netns, dev)
        return self._switches[key]

    def close(self) -> None:
        for switch in self._switches.values():
            switch.close()
        self._switches.clear()

    def _agent_pid(self, host: plan.HostPlan) -> int:
        pid = pid_of(self.state.dir, agent_name(host))
        if pid is None:
            raise TestbedError(f"the agent of {host.name} is not running")
        return pid

    def _powered(self, host: plan.HostPlan) -> None:
        if not read_power(self.state.dir, host.name):
            raise TestbedError(
                f"{host.name} is powered off: power it on through its BMC "
                f"(vigil fence on {host.name} --config {self.state.fence_config})"
            )

    def inject(self, host: plan.HostPlan, kind: str, pct: int | None = None, on: str = "mgmt") -> InjectedFault:
        self._powered(host)
        detail: dict[str, Any] = {}
        if kind == "link-down":
            flip = self.switch(host, plan.NS_DC_IF).set(False)
            detail["nic"] = plan.NS_DC_IF
        elif kind == "mgmt-down":
            flip = self.switch(host, plan.NS_MGMT_IF).set(False)
            detail["nic"] = plan.NS_MGMT_IF
        elif kind == "loss":
            if pct is None or not 0 < pct <= 100:
                raise TestbedError("loss takes a percentage from 1 to 100")
            if on not in NICS:
                raise TestbedError(f"loss applies to the mgmt or the dc NIC, not {on!r}")
            if has_loss_rule(host.netns):
                _nft(host.netns, "delete", "table", "inet", plan.NFT_TABLE)
            _, after = _nft(host.netns, "-f", "-", stdin=_loss_rules(NICS[on], pct))
            flip = Flip(after, after)
            detail.update(pct=pct, nic=NICS[on])
        elif kind in ("agent-kill", "agent-freeze"):
            pid = self._agent_pid(host)
            signum = signal.SIGKILL if kind == "agent-kill" else signal.SIGSTOP
            before = time.time()
            os.kill(pid, signum)
            flip = Flip(before, time.time())
            detail["pid"] = pid
        else:
            raise TestbedError(f"unknown fault {kind!r}; known: {', '.join(KINDS)}")
        fault = InjectedFault(host.name, kind, flip.before, flip.after, detail)
        self.state.faults = [f for f in self.state.faults if not (f.host == host.name and f.kind == kind)]
        self.state.faults.append(fault)
        self.state.save()
        return fault

    def clear(self, host: plan.HostPlan, kind: str | None = None) -> list[str]:
        """Undo ``kind`` on ``host`` (every kind if None); the kinds undone."""
        self._powered(host)
        undone: list[str] = []
        kinds = KINDS if kind is None else (kind,)
        if "link-down" in kinds and not self.switch(host, plan.NS_DC_IF).is_up():
            self.switch(host, plan.NS_DC_IF).set(True)
            undone.append("link-down")
        if "mgmt-down" in kinds and not self.switch(host, plan.NS_MGMT_IF).is_up():
            self.switch(host, plan.NS_MGMT_IF).set(True)
            undone.append("mgmt-down")
        if "loss" in kinds and has_loss_rule(host.netns):
            _nft(host.netns, "delete", "table", "inet", plan.NFT_TABLE)
            undone.append("loss")
        pid = recorded_pids(self.state.dir).get(agent_name(host))
        if "agent-freeze" in kinds and pid is not None and is_frozen(pid):
            os.kill(pid, signal.SIGCONT)
            undone.append("agent-freeze")
        if "agent-kill" in kinds and pid is None:
            start_agent(self.state, host)
            undone.append("agent-kill")
        self.state.faults = [f for f in self.state.faults if not (f.host == host.name and f.kind in kinds)]
        self.state.save()
        return undone


def host_view(
    state: TestbedState,
    host: plan.HostPlan,
    running: dict[str, int],
    vigil_status: str | None,
    heartbeat: str | None,
) -> dict[str, Any]:
    """One row of ``vigil testbed status``."""
    links = {}
    for label, dev in NICS.items():
        try:
            switch = LinkSwitch(host.netns, dev)
            try:
                links[label] = "up" if switch.is_up() else "DOWN"
            finally:
                switch.close()
        except (TestbedError, OSError) as exc:
            links[label] = f"? ({exc})"
    pid = running.get(agent_name(host))
    agent = "dead" if pid is None else ("frozen" if is_frozen(pid) else "running")
    return {
        "host": host.name,
        "netns": host.netns,
        "power": "on" if read_power(state.dir, host.name) else "off",
        "bmc_ip": host.bmc_ip,
        "fence_agent": host.fence_agent,
        "mgmt_ip": host.mgmt_ip,
        "dc_ip": host.dc_ip,
        "mgmt": links["mgmt"],
        "dc": links["dc"],
        "loss_rule": has_loss_rule(host.netns),
        "agent": agent,
        "agent_pid": pid,
        "vigil": vigil_status,
        "heartbeat": heartbeat,
    }
