"""How fast Vigil's map follows Nova's notifications: the rate, and each notification's lag to the durable map.

Real parts except Nova itself: Nova's captured notification bodies
(``tests/openstack/notifications``, from Nova 34) are published, with fresh
server ids and timestamps, on the machine's RabbitMQ (a queue of the
bench's own, on the default vhost, removed afterwards); Vigil's consumer
(:class:`~vigil.vim.openstack.consumer.NotificationConsumer`) hands them to
:class:`~vigil.vim.openstack.sync.NovaSync`, which commits each one in a
unit of work to a real SQLite store. Nova's API is not there to answer, so
a boot's group and port look-ups are left out: on a real cloud each
``instance.create.end`` also costs one Nova and one Neutron GET.

Two phases per run: ``servers`` boots (``instance.create.end``), then as
many state changes (``instance.power_off.end`` / ``power_on.end`` in
turn). For each: notifications per second from the first publish to the
last applied, and the lag of each notification from its publish to its
commit.

    python -m bench.nova_follow [--servers 500] [--runs 3] [--amqp URL]
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika

from bench.stats import emit
from vigil.bus.memory import InProcessBus
from vigil.controller.changes import Committer
from vigil.controller.resource_map import ResourceMap
from vigil.controller.transactions import Transactions
from vigil.domain.ids import HostName, ProjectId
from vigil.domain.model import Host, Project
from vigil.store.sql import SqlStore
from vigil.vim.openstack.consumer import NotificationConsumer
from vigil.vim.openstack.notifications import Change
from vigil.vim.openstack.sync import NovaSync

FIXTURES = Path(__file__).parent.parent / "tests" / "openstack" / "notifications"
HOSTS = ("compute-1", "compute-2", "compute-3")


def template(name: str) -> dict[str, Any]:
    outer = json.loads((FIXTURES / f"{name}.json").read_text())
    inner: dict[str, Any] = json.loads(outer["oslo.message"])
    return inner


def body(inner: dict[str, Any], server: str) -> bytes:
    """The captured message for another server, stamped now, in the oslo envelope."""
    message = json.loads(json.dumps(inner))
    message["payload"]["nova_object.data"]["uuid"] = server
    message["message_id"] = str(uuid.uuid4())
    message["timestamp"] = str(datetime.now(UTC).replace(tzinfo=None))
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(message)}).encode()


async def run_once(amqp: str, servers: int, workdir: Path) -> dict[str, tuple[float, list[float]]]:
    store = SqlStore(f"sqlite:///{workdir / 'vigil.db'}")
    await store.open()
    committer = Committer(store, InProcessBus())
    committer.start()
    tx = Transactions(ResourceMap(), committer, lambda: datetime.now(UTC))
    create, off, on = (
        template(n) for n in ("boot.instance.create.end", "stop.instance.power_off.end", "start.instance.power_on.end")
    )
    project = create["payload"]["nova_object.data"]["tenant_id"]
    unit = tx.begin("bootstrap")
    for host in HOSTS:
        unit.create(Host(HostName(host), vcpus=100_000))
    unit.create(Project(ProjectId(project), "bench"))
    await tx.commit(unit)
    sync = NovaSync(tx, None, lambda: datetime.now(UTC))
    sent: dict[str, float] = {}
    lags: list[float] = []
    done = asyncio.Event()
    expected = 0

    async def applied(change: Change) -> bool:
        result = await sync.apply(change)
        key = f"{change.event_type}:{change.id if hasattr(change, 'id') else ''}"
        lags.append((time.perf_counter() - sent.pop(key)) * 1000)
        if len(lags) == expected:
            done.set()
        return result

    queue = f"vigil-bench-{uuid.uuid4().hex[:8]}"
    exchange = f"{queue}-x"
    consumer = NotificationConsumer(amqp, applied, queue=queue, exchange=exchange)
    await consumer.start()
    connection = await aio_pika.connect(amqp)
    results: dict[str, tuple[float, list[float]]] = {}
    try:
        channel = await connection.channel()
        target = await channel.get_exchange(exchange)
        ids = [str(uuid.uuid4()) for _ in range(servers)]
        phases = [("boot", [(create, i) for i in ids]), ("state", [((off, on)[n % 2], i) for n, i in enumerate(ids)])]
        for phase, messages in phases:
            lags.clear()
            done.clear()
            expected = len(messages)
            began = time.perf_counter()
            for inner, server in messages:
                sent[f"{inner['event_type']}:{server}"] = time.perf_counter()
                await target.publish(aio_pika.Message(body(inner, server)), routing_key=queue)
            await asyncio.wait_for(done.wait(), timeout=600)
            results[phase] = (len(messages) / (time.perf_counter() - began), list(lags))
        assert len(tx.map.instances()) == servers
    finally:
        await consumer.aclose()
        channel = await connection.channel()
        await channel.queue_delete(queue)
        await channel.exchange_delete(exchange)
        await connection.close()
        await committer.stop()
        await store.close()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    args = parser.parse_args(argv)
    rates: dict[str, list[float]] = {}
    lags: dict[str, list[float]] = {}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as workdir:
            for phase, (rate, samples) in asyncio.run(run_once(args.amqp, args.servers, Path(workdir))).items():
                rates.setdefault(phase, []).append(rate)
                lags.setdefault(phase, []).extend(samples)
    for phase in rates:
        emit(
            "nova_follow",
            {"phase": phase, "servers": args.servers, "runs": args.runs},
            "ms",
            lags[phase],
            notifications_per_s=[round(r) for r in rates[phase]],
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
