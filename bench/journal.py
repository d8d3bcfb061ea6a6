"""The journal's cost: how long a report waits to be durable before it acts.

Appends fault events to the journal (``vigil.controller.journal``) the way
the intake does, on SQLite and on PostgreSQL (a fresh database), one append
at a time and then ``--concurrent`` appends at once (group commit: those
queued while a write runs share the next transaction). Prints, per store and
concurrency, the time from the append to its durability, and the cost per
event (the run's wall time divided by the events made durable).

    python -m bench.journal [--appends 300] [--concurrent 1 10 50] [--store sqlite postgresql]
"""

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.crash import POSTGRES, database
from bench.stats import emit
from vigil.controller.journal import Journal
from vigil.domain.faults import EventId, EventStatus, FaultEvent
from vigil.store.sql import SqlStore


def report(n: int) -> FaultEvent:
    now = datetime.now(UTC)
    return FaultEvent(
        EventId(str(uuid.uuid4())), now, "compute.host.down", "compute-1", EventStatus.DOWN, "bench", str(n), now, seq=n
    )


async def measure(url: str, appends: int, concurrent: int, kind: str) -> None:
    async with SqlStore(url) as store:
        journal = Journal(store)
        journal.start()
        counter = 0
        waits: list[float] = []
        try:
            began = time.perf_counter()
            for _ in range(appends):
                batch = []
                for _ in range(concurrent):
                    counter += 1
                    batch.append(report(counter))
                started = time.perf_counter()
                futures = [journal.append([event]) for event in batch]
                for future in futures:
                    await future
                    waits.append((time.perf_counter() - started) * 1000)
            wall = time.perf_counter() - began
        finally:
            await journal.stop()
    emit(
        "journal",
        {"store": kind, "concurrent": concurrent},
        "ms",
        waits,
        per_event_us=round(wall / counter * 1e6, 1),
    )


async def run(kinds: Sequence[str], appends: int, concurrency: Sequence[int]) -> None:
    for kind in kinds:
        for concurrent in concurrency:
            with tempfile.TemporaryDirectory(prefix="vigil-bench-journal-") as scratch:
                async with database(kind, POSTGRES) as url:
                    await measure(url or f"sqlite+aiosqlite:///{Path(scratch) / 'vigil.db'}", appends, concurrent, kind)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appends", type=int, default=300, help="rounds of appends per case")
    parser.add_argument("--concurrent", type=int, nargs="*", default=[1, 10, 50])
    parser.add_argument("--store", nargs="*", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    asyncio.run(run(args.store, args.appends, args.concurrent))


if __name__ == "__main__":
    main()
