"""The crash harness: kill ``vigil serve`` with SIGKILL at random and named points, then check.

One run keeps one store (a SQLite data directory, or a PostgreSQL database)
and one set of consumers across many rounds. A round:

1. starts ``vigil serve`` (``vigil.harness.server``), half the time with
   ``VIGIL_CRASH_AT`` set to a random crash point and count
   (``vigil.crashpoints``);
2. runs a storm: monitors (``vigil.harness.monitors``) report failures and
   recoveries of their hosts concurrently, one at a time per host, some in
   batches, some repeated; an admin now and then starts a maintenance
   session on a host the monitors also report on;
3. kills the server: it dies at its crash point, or the harness sends
   SIGKILL at a random moment;
4. restarts it, waits for held recoveries and interrupted sessions to
   settle, and checks that what was acknowledged before the kill is there;
5. lets the monitors send again whatever got no 2xx, waits until the
   deliveries to live consumers have ended, and checks every invariant
   (``vigil.harness.invariants``);
6. stops the server cleanly for the next round.

With high availability (``ha``, PostgreSQL only), two servers run on the
store throughout: each round storms the leader and kills it (SIGKILL) at a
random moment; the standby takes over, the monitors send to it what got no
2xx (as through a service address), the killed server comes back as the
standby, and the same invariants are checked on the new leader (flapping
leadership, one kill per round). The round records the takeover: from the
kill to the standby answering as leader.

Consumers: one per project and format (Aodh, SOL 003), a slow one (each
answer 0.3 s late) and an admin one, all recording every body; and one
subscription whose callback nobody listens on (its deliveries keep
retrying). ``python -m bench.crash`` runs it at scale; the test suite runs a
few rounds on each store.
"""

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from vigil.crashpoints import POINTS
from vigil.domain.callbacks import LOOPBACK
from vigil.harness.consumers import Recorder
from vigil.harness.invariants import check_notifications, check_state, snapshot
from vigil.harness.monitors import Monitor
from vigil.harness.server import ServeProcess, free_port

log = logging.getLogger(__name__)

ADMIN, MONITOR = "harness-admin", "harness-monitor"
PROJECTS = ("p1", "p2", "p3")
HOSTS = [f"compute-{n}" for n in range(1, 7)]
MAINTAINED = ["spare-1", "spare-2"]  # empty hosts: maintenance needs no app manager's answer

TOPOLOGY = """
switches: [{name: tor-1}, {name: tor-2}]
hosts:
  - {name: compute-1, switch: tor-1, vcpus: 8}
  - {name: compute-2, switch: tor-1, vcpus: 8}
  - {name: compute-3, switch: tor-1, vcpus: 8}
  - {name: compute-4, switch: tor-2, vcpus: 8}
  - {name: compute-5, switch: tor-2, vcpus: 8}
  - {name: compute-6, switch: tor-2, vcpus: 8}
  - {name: spare-1, switch: tor-1, vcpus: 8}
  - {name: spare-2, switch: tor-2, vcpus: 8}
projects: [{id: p1, name: P1}, {id: p2, name: P2}, {id: p3, name: P3}]
server_groups:
  - {id: p1-ha, name: ha, project: p1, policy: anti-affinity}
  - {id: p2-ha, name: ha, project: p2, policy: anti-affinity}
instances:
  - {id: p1-act, name: act, project: p1, host: compute-1, group: p1-ha, metadata: {role: ACT}}
  - {id: p1-stby, name: stby, project: p1, host: compute-4, group: p1-ha, metadata: {role: STBY}}
  - {id: p1-w1, name: w1, project: p1, host: compute-2}
  - {id: p2-act, name: act, project: p2, host: compute-2, group: p2-ha}
  - {id: p2-stby, name: stby, project: p2, host: compute-5, group: p2-ha}
  - {id: p2-w1, name: w1, project: p2, host: compute-3}
  - {id: p3-w1, name: w1, project: p3, host: compute-3}
  - {id: p3-w2, name: w2, project: p3, host: compute-6}
  - {id: p3-w3, name: w3, project: p3, host: compute-1}
"""


@dataclass
class RoundResult:
    round: int
    kill: str  # the crash point (with its count) or "random after N ms"
    died_at_point: bool
    acknowledged: int
    violations: list[str]
    seconds: float
    takeover_s: float | None = None  # with high availability: the kill to the standby answering as leader


@dataclass
class CrashRun:
    """One store, its consumers and monitors, and the rounds run on it."""

    data_dir: Path
    store_url: str | None = None
    seed: int = 0
    hold_down_s: float = 0.2
    storm_s: float = 1.5
    ha: bool = False  # two servers on the PostgreSQL store, the leader killed each round (see the module)
    monitors: list[Monitor] = field(default_factory=list)
    consumers: dict[str, Recorder] = field(default_factory=dict)
    rounds: list[RoundResult] = field(default_factory=list)
    rng: random.Random = field(init=False)
    server: ServeProcess = field(init=False)  # with high availability: the leader
    standby: ServeProcess | None = field(init=False, default=None)
    _harness_killed: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        tokens = {ADMIN: {"project": "admin", "role": "admin"}, MONITOR: {"project": "monitoring", "role": "monitor"}}
        tokens.update({f"harness-{p}": {"project": p, "role": "member"} for p in PROJECTS})
        topology = self.data_dir / "topology.yaml"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        topology.write_text(TOPOLOGY)
        settings: dict[str, Any] = {
            "cloud": {"topology": str(topology)},
            "inspector": {"hold_down_s": self.hold_down_s},
            "notifier": {
                "retry_initial_s": 0.05,
                "retry_max_delay_s": 0.5,
                "allowed_callback_networks": list(LOOPBACK),
            },
            "maintenance": {"reply_window_s": 2.0},
        }
        if self.ha:
            if self.store_url is None:
                raise ValueError("high availability needs a PostgreSQL store_url")
            settings["ha"] = {"enabled": True, "lease_s": 1.5, "renew_s": 0.3, "poll_s": 0.1}
            self.standby = ServeProcess(self.data_dir / "vigil-2", tokens, settings, store_url=self.store_url)
        self.server = ServeProcess(self.data_dir / "vigil", tokens, settings, store_url=self.store_url)
        hosts = HOSTS + MAINTAINED
        self.monitors = [Monitor(f"m{n}", hosts[n::3]) for n in range(3)]

    # -- the whole run -------------------------------------------------------

    async def run(self, kills: int, on_round: Callable[[RoundResult], None] | None = None) -> list[RoundResult]:
        await self._set_up()
        try:
            for number in range(1, kills + 1):
                result = await (self._failover(number) if self.ha else self._round(number))
                self.rounds.append(result)
                if on_round is not None:
                    on_round(result)
        finally:
            await self.server.stop()
            if self.standby is not None:
                await self.standby.stop()
            for consumer in self.consumers.values():
                await consumer.stop()
        return self.rounds

    async def _set_up(self) -> None:
        for name, delay in (("p1", 0.0), ("p2", 0.0), ("p3", 0.3), ("admin", 0.0)):
            consumer = Recorder(name, delay_s=delay)
            await consumer.start()
            self.consumers[name] = consumer
        await self.server.start()
        async with self._client(ADMIN) as admin:
            formats = {"p1": "aodh", "p2": "sol003", "p3": "aodh"}
            for project, payload_format in formats.items():
                async with self._client(f"harness-{project}") as member:
                    body = {"callbacks": [self.consumers[project].url], "format": payload_format}
                    (await member.post("/v1/subscriptions", json=body)).raise_for_status()
            (
                await admin.post("/v1/subscriptions", json={"callbacks": [self.consumers["admin"].url]})
            ).raise_for_status()
            absent = f"http://127.0.0.1:{free_port()}/absent"  # nobody listens: deliveries keep retrying
            (await admin.post("/v1/subscriptions", json={"callbacks": [absent]})).raise_for_status()
        if self.standby is not None:  # both run from now on: the leader is killed each round
            await self.standby.start(standby=True)
            return
        await self.server.stop()

    # -- one round -------------------------------------------------------------

    async def _round(self, number: int) -> RoundResult:
        began = time.monotonic()
        crash_at: str | None = None
        if self.rng.random() < 0.5:
            # The harness runs the embedded cloud: the OpenStack driver's point is never reached here.
            crash_at = f"{self.rng.choice(sorted(POINTS - {'before-vim-push'}))}:{self.rng.randint(1, 4)}"
        kill_after = self.rng.uniform(0.05, self.storm_s)
        acknowledged_before = sum(len(m.acknowledged) for m in self.monitors)
        self._harness_killed = False
        try:
            await self.server.start(crash_at=crash_at)
        except RuntimeError:
            if not self.server.killed_itself():
                raise
            # It died at its crash point while starting: recovering from the last kill
            # (replaying the journal, rolling sessions back, resuming deliveries).
            kill = f"{crash_at} during start"
        else:
            storm = asyncio.ensure_future(self._storm())
            try:
                await self._until_death(crash_at, kill_after)
            finally:
                storm.cancel()
                await asyncio.gather(storm, return_exceptions=True)
            if crash_at is None:
                kill = f"random after {kill_after * 1000:.0f} ms"
            elif self._harness_killed:
                kill = f"{crash_at} not reached; killed after the storm"
            else:
                kill = crash_at
        died_at_point = crash_at is not None and self.server.killed_itself() and not self._harness_killed

        await self.server.start()
        violations = await self._check()
        await self.server.stop()
        acknowledged = sum(len(m.acknowledged) for m in self.monitors) - acknowledged_before
        return RoundResult(number, kill, died_at_point, acknowledged, violations, time.monotonic() - began)

    async def _failover(self, number: int) -> RoundResult:
        """High availability: a storm on the leader, the leader killed at a random moment, the standby taking
        over (the monitors send again to it whatever got no 2xx, as through a service address), the killed one
        started again as the standby, and every invariant checked on the new leader."""
        assert self.standby is not None
        began = time.monotonic()
        kill_after = self.rng.uniform(0.05, self.storm_s)
        acknowledged_before = sum(len(m.acknowledged) for m in self.monitors)
        storm = asyncio.ensure_future(self._storm())
        try:
            await asyncio.sleep(kill_after)
        finally:
            await self.server.kill()
            killed = time.monotonic()
            storm.cancel()
            await asyncio.gather(storm, return_exceptions=True)
        self.server, self.standby = self.standby, self.server
        await self._leading(self.server)
        takeover = time.monotonic() - killed
        await self.standby.start(standby=True)
        violations = await self._check()
        acknowledged = sum(len(m.acknowledged) for m in self.monitors) - acknowledged_before
        kill = f"leader killed after {kill_after * 1000:.0f} ms"
        return RoundResult(number, kill, False, acknowledged, violations, time.monotonic() - began, takeover)

    async def _leading(self, server: ServeProcess, timeout_s: float = 30.0) -> None:
        async with asyncio.timeout(timeout_s), httpx.AsyncClient(timeout=1.0) as client:
            while True:
                with contextlib.suppress(httpx.TransportError, ValueError, KeyError):
                    if (await client.get(f"{server.url}/healthz")).json()["role"] == "leader":
                        return
                await asyncio.sleep(0.02)

    async def _check(self) -> list[str]:
        """After a restart or takeover: what was acknowledged is there; then, once the monitors sent again what
        got no 2xx and the deliveries to live consumers ended, every invariant."""
        violations: list[str] = []
        async with self._client(ADMIN) as admin:
            await self._settle_after_restart(admin)
            violations += [f"after restart: {v}" for v in check_state(await snapshot(admin), self.monitors)]
            async with self._client(MONITOR) as monitor_client:
                for monitor in self.monitors:
                    await monitor.flush(monitor_client)
            await self._quiesce(admin)
            view = await snapshot(admin)
            violations += check_state(view, self.monitors)
            violations += check_notifications(view, self.consumers.values(), settled=True)
        for monitor in self.monitors:
            violations += monitor.wrong_duplicates
            monitor.wrong_duplicates.clear()
        return violations

    async def _until_death(self, crash_at: str | None, kill_after: float) -> None:
        """Wait for the server to die at its crash point, or kill it: at ``kill_after`` when no
        point is armed, or when the storm is over and the armed point was never reached."""
        deadline = kill_after if crash_at is None else self.storm_s + 0.5
        try:
            await asyncio.wait_for(self.server.wait(), deadline)
        except TimeoutError:
            self._harness_killed = True
            await self.server.kill()

    async def _storm(self) -> None:
        async with self._client(MONITOR) as client, self._client(ADMIN) as admin:
            tasks = [asyncio.ensure_future(self._report(m, client)) for m in self.monitors]
            tasks.append(asyncio.ensure_future(self._maintain(admin)))
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _report(self, monitor: Monitor, client: httpx.AsyncClient) -> None:
        rng = random.Random(self.rng.random())
        while True:
            await monitor.step(client, rng)
            await asyncio.sleep(rng.uniform(0, 0.02))

    async def _maintain(self, admin: httpx.AsyncClient) -> None:
        rng = random.Random(self.rng.random())
        await asyncio.sleep(rng.uniform(0, self.storm_s / 2))
        body = {"hosts": [rng.choice(MAINTAINED)], "actions": [{"action": "upgrade", "duration_s": 0.3}]}
        with contextlib.suppress(httpx.TransportError):
            await admin.post("/v1/maintenance", json=body)

    # -- waiting for calm ----------------------------------------------------------

    async def _settle_after_restart(self, admin: httpx.AsyncClient) -> None:
        """Held recoveries released, interrupted sessions rolled back, no host in maintenance."""
        await asyncio.sleep(self.hold_down_s + 0.3)
        await self._no_maintenance(admin)

    async def _no_maintenance(self, admin: httpx.AsyncClient, timeout_s: float = 30.0) -> None:
        async with asyncio.timeout(timeout_s):
            while True:
                sessions = (await admin.get("/v1/maintenance")).json()["sessions"]
                hosts = (await admin.get("/v1/hosts", params={"limit": 10_000})).json()["hosts"]
                running = [s for s in sessions if s["state"] not in ("MAINTENANCE_DONE", "MAINTENANCE_FAILED")]
                if not running and not any(h["in_maintenance"] for h in hosts):
                    return
                await asyncio.sleep(0.1)

    async def _quiesce(self, admin: httpx.AsyncClient, timeout_s: float = 60.0) -> None:
        """Every delivery to a live consumer has ended, and no recovery is held."""
        await asyncio.sleep(self.hold_down_s + 0.3)
        await self._no_maintenance(admin)
        await asyncio.sleep(self.hold_down_s + 0.3)  # recoveries suppressed meanwhile, released
        live = {c.url for c in self.consumers.values()}
        async with asyncio.timeout(timeout_s):
            while True:
                pending = (await admin.get("/v1/deliveries", params={"state": "PENDING", "limit": 1000})).json()
                if not [d for d in pending["deliveries"] if d["url"] in live]:
                    return
                await asyncio.sleep(0.1)

    def _client(self, token: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.server.url, headers={"X-Auth-Token": token}, timeout=10.0)
