"""Crash consistency: SIGKILL at random and named points, then the invariants, on each store.

Runs the crash harness (``vigil.harness.crash``) for ``--kills`` rounds on
SQLite and on PostgreSQL (a fresh database, dropped afterwards): each round
kills ``vigil serve`` during an event storm with slow and absent consumers
and maintenance sessions, restarts it, lets the monitors send again what got
no 2xx, and checks the four invariants. The target is 0 violations over 200+
kills per store. Prints one JSON line per store: kills, how many died at a
named crash point, reports acknowledged, violations (and the first few), and
the seconds per round.

With ``--ha`` it runs high availability instead: two ``vigil serve`` on one
PostgreSQL database, the leader killed in every round during the storm and
the standby taking over (flapping leadership); the same invariants after
each takeover, and the takeover time (the kill to the standby answering as
leader) as p50, p99 and max.

    python -m bench.crash [--kills 200] [--store sqlite postgresql] [--seed 1] [--ha]
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bench.databases import POSTGRES, database
from bench.stats import percentile
from vigil.harness.crash import CrashRun, RoundResult


async def run_store(
    kind: str, kills: int, seed: int, server: str, verbose: bool, ha: bool = False
) -> dict[str, object]:
    def progress(result: RoundResult) -> None:
        if verbose or result.violations:
            print(f"  {kind} round {result.round}: {result.kill}, {len(result.violations)} violations", file=sys.stderr)
            for violation in result.violations[:5]:
                print(f"    {violation}", file=sys.stderr)

    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"vigil-crash-{kind}-") as scratch:
        async with database(kind, server) as url:
            run = CrashRun(Path(scratch), store_url=url, seed=seed, ha=ha)
            rounds = await run.run(kills, on_round=progress)
    violations = list(dict.fromkeys(v for r in rounds for v in r.violations))  # each distinct one once
    points = Counter(
        r.kill.split(":")[0] + (" (during start)" if "during start" in r.kill else "")
        for r in rounds
        if r.died_at_point
    )
    takeovers = [r.takeover_s * 1000 for r in rounds if r.takeover_s is not None]
    failover = (
        {
            f"takeover_ms_{name}": round(percentile(takeovers, q), 1)
            for name, q in (("p50", 50), ("p99", 99), ("max", 100))
        }
        if takeovers
        else {}
    )
    return {
        "benchmark": "crash",
        "store": f"{kind}-ha" if ha else kind,
        **failover,
        "kills": len(rounds),
        "at_named_points": sum(points.values()),
        "by_point": dict(sorted(points.items())),
        "reports_acknowledged": sum(r.acknowledged for r in rounds),
        "violations": len(violations),
        "first_violations": violations[:10],
        "round_s_p50": round(percentile([r.seconds for r in rounds], 50), 2),
        "total_s": round(time.monotonic() - began, 1),
        "seed": seed,
    }


def _point(kill: str) -> str:
    """``after-notify:3`` → ``after-notify``; a death while starting is counted apart."""
    name = kill.split(":")[0]
    return f"{name} (during start)" if kill.endswith("during start") else name


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=200, help="rounds (kills) per store")
    parser.add_argument("--store", nargs="*", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", default=POSTGRES, help="a PostgreSQL server to make the database on")
    parser.add_argument("--verbose", action="store_true", help="print every round")
    parser.add_argument("--ha", action="store_true", help="two servers on PostgreSQL, the leader killed each round")
    args = parser.parse_args(argv)
    failed = 0
    for kind in ["postgresql"] if args.ha else args.store:
        result = asyncio.run(run_store(kind, args.kills, args.seed, args.postgres, args.verbose, ha=args.ha))
        print(json.dumps(result), flush=True)
        failed |= int(bool(result["violations"]))
    return failed


if __name__ == "__main__":
    sys.exit(main())
