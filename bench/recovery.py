"""Host failure to instances ACTIVE elsewhere: fence first, then evacuate (``vigil demo recovery``).

Each run is :func:`vigil.demo_recovery.run_recovery_demo` in a fresh
scratch directory: N instances on compute-1 of an embedded cloud, every
one's policy ``evacuate``; compute-1's IPMI BMC emulated on loopback and
fenced through Debian's ``fence_ipmilan`` at its default timings; the
embedded cloud's evacuation takes ``--evacuate-s``.

Prints one JSON line per size and figure, p50/p90/p99/max over the runs:

* ``fence``: T01 to the fence confirmed (off, then a status read off).
  Most of it is the agent's own ``power_wait`` (2 s by default for
  ``fence_ipmilan``: it waits that long after the off before polling);
* ``recovered``: T01 to the last evacuation ended (every instance ACTIVE
  on another host);
* ``double_active`` is checked on every run (instances rebuilt while the
  BMC had the host powered): a run with any fails the benchmark.

For comparison, Masakari's defaults add up to at least about 4 minutes
from a host failure to its instances' evacuation (its host monitor's
detection, the notification's wait, the recovery workflow); DESIGN.md's
target for 50 instances is 10 s.

    python -m bench.recovery [--sizes 1 10 50] [--runs 3] [--evacuate-s 0.5]
"""

import argparse
import asyncio
import sys
from collections.abc import Sequence

from bench.stats import emit, percentile
from vigil.demo_recovery import run_recovery_demo


async def measure(sizes: Sequence[int], runs: int, evacuate_s: float) -> int:
    failed = 0
    for size in sizes:
        fence: list[float] = []
        recovered: list[float] = []
        for _ in range(runs):
            result = await run_recovery_demo(size, evacuate_s=evacuate_s)
            if result.error or result.fence_ms is None or result.recovered_ms is None:
                print(f"run with {size} instances failed: {result.error}", file=sys.stderr)
                failed += 1
                continue
            if result.double_active != 0 or result.instances_recovered < size:
                print(f"run with {size} instances: {result.as_json()}", file=sys.stderr)
                failed += 1
            fence.append(result.fence_ms)
            recovered.append(result.recovered_ms)
        params = {"instances": size, "runs": runs, "evacuate_s": evacuate_s}
        for name, samples in (("fence", fence), ("recovered", recovered)):
            if samples:
                emit(f"recovery.{name}", params, "ms", samples, p90=percentile(samples, 90), values=samples)
    return failed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--evacuate-s", type=float, default=0.5)
    args = parser.parse_args(argv)
    return 1 if asyncio.run(measure(args.sizes, args.runs, args.evacuate_s)) else 0


if __name__ == "__main__":
    sys.exit(main())
