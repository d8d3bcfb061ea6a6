"""Restart time and memory do not grow with history: ``running()`` after 0 and after 100,000 fault cycles.

A fresh SQLite store is bootstrapped with a generated cloud (10,000 hosts x
10 instances, 200 projects by default), then given the history of
``--cycles`` fault cycles, written straight into the store as Vigil itself
would have left it: per cycle one cleared fault, its cleared host.down and
instance.down alarms, the down and up fault events, four delivered
notifications, and the resource events of the host and its instances going
down and back. Each restart is a fresh process that enters ``running()``
(store opened with its lease, map restored, open faults and alarms, dedup
keys, outbox and journal tail read, engines started) and reports the
seconds until it is ready and its peak RSS. The target (crash-safety issue):
at most 5 s at 10,000 hosts / 100,000 instances after 100,000 cycles.

    python -m bench.restart [--hosts 10000] [--cycles 100000] [--runs 3]
"""

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.stats import emit
from vigil.controller.ports import ChangeBatch
from vigil.domain.alarms import AckState, Alarm, AlarmId, AlarmKind, AlarmState, Lifecycle
from vigil.domain.deliveries import Delivery, DeliveryId, DeliveryState, NotificationId
from vigil.domain.events import EventAction, ResourceEvent
from vigil.domain.faults import EventId, EventStatus, Fault, FaultEvent, FaultId, FaultState, Outcome, Severity
from vigil.domain.model import Instance, ResourceType
from vigil.domain.records import record_kind
from vigil.domain.subscriptions import SubscriptionId
from vigil.settings import load_settings
from vigil.store.sql import SqlStore

PER_HOST = 10
CHUNK = 500  # cycles per transaction while writing the history


def settings_for(data_dir: Path, hosts: int) -> Any:
    return load_settings(
        None,
        data_dir=data_dir,
        log_level="WARNING",
        cloud={"hosts": hosts, "instances_per_host": PER_HOST, "projects": max(1, hosts // 50)},
        monitor={"listen": "off"},
    )


async def _bootstrap(data_dir: Path, hosts: int) -> None:
    from vigil.wiring import running

    async with running(settings_for(data_dir, hosts)):
        pass


def _cycle(n: int, host: str, instances: list[tuple[str, str]], at: datetime, seq: int) -> tuple[ChangeBatch, int]:
    """One fault cycle's records and resource events, as the fault path leaves them."""
    batch = ChangeBatch()
    fault = FaultId(str(uuid.uuid5(uuid.NAMESPACE_URL, f"fault/{n}")))
    down, up = EventId(f"ev-{n}-down"), EventId(f"ev-{n}-up")
    cleared = at + timedelta(seconds=5)
    records: list[Any] = [
        FaultEvent(down, at, "compute.host.down", host, EventStatus.DOWN, "bench", f"d{n}", at,
                   outcome=Outcome.FAULT_OPENED, fault=fault, seq=2 * n + 1),
        FaultEvent(up, cleared, "compute.host.up", host, EventStatus.UP, "bench", f"u{n}", cleared,
                   outcome=Outcome.FAULT_CLEARED, fault=fault, seq=2 * n + 2),
        Fault(fault, "compute.host.down", "host", host, Severity.CRITICAL, FaultState.CLEARED, at, cleared,
              events=[down, up], hosts=[host], instances=[i for i, _ in instances],
              checkpoints={"T01": at.timestamp(), "T09": at.timestamp() + 0.003}),
    ]  # fmt: skip
    for kind, project in ((AlarmKind.HOST_DOWN, None), (AlarmKind.INSTANCE_DOWN, instances[0][1])):
        alarm = AlarmId(str(uuid.uuid5(uuid.NAMESPACE_URL, f"alarm/{n}/{kind}")))
        records.append(
            Alarm(alarm, kind, project, "host", host, Severity.CRITICAL, AlarmState.CLEARED, AckState.UNACKNOWLEDGED,
                  fault, at, cleared, cleared, version=2, reason="host down",
                  resource_ids=[i for i, _ in instances], details={"hosts": [host]})
        )  # fmt: skip
        for version, lifecycle in ((1, Lifecycle.RAISED), (2, Lifecycle.CLEARED)):
            ident = f"{alarm}/{version}"
            records.append(
                Delivery(DeliveryId(ident), NotificationId(ident), SubscriptionId("bench"), "http://127.0.0.1:9/x",
                         alarm, version, lifecycle, project, fault, '{"alarm_id": "x"}', DeliveryState.DELIVERED,
                         at, attempts=1, delivered_at=at, last_status=204)
            )  # fmt: skip
    for record in records:
        batch.upserts[(record_kind(record), record.ident)] = record
    for when, state, dp, forced in ((at, "ERROR", "DOWN", True), (cleared, None, None, False)):
        seq += 1
        batch.events.append(
            ResourceEvent(
                seq, when, ResourceType.HOST, host, EventAction.UPDATED, {"forced_down": (not forced, forced)}
            )
        )
        if state is None:
            continue
        for instance, project in instances:
            seq += 1
            batch.events.append(
                ResourceEvent(seq, when, ResourceType.INSTANCE, instance, EventAction.UPDATED,
                              {"state": ("ACTIVE", state)}, project)
            )  # fmt: skip
            seq += 1
            batch.events.append(
                ResourceEvent(seq, when, ResourceType.PORT, f"port-of-{instance}", EventAction.UPDATED,
                              {"data_plane_status": ("ACTIVE", dp)}, project)
            )  # fmt: skip
    return batch, seq


async def _history(data_dir: Path, cycles: int) -> float:
    """Write ``cycles`` fault cycles of history into the store; return the seconds it took."""
    started = time.perf_counter()
    async with SqlStore(f"sqlite+aiosqlite:///{data_dir / 'vigil.db'}") as store:
        snapshot = await store.load()
        instances: dict[str, list[tuple[str, str]]] = {}
        for resource in snapshot.resources:
            if isinstance(resource, Instance) and resource.host is not None:
                instances.setdefault(resource.host, []).append((resource.ident, resource.project))
        hosts = sorted(instances)
        seq = snapshot.last_seq
        base = datetime.now(UTC) - timedelta(days=20)  # within the retention: nothing is pruned
        for first in range(0, cycles, CHUNK):
            batch = ChangeBatch()
            for n in range(first, min(cycles, first + CHUNK)):
                host = hosts[n % len(hosts)]
                one, seq = _cycle(n, host, instances[host], base + timedelta(seconds=10 * n), seq)
                batch.merge(one)
            await store.save(batch)
    return time.perf_counter() - started


async def _restart(data_dir: Path, hosts: int) -> float:
    from vigil.wiring import running

    started = time.perf_counter()
    async with running(settings_for(data_dir, hosts)):
        elapsed = time.perf_counter() - started
    return elapsed


def child(argv: list[str]) -> None:
    """Run one step in this (fresh) process and print its result as JSON."""
    step, data_dir, number = argv[0], Path(argv[1]), int(argv[2])
    if step == "bootstrap":
        asyncio.run(_bootstrap(data_dir, number))
        print(json.dumps({}))
    elif step == "history":
        print(json.dumps({"seconds": asyncio.run(_history(data_dir, number))}))
    else:
        seconds = asyncio.run(_restart(data_dir, number))
        rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"seconds": seconds, "rss_mib": rss_mib}))


def _run(step: str, data_dir: Path, number: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.restart", "--child", step, str(data_dir), str(number)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigil-bench-restart-") as scratch:
        data_dir = Path(scratch)
        _run("bootstrap", data_dir, args.hosts)
        for cycles, label in ((0, "no history"), (args.cycles, f"{args.cycles} fault cycles")):
            written = _run("history", data_dir, cycles)["seconds"] if cycles else 0.0
            runs = [_run("restart", data_dir, args.hosts) for _ in range(args.runs)]
            db_mib = sum(p.stat().st_size for p in data_dir.glob("vigil.db*")) / 2**20
            emit(
                "restart",
                {"hosts": args.hosts, "instances": args.hosts * PER_HOST, "history": label},
                "s",
                [r["seconds"] for r in runs],
                rss_mib_max=round(max(r["rss_mib"] for r in runs), 1),
                database_mib=round(db_mib, 1),
                history_written_s=round(written, 1),
                target_s=5.0,
                target_met=max(r["seconds"] for r in runs) <= 5.0,
            )


if __name__ == "__main__":
    main()
