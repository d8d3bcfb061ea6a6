"""Findings 1 to 3 of the crash-safety issue, each a real ``vigil serve`` killed with SIGKILL.

1. Hidden fault: a second monitor's report of a failure already being handled
   was answered ``correlated`` and committed the fault before the host change;
   after a kill the fault was ACTIVE with the host UP and nobody ever told.
2. Lost report answered as a duplicate: a report re-sent before its original
   was durable was answered ``duplicate``; after a kill, lost for good.
3. Phantom alarms: a kill after the notifications left and before the commit
   left consumers with alarms Vigil did not know, and the monitor's re-send
   raised a second alarm under new ids.

Each test runs ``vigil serve`` in a child process on SQLite, with a crash
point (``VIGIL_CRASH_AT``, ``vigil.crashpoints``) where the finding was seen,
and real consumers recording every body (``vigil.harness.consumers``).
"""

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from vigil.domain.callbacks import LOOPBACK
from vigil.harness.consumers import Recorder
from vigil.harness.crash import TOPOLOGY
from vigil.harness.server import ServeProcess

ADMIN, MONITOR, MEMBER = "t-admin", "t-monitor", "t-p1"
TOKENS = {
    ADMIN: {"project": "admin", "role": "admin"},
    MONITOR: {"project": "monitoring", "role": "monitor"},
    MEMBER: {"project": "p1", "role": "member"},
}


def report(host: str, ident: str, monitor: str = "m1", status: str = "down") -> dict[str, Any]:
    return {
        "time": datetime.now(UTC).isoformat(),
        "type": f"compute.host.{status}",
        "details": {"hostname": host, "status": status, "monitor": monitor, "monitor_event_id": ident},
    }


def client(server: ServeProcess, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": token}, timeout=10)


@pytest.fixture
async def consumer() -> AsyncIterator[Recorder]:
    recorder = Recorder("p1", delay_s=0.0)
    await recorder.start()
    yield recorder
    await recorder.stop()


@pytest.fixture
async def server(tmp_path: Path, consumer: Recorder) -> AsyncIterator[ServeProcess]:
    """A server with p1's subscription made (and stopped again): each test starts it its way."""
    (tmp_path / "topology.yaml").write_text(TOPOLOGY)
    settings = {
        "cloud": {"topology": str(tmp_path / "topology.yaml")},
        "inspector": {"hold_down_s": 0},
        "notifier": {"allowed_callback_networks": list(LOOPBACK)},
    }
    serve = ServeProcess(tmp_path / "vigil", TOKENS, settings)
    await serve.start()
    async with client(serve, MEMBER) as member:
        response = await member.post("/v1/subscriptions", json={"callbacks": [consumer.url]})
        assert response.status_code == 201, response.text
    await serve.stop()
    yield serve
    await serve.stop()


async def post(server: ServeProcess, body: dict[str, Any]) -> httpx.Response | None:
    """The answer, or None if the server died before giving one."""
    async with client(server, MONITOR) as monitor:
        try:
            return await monitor.post("/v1/event", json=body)
        except httpx.TransportError:
            return None


async def test_a_report_correlated_to_a_failure_in_hand_is_not_answered_before_it_is_durable(
    server: ServeProcess, consumer: Recorder
) -> None:
    await server.start(crash_at="before-commit")  # the first commit of effects after start: the failure's
    a1, b1 = report("compute-1", "a-1", monitor="m1"), report("compute-1", "b-1", monitor="m2")
    first, second = await asyncio.gather(post(server, a1), post(server, b1))
    await server.wait(10)
    assert server.killed_itself()
    assert first is None  # neither report was answered: nothing of them was durable yet
    assert second is None

    await server.start()
    async with client(server, ADMIN) as admin:
        host = (await admin.get("/v1/hosts/compute-1")).json()["host"]
        [fault] = (await admin.get("/v1/faults", params={"state": "ACTIVE"})).json()["faults"]
        alarms = {a["id"]: a for a in (await admin.get("/v1/alarms")).json()["alarms"]}
        assert (host["status"], host["forced_down"]) == ("DOWN", True)  # the fault came back with its host change
        assert fault["resource_id"] == "compute-1"
        await asyncio.sleep(0.5)
        assert {h.alarm_id for h in consumer.heard} <= set(alarms)
        # The monitors send again what got no answer: m1's was journaled before the kill (its
        # effects were being committed); m2's may or may not have been.
        first = await post(server, a1)
        second = await post(server, b1)
        assert first is not None
        assert second is not None
        assert first.json()["event"]["outcome"] == "duplicate"
        assert second.json()["event"]["outcome"] in ("duplicate", "correlated")
        [fault] = (await admin.get("/v1/faults", params={"state": "ACTIVE"})).json()["faults"]
        assert len(fault["events"]) == 2


async def test_a_repeat_of_a_report_not_yet_durable_waits_for_it_and_is_lost_with_it(
    server: ServeProcess,
) -> None:
    await server.start()
    database = server.data_dir / "vigil.db"
    with sqlite3.connect(database, isolation_level=None) as blocker:
        blocker.execute("BEGIN IMMEDIATE")  # no write reaches the store: the journal append waits
        r1 = report("compute-2", "r-1")
        original = asyncio.ensure_future(post(server, r1))
        await asyncio.sleep(0.3)
        repeat = asyncio.ensure_future(post(server, r1))
        await asyncio.sleep(0.5)
        assert not original.done()
        assert not repeat.done()  # not "duplicate": the original is not durable
        await server.kill()
        blocker.execute("ROLLBACK")
    assert await original is None
    assert await repeat is None

    await server.start()
    answer = await post(server, r1)
    assert answer is not None
    assert answer.json()["event"]["outcome"] == "fault_opened"  # the failure was not lost as a "duplicate"


async def test_alarms_notified_before_a_kill_are_the_ones_vigil_holds_after_it(
    server: ServeProcess, consumer: Recorder
) -> None:
    await server.start(crash_at="after-notify")
    p1 = report("compute-1", "p-1")
    assert await post(server, p1) is None  # killed once the notifications were out
    await server.wait(10)
    assert server.killed_itself()
    heard_before = list(consumer.heard)
    assert heard_before, "the consumer heard of the failure before the kill"

    await server.start()
    repeat = await post(server, p1)
    assert repeat is not None
    assert repeat.json()["event"]["outcome"] == "duplicate"  # the report was journaled: no second alarm
    async with client(server, ADMIN) as admin:
        alarms = {a["id"]: a for a in (await admin.get("/v1/alarms")).json()["alarms"]}
        faults = (await admin.get("/v1/faults")).json()["faults"]
    assert len(faults) == 1
    await asyncio.sleep(0.5)  # anything sent again after the restart has arrived
    assert {h.alarm_id for h in consumer.heard} <= set(alarms)
    assert all(alarms[h.alarm_id]["state"] == "ACTIVE" for h in heard_before)
    bodies: dict[str, set[bytes]] = {}
    for heard in consumer.heard:
        bodies.setdefault(heard.notification, set()).add(heard.body)
    assert all(len(b) == 1 for b in bodies.values()), "a notification id came with two bodies"
    assert {h.notification for h in consumer.heard} == {h.notification for h in heard_before}
