"""Doctor's fault path on a real OpenStack: Vigil's notification time and Nova's consistency, beside Nova's own bound.

For each size (1, 10 and 50 servers on the failed host by default) and
each run, ``vigil demo fault --openstack``'s measurement
(:func:`vigil.demo_openstack.run_openstack_demo`) gives:

* ``notification_ms``: T09 - T01, what the consumer waits for;
* ``nova_consistent_ms``: T01 until Nova's API shows every affected server
  ERROR and the host's ``host_status`` DOWN, i.e. until Nova answered the
  last of Vigil's calls.

Beside them, Nova's own bound on this machine: a bare client (no Vigil)
forces the same number of servers' host down and resets every server to
ERROR, all calls at once, until Nova answered the last. Vigil's
``nova_consistent_ms`` is to be within 10 % of that bound; its
``notification_ms`` does not wait for Nova at all.

Both are timed alike, until Nova answered the last call (Nova sets each
state before it answers; the demo reads when from Vigil's ``GET /v1/vim``),
and Nova's API is read afterwards to check it shows the fault. Polling Nova
while the calls are served would time the poller too: a read
(``/servers/detail`` of every project, 443 ms for 50 servers here) takes
one of Nova's few API threads and its CPU.

Needs the stack of ``vigil testbed openstack up`` (or ``--credentials``).
Prints one JSON line per size and measure (p50, p90, p99, max, and the
samples).

    python -m bench.openstack [--sizes 1 10 50] [--runs 3] [--credentials FILE]
"""

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.stats import emit, percentile
from vigil.demo_openstack import FAILED_HOST, auth_from, boot_servers, clean_up, nova_consistent, run_openstack_demo
from vigil.testbed.openstack.layout import default_base_dir
from vigil.vim.openstack.session import OpenStackSession

BOUND_TIMEOUT_S = 120


async def nova_bound(credentials: dict[str, Any], count: int) -> float:
    """Milliseconds for a bare client's calls making ``count`` servers ERROR on a DOWN host to be answered (Nova
    sets each state before it answers; its API is then read to check it, untimed)."""
    tag = f"vigil-bound-{time.time_ns()}"
    async with OpenStackSession(auth_from(credentials)) as nova:
        ids: list[str] = []
        try:
            ids = await boot_servers(nova, count, FAILED_HOST, tag)
            services = await nova.get(
                "compute", "/os-services", microversion="2.53", binary="nova-compute", host=FAILED_HOST
            )
            service = services["services"][0]["id"]
            began = time.monotonic()
            await asyncio.gather(
                nova.request(
                    "compute", "PUT", f"/os-services/{service}", microversion="2.53", json={"forced_down": True}
                ),
                *(
                    nova.request("compute", "POST", f"/servers/{i}/action", json={"os-resetState": {"state": "error"}})
                    for i in ids
                ),
            )
            elapsed = round((time.monotonic() - began) * 1000, 1)
            while not await nova_consistent(nova, ids):  # what Nova answered, its API shows: checked, not timed
                if time.monotonic() - began > BOUND_TIMEOUT_S:
                    raise TimeoutError(f"Nova did not show {count} servers ERROR within {BOUND_TIMEOUT_S} s")
                await asyncio.sleep(0.02)
            return elapsed
        finally:
            await clean_up(nova, ids, FAILED_HOST, tag)


async def measure(credentials: dict[str, Any], sizes: Sequence[int], runs: int) -> int:
    failed = 0
    for size in sizes:
        notification: list[float] = []
        consistent: list[float] = []
        bound: list[float] = []
        for _ in range(runs):
            result = await run_openstack_demo(size, credentials, timeout_s=120)
            if result.error or result.notification_ms is None or result.nova_consistent_ms is None:
                print(f"run with {size} servers failed: {result.error}", file=sys.stderr)
                failed += 1
                continue
            notification.append(result.notification_ms)
            consistent.append(result.nova_consistent_ms)
            bound.append(await nova_bound(credentials, size))
        params = {"servers": size, "runs": runs}
        if notification:
            measured = {
                "notification": notification,
                "nova_consistent": consistent,
                "nova_bound": bound,
            }
            for name, samples in measured.items():
                emit(f"openstack.{name}", params, "ms", samples, p90=percentile(samples, 90), values=samples)
    return failed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.openstack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--credentials", type=Path, default=default_base_dir() / "credentials.json")
    args = parser.parse_args(argv)
    if not args.credentials.exists():
        print(f"no credentials at {args.credentials}: run 'vigil testbed openstack up' first", file=sys.stderr)
        return 2
    credentials = json.loads(args.credentials.read_text())
    return 1 if asyncio.run(measure(credentials, args.sizes, args.runs)) else 0


if __name__ == "__main__":
    sys.exit(main())
