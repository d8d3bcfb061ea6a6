"""Service outage of an ACT/STBY VNF when its active host's data-plane link goes down.

On a namespace testbed (``vigil.testbed``, root needed): Vigil in its own
namespace, a real ``vigil agent`` per host, the VNF's instances as
processes serving UDP requests on the data-plane network, the active one
holding the service address, and a probe client in the gateway's namespace
sending ``--rate`` requests per second to it. Each injection takes the
active instance's host's data-plane link down (one ``ioctl``; T00 just
before it); the agent's carrier watch reports ``network.link.down``,
Vigil notifies the sample VNF manager, which switches over and tells the
standby to claim the service address (rtnetlink, gratuitous ARP). The
outage is what the probe saw: from the last request answered before T00 to
the first one answered after it. Then the host is repaired and the next
injection hits the new active's host.

Prints one result line each for outage (target p99 ≤ 150 ms), detection
(T01 - T00), notification (T09 - T01), and T00 to the switchover.

    python -m bench.outage [--runs 20] [--hosts 3] [--rate 500] [--format aodh]
"""

import argparse
import asyncio
import json
import os
import sys

from bench.stats import emit
from vigil.testbed import bed
from vigil.testbed.scenario import AppOnTestbed, Measured


async def measure(runs: int, hosts: int, rate: float, payload_format: str) -> list[Measured]:
    state = await asyncio.to_thread(bed.up, hosts)
    results: list[Measured] = []
    try:
        async with AppOnTestbed(state, rate=rate, payload_format=payload_format) as app:
            for _ in range(runs):
                measured = await app.inject("link-down")
                results.append(measured)
                if measured.error:
                    print(json.dumps({"error": measured.error, **measured.as_json()}), file=sys.stderr)
                await app.repair(measured.host)
    finally:
        await asyncio.to_thread(bed.down)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--rate", type=float, default=500.0, help="probe requests per second")
    parser.add_argument("--format", default="aodh", choices=["aodh", "sol003"])
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench.outage: skipped, the testbed needs root", file=sys.stderr)
        return 0
    results = asyncio.run(measure(args.runs, args.hosts, args.rate, args.format))
    done = [r for r in results if r.complete]
    params = {"fault": "link-down", "hosts": args.hosts, "probe_rate": args.rate, "format": args.format}
    failed = len(results) - len(done)
    if not done:
        print("bench.outage: no injection was measured", file=sys.stderr)
        return 1
    figures = {
        "outage": ([r.outage_ms for r in done], 150.0),
        "detection": ([r.detection_ms for r in done], 20.0),
        "notification": ([r.notification_ms for r in done], None),
        "switchover": ([r.switchover_ms for r in done], None),
    }
    for figure, (samples, target) in figures.items():
        extra = {"failed_runs": failed, **({"target_p99": target} if target is not None else {})}
        emit("outage", {**params, "figure": figure}, "ms", [s for s in samples if s is not None], **extra)
    lost = [r.lost or 0 for r in done]
    emit("outage", {**params, "figure": "lost_requests"}, "requests", lost, failed_runs=failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
