"""Two real ``vigil serve`` processes on one PostgreSQL database with high availability: one leads, the other is a
standby answering 503; a kill -9 or a freeze of the leader makes the standby take over, losing nothing acknowledged,
and a frozen leader that wakes exits without acting."""

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import fresh_postgres_database

from vigil.domain.callbacks import LOOPBACK
from vigil.harness.consumers import Recorder
from vigil.harness.crash import TOPOLOGY
from vigil.harness.server import ServeProcess

pytestmark = pytest.mark.postgres

ADMIN, MONITOR, MEMBER = "t-admin", "t-monitor", "t-p1"
TOKENS = {
    ADMIN: {"project": "admin", "role": "admin"},
    MONITOR: {"project": "monitoring", "role": "monitor"},
    MEMBER: {"project": "p1", "role": "member"},
}
EXIT_DEPOSED = 75


def report(host: str, ident: str, status: str = "down") -> dict[str, Any]:
    return {
        "time": datetime.now(UTC).isoformat(),
        "type": f"compute.host.{status}",
        "details": {"hostname": host, "status": status, "monitor": "m1", "monitor_event_id": ident},
    }


def client(server: ServeProcess, token: str | None = None) -> httpx.AsyncClient:
    headers = {"X-Auth-Token": token} if token else {}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=5)


async def role(server: ServeProcess) -> str | None:
    try:
        async with client(server) as c:
            return str((await c.get("/healthz")).json()["role"])
    except httpx.TransportError:
        return None


async def leading(server: ServeProcess, within_s: float = 30.0) -> float:
    """Wait until ``server`` leads; the seconds it took."""
    began = time.monotonic()
    while await role(server) != "leader":
        assert time.monotonic() - began < within_s, f"no takeover within {within_s} s: {server.tail()}"
        await asyncio.sleep(0.02)
    return time.monotonic() - began


async def heard(consumer: Recorder, within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not consumer.heard:
        assert time.monotonic() < deadline, "the new leader's notification never came"
        await asyncio.sleep(0.02)


def ha_settings(tmp_path: Path) -> dict[str, Any]:
    """The harness topology, with high availability on (lease 1.5 s)."""
    (tmp_path / "topology.yaml").write_text(TOPOLOGY)
    return {
        "cloud": {"topology": str(tmp_path / "topology.yaml")},
        "ha": {"enabled": True, "lease_s": 1.5, "renew_s": 0.3, "poll_s": 0.1},
    }


async def lead_then_stand_by(first: ServeProcess, second: ServeProcess) -> None:
    """``first`` started and leading, then ``second`` started as its standby."""
    await first.start(standby=True)
    await leading(first)
    await second.start(standby=True)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[ServeProcess, ServeProcess]]:
    """Controllers ctl-1 (started first: the leader) and ctl-2 (a standby), on one fresh database."""
    settings = {
        **ha_settings(tmp_path),
        "inspector": {"hold_down_s": 0},
        "notifier": {"allowed_callback_networks": list(LOOPBACK), "retry_initial_s": 0.05},
    }
    async with fresh_postgres_database() as url:
        first = ServeProcess(tmp_path / "ctl-1", TOKENS, settings, store_url=url)
        second = ServeProcess(tmp_path / "ctl-2", TOKENS, settings, store_url=url)
        try:
            await lead_then_stand_by(first, second)
            yield first, second
        finally:
            for server in (first, second):
                if server.proc is not None and server.proc.returncode is None:
                    os.kill(server.proc.pid, signal.SIGCONT)
                await server.kill()


async def test_a_standby_answers_503_and_takes_over_after_the_leader_is_killed_losing_nothing_acknowledged(
    pair: tuple[ServeProcess, ServeProcess],
) -> None:
    first, second = pair
    async with client(second) as anyone, client(second, MONITOR) as to_standby:
        health = await anyone.get("/healthz")
        refused = await to_standby.post("/v1/event", json=report("compute-1", "r0"))
    async with client(first, MONITOR) as monitor:
        accepted = await monitor.post("/v1/event", json=report("compute-1", "r1"))

    await first.kill()  # SIGKILL: no clean-up, the lease runs out by itself
    took = await leading(second)
    async with client(second, MONITOR) as monitor, client(second, ADMIN) as admin:
        after = await monitor.post("/v1/event", json=report("compute-2", "r2"))
        epoch = (await admin.get("/healthz")).json()["epoch"]
        faults = (await admin.get("/v1/faults", params={"state": "ACTIVE"})).json()["faults"]
    print(f"takeover after kill -9: {took * 1000:.0f} ms")

    assert (health.status_code, health.json()["role"], health.headers["retry-after"]) == (503, "standby", "2")
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "standby"
    assert accepted.status_code == 200, accepted.text
    assert after.status_code == 200, after.text
    assert epoch == 2
    assert sorted(h for f in faults for h in f["hosts"]) == ["compute-1", "compute-2"], "r1 survived the kill"


async def test_a_leader_frozen_past_its_lease_is_replaced_and_exits_when_it_wakes_without_notifying(
    pair: tuple[ServeProcess, ServeProcess],
) -> None:
    first, second = pair
    consumer = Recorder("p1")
    await consumer.start()
    try:
        async with client(first, MEMBER) as member:
            made = await member.post("/v1/subscriptions", json={"callbacks": [consumer.url]})
            assert made.status_code == 201, made.text
        assert first.proc is not None
        os.kill(first.proc.pid, signal.SIGSTOP)
        await leading(second)
        async with client(second, MONITOR) as monitor:  # the new leader tells p1 of compute-1's failure
            assert (await monitor.post("/v1/event", json=report("compute-1", "f1"))).status_code == 200
        await heard(consumer)
        heard_before_wake = len(consumer.heard)
        os.kill(first.proc.pid, signal.SIGCONT)
        code = await first.wait(timeout_s=10)
        await asyncio.sleep(0.5)
    finally:
        await consumer.stop()

    assert code == EXIT_DEPOSED, first.tail()
    assert "no longer the leader" in first.tail()
    assert len(consumer.heard) == heard_before_wake, "the woken leader sent nothing"
    assert await role(second) == "leader"


@pytest.mark.timeout(300)
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
async def test_flapping_leadership_under_a_storm_breaks_no_invariant(tmp_path: Path) -> None:
    """The crash harness with two servers: the leader killed in each round during a storm, the standby taking
    over; the crash-safety invariants hold on the new leader after each takeover."""
    import gc

    from vigil.harness.crash import CrashRun, RoundResult

    async def flap() -> list[RoundResult]:
        async with fresh_postgres_database() as url:
            return await CrashRun(tmp_path, store_url=url, seed=11, ha=True).run(4)

    try:
        rounds = await flap()
    finally:
        # The harness's sockets to servers it killed, collected here (the run is gone), filtered here: not in the
        # next test (seen once in a fresh-clone CI: an unclosed loopback socket collected in the next test).
        gc.collect()
    violations = [f"round {r.round} ({r.kill}): {v}" for r in rounds for v in r.violations]
    takeovers = [r.takeover_s for r in rounds]
    print("takeovers (s):", takeovers)

    assert violations == []
    assert len(rounds) == 4
    assert all(t is not None for t in takeovers)
    assert sum(r.acknowledged for r in rounds) > 0


class Partition:
    """A loopback TCP relay to PostgreSQL that the test can cut as a network partition does: from ``cut()`` on,
    nothing more passes either way and new connections hang (no reset: the peer learns nothing)."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._healed = asyncio.Event()
        self._healed.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        self._healed.clear()

    async def stop(self) -> None:
        self._healed.set()
        if self._server is not None:
            self._server.close()
        me = asyncio.current_task()
        others = [t for t in self._tasks if t is not me]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        if me is not None:
            self._tasks.add(me)
        writers = [writer]
        try:
            await self._healed.wait()
            up_reader, up_writer = await asyncio.open_connection(*self._target)
            writers.append(up_writer)
            pipes = [self._pipe(reader, up_writer), self._pipe(up_reader, writer)]
            tasks = [asyncio.ensure_future(p) for p in pipes]
            self._tasks.update(tasks)
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for w in writers:
                w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            await self._healed.wait()  # cut: held here, never delivered
            writer.write(data)
            await writer.drain()


async def test_a_leader_cut_off_from_the_database_steps_down_and_the_standby_takes_over(tmp_path: Path) -> None:
    from sqlalchemy.engine import make_url

    settings = ha_settings(tmp_path)
    async with fresh_postgres_database() as url:
        direct = make_url(url)
        partition = Partition(direct.host or "127.0.0.1", direct.port or 5432)
        await partition.start()
        through = direct.set(port=partition.port).render_as_string(hide_password=False)
        first = ServeProcess(tmp_path / "ctl-1", TOKENS, settings, store_url=through)
        second = ServeProcess(tmp_path / "ctl-2", TOKENS, settings, store_url=url)
        try:
            await lead_then_stand_by(first, second)
            partition.cut()
            took = await leading(second)
            code = await first.wait(timeout_s=15)
        finally:
            await partition.stop()
            await first.kill()
            await second.kill()

    print(f"takeover after the partition: {took * 1000:.0f} ms")
    assert code == EXIT_DEPOSED, first.tail()
    assert "no longer the leader" in first.tail()


async def test_a_maintenance_session_goes_on_across_a_kill_of_the_leader_and_is_done(
    pair: tuple[ServeProcess, ServeProcess],
) -> None:
    """The leader is killed while p1's app manager has not yet answered the session's first message; the new
    leader takes the session up where it stood, the app manager's reply reaches it, and the session ends
    MAINTENANCE_DONE, compute-4 (p1's standby instance alone) emptied and back in service."""
    from support import Receiver

    from vigil.consumer.notifications import parse_maintenance
    from vigil.serving import BackgroundServer

    first, second = pair
    receiver = Receiver()
    answering: list[ServeProcess] = []  # the app manager answers the leader it knows of (none at first)
    replies: set[asyncio.Task[None]] = set()

    async def reply(payload: dict[str, Any]) -> None:
        body = {
            "state": f"ACK_{payload['state']}",
            "instance_actions": dict.fromkeys(payload["instance_ids"], "MIGRATE"),
        }
        async with client(answering[0], MEMBER) as member:
            answered = await member.put(f"/v1/maintenance/{payload['session_id']}/p1", json=body)
            assert answered.status_code == 200, answered.text

    async def on_receive(entry: dict[str, Any]) -> None:
        notice = parse_maintenance(entry["body"], entry["headers"])
        if notice is not None and answering and notice.payload["state"] != "INSTANCE_ACTION_DONE":
            task = asyncio.create_task(reply(dict(notice.payload)))
            replies.add(task)
            task.add_done_callback(replies.discard)

    receiver.on_receive = on_receive
    async with BackgroundServer(receiver.app) as hooks:
        receiver.url = hooks.url
        async with client(first, MEMBER) as member, client(first, ADMIN) as admin:
            body = {"callbacks": [f"{hooks.url}/p1"], "filter": {"event_types": ["maintenance.scheduled"]}}
            assert (await member.post("/v1/subscriptions", json=body)).status_code == 201
            created = await admin.post("/v1/maintenance", json={"state": "MAINTENANCE", "hosts": ["compute-4"]})
            assert created.status_code == 200, created.text
            session = created.json()["session_id"]
        [asked] = await receiver.wait_for(1)
        await first.kill()
        await leading(second)
        answering.append(second)
        notice = parse_maintenance(asked["body"], asked["headers"])
        assert notice is not None
        await reply(dict(notice.payload))  # the app manager's reply, which the killed leader never got
        async with client(second, ADMIN) as admin:
            shown = await ended(admin, session)
            host = (await admin.get("/v1/hosts/compute-4")).json()["host"]
            stby = (await admin.get("/v1/instances/p1-stby")).json()["instance"]

    assert shown["state"] == "MAINTENANCE_DONE", shown.get("reason")
    assert (host["status"], host["in_maintenance"]) == ("UP", False)
    assert stby["host"] != "compute-4"
    assert stby["state"] == "ACTIVE"


async def ended(admin: httpx.AsyncClient, session: str, within_s: float = 30.0) -> dict[str, Any]:
    async with asyncio.timeout(within_s):
        while True:
            shown: dict[str, Any] = (await admin.get(f"/v1/maintenance/{session}")).json()
            if shown["state"] in ("MAINTENANCE_DONE", "MAINTENANCE_FAILED"):
                return shown
            await asyncio.sleep(0.05)
