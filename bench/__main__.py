"""Run every benchmark in turn (``make bench``)."""

import subprocess
import sys

BENCHMARKS = [
    "bench.resource_map",
    "bench.notify",
    "bench.http_fanout",
    "bench.detect_heartbeat",
    "bench.detect_link",
    "bench.outage",
    "bench.maintenance",
]


def main() -> int:
    failed = 0
    for module in BENCHMARKS:
        failed |= subprocess.run([sys.executable, "-m", module]).returncode
    return failed


if __name__ == "__main__":
    sys.exit(main())
