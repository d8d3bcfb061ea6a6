"""Rolling maintenance: a session's duration against its lower bound, and its migrations.

Each run is ``vigil demo maintenance`` (:mod:`vigil.demo_maintenance`) in a
fresh data directory: N hosts of 4 vCPUs, the ACT/STBY pair in an
anti-affinity group and non-redundant 1-vCPU instances filling all but one
host's worth of vCPUs, spread so that no host is empty; every migration takes
``--migration-s``, every host's ``upgrade`` action ``--upgrade-s``; the sample
app manager answers each message as soon as it arrives; the probe sends 200
requests a second to the app throughout. The duration is the session's own,
from its creation to MAINTENANCE_DONE.

The lower bound is the sum of the times nothing can save, read off the
layout the run starts from (instances per host):

    bound = hosts x upgrade_s + evacuations x migration_s

Hosts are maintained one at a time, each emptied, then upgraded, before
the next one's turn (the workflow's rule, so the VNF never loses more than
one host at once): upgrades and evacuations add up. Here it is forced
anyway: with one host's worth of vCPUs free in all, the room the next host's
instances need is the host just maintained. All of one host's instances
migrate in parallel (no group constraint limits how many move at once
here), so an evacuation costs one migration time. A host empty at the
start costs no evacuation. When no host is
empty, one is emptied first (PREPARE_MAINTENANCE) onto hosts not yet
maintained, and each of those still holds instances at its turn: every host
that holds instances at the start is evacuated exactly once at best, so

    evacuations = the hosts holding instances at the start.

Messages, replies and the moments between steps are overhead on top of it;
the target is duration ≤ 1.2 x bound. The fewest migrations
(:func:`vigil.demo_maintenance.minimum_migrations`) are every instance once,
plus the first emptied host's instances a second time when no host is empty
(at best the host with the fewest).

Prints one JSON line per host count and figure: ``duration`` (s), ``ratio``
(duration / bound), ``migrations`` (with the minimum) and
``failed_requests`` (the probe's), each with p50/p99/max over the runs.

    python -m bench.maintenance [--hosts 4 16 64] [--runs R] [--migration-s 0.2] [--upgrade-s 0.3]
"""

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bench.stats import emit
from vigil.demo_maintenance import DemoSetup, MaintenanceDemoResult, minimum_migrations, run_maintenance_demo

TARGET_RATIO = 1.2
DEFAULT_RUNS = {4: 5, 16: 5, 64: 2}

T = TypeVar("T")


def evacuations(layout: Mapping[str, int]) -> int:
    """Host evacuations that need migrations, at best: every host holding instances at the start, once."""
    return sum(1 for n in layout.values() if n > 0)


def lower_bound(layout: Mapping[str, int], *, upgrade_s: float, migration_s: float) -> float:
    """hosts x upgrade_s + evacuations x migration_s (see the module docstring)."""
    return len(layout) * upgrade_s + evacuations(layout) * migration_s


@dataclass(frozen=True, slots=True)
class Run:
    result: MaintenanceDemoResult
    bound_s: float
    minimum: int

    @property
    def ok(self) -> bool:
        return self.result.ok and self.result.duration_s is not None

    @property
    def ratio(self) -> float:
        assert self.result.duration_s is not None
        return self.result.duration_s / self.bound_s


async def measure(setup: DemoSetup, runs: int) -> list[Run]:
    done: list[Run] = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="vigil-bench-maintenance-") as scratch:
            result = await run_maintenance_demo(setup, data_dir=Path(scratch))
        bound = lower_bound(result.layout, upgrade_s=setup.upgrade_s, migration_s=setup.migration_s)
        run = Run(result, bound, minimum_migrations(result.layout))
        if not run.ok:
            print(json.dumps({"hosts": setup.hosts, "failed_run": result.as_json()}), file=sys.stderr)
        done.append(run)
    return done


def report(setup: DemoSetup, runs: Sequence[Run]) -> bool:
    """Print the result lines of one host count; True if every run ended well."""
    good = [r for r in runs if r.ok]
    failed = len(runs) - len(good)
    params = {
        "hosts": setup.hosts,
        "vcpus": setup.vcpus,
        "instances": sum(runs[0].result.layout.values()) if runs else 0,
        "migration_s": setup.migration_s,
        "upgrade_s": setup.upgrade_s,
    }
    if not good:
        print(json.dumps({"benchmark": "maintenance", **params, "error": "no run ended well"}), flush=True)
        return False
    bounds = sorted({round(r.bound_s, 3) for r in good})
    bound: float | list[float] = bounds[0] if len(bounds) == 1 else bounds
    durations = [r.result.duration_s or 0.0 for r in good]
    ratios = [r.ratio for r in good]
    emit("maintenance", {**params, "figure": "duration"}, "s", durations, bound_s=bound, failed_runs=failed)
    emit(
        "maintenance",
        {**params, "figure": "ratio"},
        "duration/bound",
        ratios,
        target_max=TARGET_RATIO,
        met=max(ratios) <= TARGET_RATIO,
        failed_runs=failed,
    )
    minimum = sorted({r.minimum for r in good})
    emit(
        "maintenance",
        {**params, "figure": "migrations"},
        "migrations",
        [float(r.result.migrations) for r in good],
        minimum=minimum[0] if len(minimum) == 1 else minimum,
        at_minimum=all(r.result.migrations == r.minimum for r in good),
        failed_runs=failed,
    )
    emit(
        "maintenance",
        {**params, "figure": "failed_requests"},
        "requests",
        [float(r.result.failed_requests) for r in good],
        probe_requests=sum(r.result.requests for r in good),
        failed_runs=failed,
    )
    return failed == 0


def _run(work: Coroutine[Any, Any, T]) -> T:
    """On uvloop when it is installed, as ``vigil serve`` runs."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(work)
    return uvloop.run(work)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--runs", type=int, default=None, help="runs per host count (default: 5, 2 for 64+)")
    parser.add_argument("--vcpus", type=int, default=4)
    parser.add_argument("--migration-s", type=float, default=0.2)
    parser.add_argument("--upgrade-s", type=float, default=0.3)
    args = parser.parse_args(argv)
    status = 0
    for hosts in args.hosts:
        runs = args.runs or DEFAULT_RUNS.get(hosts, 2 if hosts >= 64 else 5)
        setup = DemoSetup(hosts=hosts, vcpus=args.vcpus, migration_s=args.migration_s, upgrade_s=args.upgrade_s)
        if not report(setup, _run(measure(setup, runs))):
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
