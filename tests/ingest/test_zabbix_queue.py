"""Zabbix's messages from an AMQP queue on the machine's RabbitMQ, as seed 004's media type sends them to Vitrage
(an oslo.messaging notification on ``vitrage_notifications.info``): faults open and clear, a message is
acknowledged only once its report is durable (SIGKILL before and after the journal), bad input is recorded and
rejected without requeue, and the consumer goes on."""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from api.conftest import EXAMPLE, Api
from support import require_service

from vigil.harness.server import ServeProcess
from vigil.settings import Settings

from .conftest import serving

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
PAYLOAD = {
    "host": "compute-3",
    "hostid": "10107",
    "hostip": "10.0.0.13",
    "triggerid": "13491",
    "description": "Zabbix agent on compute-3 is unreachable for 5 minutes",
    "rawtext": "Zabbix agent on {HOST.NAME} is unreachable for 5 minutes",
    "expression": "{compute-3:agent.ping.nodata(20s)}=1",
    "value": "1",
    "priority": "4",
    "lastchange": "2026.03.14 09:26:53",
}


def oslo(payload: dict[str, str], status: str = "problem") -> bytes:
    """What zabbix_vitrage.py publishes: an oslo.messaging notification in its 2.0 envelope."""
    message = {
        "message_id": str(uuid.uuid4()),
        "publisher_id": "zabbix_node-1",
        "event_type": f"zabbix.alarm.{status}",
        "priority": "INFO",
        "payload": payload,
        "timestamp": "2026-03-14 09:26:54.000000",
    }
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(message)}).encode()


class Broker:
    """A queue and exchange of this test's own on the machine's RabbitMQ, and a publisher to them."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.queue = f"vigil-test-{tag}.info"
        self.exchange = f"vigil-test-{tag}"
        self.connection: aio_pika.abc.AbstractConnection | None = None

    def settings(self) -> dict[str, Any]:
        return {"amqp_url": AMQP_URL, "queue": self.queue, "exchange": self.exchange}

    async def publish(self, body: bytes) -> None:
        assert self.connection is not None
        channel = await self.connection.channel()
        exchange = await channel.get_exchange(self.exchange)
        message = aio_pika.Message(body, content_type="application/json", content_encoding="utf-8")
        await exchange.publish(message, routing_key=self.queue)
        await channel.close()

    async def queued(self) -> int:
        """Messages waiting in the queue (neither delivered nor acknowledged)."""
        assert self.connection is not None
        channel = await self.connection.channel()
        queue = await channel.declare_queue(self.queue, passive=True)
        count = queue.declaration_result.message_count or 0
        await channel.close()
        return count


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    broker = Broker()
    broker.connection = await aio_pika.connect(AMQP_URL)
    try:
        yield broker
    finally:
        channel = await broker.connection.channel()
        await channel.queue_delete(broker.queue)
        await channel.exchange_delete(broker.exchange)
        await broker.connection.close()


def with_queue(settings: Settings, queue: dict[str, Any]) -> Settings:
    zabbix = settings.ingest.zabbix.model_validate({**settings.ingest.zabbix.model_dump(), **queue})
    return settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"zabbix": zabbix})})


async def until(check: Callable[[], Awaitable[Any]], within_s: float = 10.0) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within_s} s: {value!r}")
        await asyncio.sleep(0.05)


async def read(url: str, path: str) -> Any:
    async with httpx.AsyncClient(base_url=url, headers={"X-Auth-Token": "admin-token"}, timeout=10) as client:
        response = await client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


async def queue_state(url: str) -> dict[str, Any]:
    state: dict[str, Any] = (await read(url, "/v1/ingest"))["zabbix"]["queue"]
    return state


async def faults_of(url: str) -> list[str]:
    faults = await read(url, "/v1/faults?state=ACTIVE")
    return sorted(h for f in faults["faults"] for h in f["hosts"])


async def consuming(api: Api) -> None:
    await until(lambda: _connected(api.url))


async def _connected(url: str) -> bool:
    return bool((await queue_state(url))["connected"])


async def test_a_problem_on_the_queue_opens_the_fault_and_its_ok_clears_it(settings: Settings, broker: Broker) -> None:
    async with serving(with_queue(settings, broker.settings())) as api:
        await consuming(api)
        await broker.publish(oslo(PAYLOAD))
        assert await until(lambda: faults_of(api.url)) == ["compute-3"]
        await until(lambda: _acked(api.url, 1))
        await broker.publish(oslo({k: v for k, v in PAYLOAD.items() if k != "value"}, "ok"))  # value from the type
        await until(lambda: _no_faults(api.url))
        await until(lambda: _acked(api.url, 2))
        assert await broker.queued() == 0
        record = (await read(api.url, "/v1/ingest"))["zabbix"]
        assert (record["received"], record["reports"], record["outcomes"]) == (
            2,
            2,
            {"fault_opened": 1, "fault_cleared": 1},
        )


async def _acked(url: str, count: int) -> bool:
    return bool((await queue_state(url))["acked"] == count)


async def _no_faults(url: str) -> bool:
    return await faults_of(url) == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"this is not a zabbix message", "expected host="),
        (oslo({**PAYLOAD, "value": "3"}), "value '3'"),
        (oslo({**PAYLOAD, "host": "compute-99"}), "unknown host"),
    ],
)
async def test_bad_input_is_recorded_and_rejected_without_requeue_and_the_consumer_goes_on(
    settings: Settings, broker: Broker, body: bytes, problem: str
) -> None:
    async with serving(with_queue(settings, broker.settings())) as api:
        await consuming(api)
        await broker.publish(body)
        state = await until(lambda: _rejected(api.url))
        assert problem in state["last_error"]
        record = (await read(api.url, "/v1/ingest"))["zabbix"]
        assert (record["rejected"], record["reports"]) == (1, 0)
        assert problem in record["recent"][-1]["why"]
        await broker.publish(oslo(PAYLOAD))
        assert await until(lambda: faults_of(api.url)) == ["compute-3"]
        await until(lambda: _acked(api.url, 1))
        state = await queue_state(api.url)
        assert (state["received"], state["rejected"], state["requeued"]) == (2, 1, 0)  # not delivered again
        assert await broker.queued() == 0


async def _rejected(url: str) -> dict[str, Any] | None:
    state = await queue_state(url)
    return state if state["rejected"] else None


async def test_vigil_starts_while_the_broker_is_away_and_says_so(settings: Settings) -> None:
    async with serving(with_queue(settings, {"amqp_url": "amqp://guest:guest@127.0.0.1:1/"})) as api:
        state = await until(lambda: _errored(api.url))
        assert state["connected"] is False
        assert "connecting" in state["last_error"]


async def _errored(url: str) -> dict[str, Any] | None:
    state = await queue_state(url)
    return state if state["last_error"] else None


@pytest.mark.parametrize("crash_at", ["before-journal", "after-journal"])
async def test_a_message_is_acknowledged_only_once_its_report_is_durable(
    tmp_path: Path, broker: Broker, crash_at: str
) -> None:
    """SIGKILL before the report is journaled: the message was not acknowledged, the broker delivers it again to
    the next start, and the fault opens. After: the journal's replay opens it, and the message delivered again
    is a duplicate."""
    server = ServeProcess(
        tmp_path / "vigil",
        tokens={"admin-token": {"project": "admin", "role": "admin"}},
        settings={
            "cloud": {"topology": str(EXAMPLE)},
            "inspector": {"hold_down_s": 0},
            "ingest": {"zabbix": broker.settings()},
        },
    )
    await server.start(crash_at=crash_at)
    try:
        await until(lambda: _connected(server.url))
        await broker.publish(oslo(PAYLOAD))
        await asyncio.wait_for(server.wait(), 20)
        assert server.killed_itself(), server.tail()
        await server.start()
        assert await until(lambda: faults_of(server.url)) == ["compute-3"]
        await until(lambda: _acked(server.url, 1))
        events = await read(server.url, "/v1/fault-events")
        outcomes = sorted(e["outcome"] for e in events["fault_events"] if e["monitor"] == "zabbix")
        assert outcomes == (["fault_opened"] if crash_at == "before-journal" else ["duplicate", "fault_opened"])
        assert await broker.queued() == 0
    finally:
        await server.stop()
