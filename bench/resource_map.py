"""Load time and peak memory of the resource map at 1,000 and 10,000 hosts.

Each run is a fresh process, so its peak RSS is its own:

* ``bootstrap``: generate a cloud of H hosts x 10 instances, place it into
  the map and write it to a new SQLite store (a first start);
* ``restore``: open that store and rebuild the map from it (every restart).

The budget (issue 2) is 10,000 hosts with 100,000 instances loaded in at
most 5 s and 1 GiB RSS.

    python -m bench.resource_map [--hosts 1000 10000] [--runs 5]
"""

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.stats import emit
from vigil.bus.memory import InProcessBus
from vigil.controller.changes import Committer
from vigil.controller.cloud import EmbeddedCloud
from vigil.controller.generate import generate
from vigil.controller.resource_map import ResourceMap
from vigil.store.sql import SqlStore

PER_HOST = 10


def _now() -> datetime:
    return datetime.now(UTC)


async def _bootstrap(url: str, hosts: int) -> float:
    started = time.perf_counter()
    store = SqlStore(url)
    await store.open()
    committer = Committer(store, InProcessBus())
    committer.start()
    cloud = EmbeddedCloud(ResourceMap(), committer, _now)
    await cloud.bootstrap(generate(hosts, PER_HOST, max(1, hosts // 50)))
    await committer.stop()
    elapsed = time.perf_counter() - started
    await store.close()
    return elapsed


async def _restore(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    store = SqlStore(url)
    await store.open()
    rmap = ResourceMap()
    rmap.add_all((await store.load()).resources)
    elapsed = time.perf_counter() - started
    await store.close()
    return elapsed, rmap.counts()["instances"]


def child(phase: str, url: str, hosts: int) -> None:
    """Run one phase and print its time and this process's peak RSS."""
    if phase == "bootstrap":
        seconds, instances = asyncio.run(_bootstrap(url, hosts)), hosts * PER_HOST
    else:
        seconds, instances = asyncio.run(_restore(url))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_mib, "instances": instances}))


def _run_child(phase: str, url: str, hosts: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.resource_map", "--child", phase, "--url", url, "--hosts", str(hosts)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", choices=["bootstrap", "restore"])
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.hosts[0])
        return
    for hosts in args.hosts:
        results: dict[str, list[dict[str, float]]] = {"bootstrap": [], "restore": []}
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="vigil-bench-") as scratch:
                url = f"sqlite+aiosqlite:///{Path(scratch) / 'vigil.db'}"
                results["bootstrap"].append(_run_child("bootstrap", url, hosts))
                results["restore"].append(_run_child("restore", url, hosts))
        for phase, runs in results.items():
            emit(
                "resource_map",
                {"phase": phase, "hosts": hosts, "instances": hosts * PER_HOST, "store": "sqlite"},
                "s",
                [r["seconds"] for r in runs],
                peak_rss_mib_max=round(max(r["peak_rss_mib"] for r in runs), 1),
            )


if __name__ == "__main__":
    main()
