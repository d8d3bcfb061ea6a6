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


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[ServeProcess, ServeProcess]]:
    """Controllers ctl-1 (started first: the leader) and ctl-2 (a standby), on one fresh database."""
    (tmp_path / "topology.yaml").write_text(TOPOLOGY)
    settings = {
        "cloud": {"topology": str(tmp_path / "topology.yaml")},
        "inspector": {"hold_down_s": 0},
        "notifier": {"allowed_callback_networks": list(LOOPBACK), "retry_initial_s": 0.05},
        "ha": {"enabled": True, "lease_s": 1.5, "renew_s": 0.3, "poll_s": 0.1},
    }
    async with fresh_postgres_database() as url:
        first = ServeProcess(tmp_path / "ctl-1", TOKENS, settings, store_url=url)
        second = ServeProcess(tmp_path / "ctl-2", TOKENS, settings, store_url=url)
        try:
            await first.start(standby=True)
            await leading(first)
            await second.start(standby=True)
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

    from vigil.harness.crash import CrashRun

    async with fresh_postgres_database() as url:
        run = CrashRun(tmp_path, store_url=url, seed=11, ha=True)
        try:
            rounds = await run.run(4)
        finally:
            gc.collect()
    violations = [f"round {r.round} ({r.kill}): {v}" for r in rounds for v in r.violations]
    takeovers = [r.takeover_s for r in rounds]
    print("takeovers (s):", takeovers)

    assert violations == []
    assert len(rounds) == 4
    assert all(t is not None for t in takeovers)
    assert sum(r.acknowledged for r in rounds) > 0
