"""Run the benchmarks in turn (``make bench``).

Two long ones are left to be run on their own: ``python -m bench.crash``
(200 kills per store, about 20 minutes each) and ``python -m
bench.consumer_outage`` (a consumer away for 10 minutes).
"""

import subprocess
import sys

BENCHMARKS = [
    "bench.resource_map",
    "bench.notify",
    "bench.journal",
    "bench.restart",
    "bench.http_fanout",
    "bench.detect_heartbeat",
    "bench.detect_link",
    "bench.outage",
    "bench.maintenance",
    "bench.nova_follow",
    "bench.recovery",
    "bench.alertmanager",
]


def main() -> int:
    failed = 0
    for module in BENCHMARKS:
        failed |= subprocess.run([sys.executable, "-m", module]).returncode
    return failed


if __name__ == "__main__":
    sys.exit(main())
