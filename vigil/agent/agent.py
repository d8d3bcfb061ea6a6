"""``vigil agent``: what runs on each compute host.

It talks to Vigil only over the (management) network, like any monitor:

* heartbeats, UDP, to the heartbeat monitor (:mod:`vigil.agent.heartbeat`);
* southbound events, HTTP, to ``PUT /events`` (:mod:`vigil.agent.reporter`):
  ``network.link.down``/``up`` for each data-plane NIC whose carrier changes
  (:mod:`vigil.agent.carrier`, ``related_to`` the NIC's name) and for the
  data-plane gateway (``related_to`` ``gateway:<ip>``), and
  ``compute.process.down``/``up`` for each checked process (``related_to``
  its name). These families are non-critical in Vigil's inspector: one
  failure of a host raises a warning, two distinct ones within the window
  (both NICs, or a NIC and a process, ...) take the host down.

At start the agent reports the state it finds of everything it watches
(down or up), so Vigil's view is right after an agent restart; after that,
only changes.
"""

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from vigil.agent.carrier import CarrierWatcher
from vigil.agent.heartbeat import HeartbeatSender
from vigil.agent.probes import GatewayProbe, ProcessCheck, alive_instances
from vigil.agent.realtime import make_realtime
from vigil.agent.reporter import EventReporter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    host: str
    vigil_url: str | tuple[str, ...] = "http://127.0.0.1:8770"  # several: the leader and its standbys
    token: str = ""
    heartbeat: tuple[str, int] | tuple[tuple[str, int], ...] | None = ("127.0.0.1", 8771)  # several: each gets all
    interval_ms: float = 20.0
    detect_mult: int = 3
    key: bytes | None = None
    nics: tuple[str, ...] = ()
    gateway: str | None = None
    probe_interval_s: float = 0.1
    probe_mult: int = 3
    processes: tuple[str, ...] = ()
    instances_dir: Path | None = None  # a pid file per instance (<id>.pid): its workload dying fails it alone
    check_interval_s: float = 1.0
    realtime_priority: int = 0  # > 0: SCHED_FIFO at this priority, memory locked, once started
    netns: str | None = field(default=None, repr=False)  # watch NICs and probe from this namespace


def monitors(heartbeat: tuple[str, int] | tuple[tuple[str, int], ...]) -> list[tuple[str, int]]:
    """The heartbeat monitors' addresses: one ``(host, port)``, or several."""
    if isinstance(heartbeat[0], str):
        host, port = heartbeat
        return [(str(host), int(port))]
    return [(str(h), int(p)) for h, p in heartbeat]


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.reporter = EventReporter(config.vigil_url, config.token, config.host, key=config.key)
        self.sender: HeartbeatSender | None = None
        if config.heartbeat:
            self.sender = HeartbeatSender(
                config.host,
                monitors(config.heartbeat),
                interval_ms=config.interval_ms,
                mult=config.detect_mult,
                key=config.key,
            )
        self.carrier = CarrierWatcher(config.nics, self._link, netns=config.netns)
        self.gateway: GatewayProbe | None = None
        if config.gateway is not None:
            self.gateway = GatewayProbe(
                config.gateway,
                self._gateway,
                interval_s=config.probe_interval_s,
                mult=config.probe_mult,
                netns=config.netns,
            )
        self.processes = ProcessCheck(config.processes, self._process, interval_s=config.check_interval_s)
        self.instances: ProcessCheck | None = None
        if config.instances_dir is not None:
            directory = config.instances_dir
            self.instances = ProcessCheck(
                (), self._instance, interval_s=config.check_interval_s, scan=lambda: alive_instances(directory)
            )

    @property
    def reports(self) -> bool:
        """Whether anything is watched that reports events over HTTP."""
        c = self.config
        return bool(c.nics or c.gateway or c.processes or c.instances_dir)

    async def start(self) -> None:
        """Start the watchers, then the heartbeats.

        Heartbeats go last: setting up the watchers (a netlink socket in
        another namespace, the first HTTP connection) can hold the event loop
        for tens of milliseconds, and a heartbeat sent before that would let
        the monitor declare the host UP and then lost within its first
        detection time.

        Real-time priority comes just before the heartbeats, not at exec: a
        starting agent's imports and set-up are a second of CPU, and at
        real-time priority they starve the agents already running, whose
        heartbeats then stop (seen on the testbed: 450 ms gaps while the
        other agents started, and hosts declared lost)."""
        if self.reports:
            await self.reporter.start()
        try:
            self.carrier.start()
            if self.gateway is not None:
                await self.gateway.start()
            await self.processes.start()
            if self.instances is not None:
                await self.instances.start()
            if self.config.realtime_priority > 0:
                for problem in make_realtime(self.config.realtime_priority):
                    log.warning("real-time: %s", problem)
            if self.sender is not None:
                await self.sender.start()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        self.carrier.close()
        if self.gateway is not None:
            await self.gateway.aclose()
        await self.processes.aclose()
        if self.instances is not None:
            await self.instances.aclose()
        if self.sender is not None:
            await self.sender.aclose()
        await self.reporter.aclose()

    async def __aenter__(self) -> "Agent":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- what the watchers found -------------------------------------------

    def _link(self, nic: str, up: bool, at: float, cause: str) -> None:
        self.reporter.report(f"network.link.{'up' if up else 'down'}", at, related_to=nic, cause=f"{nic}: {cause}")

    def _gateway(self, up: bool, at: float, cause: str) -> None:
        gateway = self.config.gateway
        self.reporter.report(
            f"network.link.{'up' if up else 'down'}", at, related_to=f"gateway:{gateway}", cause=f"{gateway}: {cause}"
        )

    def _instance(self, ident: str, up: bool, at: float, cause: str) -> None:
        what = "workload alive" if up else "workload process died"
        self.reporter.report(
            f"compute.instance.{'up' if up else 'down'}", at, related_to=ident, cause=f"{ident}: {what}"
        )

    def _process(self, name: str, up: bool, at: float, cause: str) -> None:
        self.reporter.report(f"compute.process.{'up' if up else 'down'}", at, related_to=name, cause=f"{name}: {cause}")


async def run_agent(config: AgentConfig, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or the task is cancelled)."""
    stop = stop or asyncio.Event()
    async with Agent(config) as agent:
        parts = []
        if agent.sender is not None:
            to = ", ".join(f"udp://{host}:{port}" for host, port in agent.sender.targets)
            parts.append(f"heartbeats to {to} every {config.interval_ms:g} ms x {config.detect_mult}")
        if agent.reports:
            parts.append(f"events to {', '.join(agent.reporter.urls)}")
        log.info("agent of %s: %s", config.host, "; ".join(parts) or "nothing to do")
        await stop.wait()
