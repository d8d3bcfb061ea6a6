"""Detection time on the namespace testbed: a real fault (T00) to Vigil's raw fault (T01).

``vigil.testbed`` (root needed) with a real ``vigil agent`` per host; the
hosts are taken in turn, and each injection is one of:

* ``link-down``: the host's data-plane NIC set down inside its namespace
  (one ``ioctl``, T00 just before it); the agent's netlink carrier watch
  reports ``network.link.down`` with its detection time as the event's
  ``time`` (T01). Target p99 ≤ 20 ms.
* ``mgmt-down``: the management NIC set down; the agent's heartbeats stop
  and Vigil's heartbeat monitor reports ``compute.host.down`` at the
  deadline that passed (T01). Target p99 ≤ 3 x interval + 10 ms.
* ``agent-freeze``: SIGSTOP to the agent; the same detection path.

T01 is read from the fault Vigil opens (``GET /v1/faults``, its profile);
then the fault is undone and the next injection waits until Vigil has the
host UP again (for the heartbeat kinds, after the monitor's hold-down).

    python -m bench.detect_link [--runs 30] [--hosts 3] [--kinds link-down mgmt-down agent-freeze]
"""

import argparse
import os
import sys
import time
from collections.abc import Callable

import httpx

from bench.stats import emit
from vigil.testbed import bed, plan
from vigil.testbed.faults import Injector
from vigil.testbed.state import TestbedState

KINDS = ("link-down", "mgmt-down", "agent-freeze")
INTERVAL_MS = 20.0


def targets(kind: str) -> float:
    return 20.0 if kind == "link-down" else 3 * INTERVAL_MS + 10


def _active_fault(client: httpx.Client, host: str) -> str | None:
    response = client.get("/v1/faults", params={"state": "ACTIVE"})
    response.raise_for_status()
    found = [f["id"] for f in response.json()["faults"] if (f["resource_type"], f["resource_id"]) == ("host", host)]
    return found[-1] if found else None


def _host_status(client: httpx.Client, host: str) -> str:
    response = client.get(f"/v1/hosts/{host}")
    response.raise_for_status()
    status: str = response.json()["host"]["status"]
    return status


def _wait(predicate: Callable[[], bool], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting until {what}")
        time.sleep(0.002)


def wait_stable_up(client: httpx.Client, host: str, hold_s: float, timeout_s: float) -> None:
    """Until ``host`` is UP in Vigil and stays so for ``hold_s`` (late reports, e.g. the gateway probe's, come in)."""
    deadline = time.monotonic() + timeout_s
    while True:
        _wait(lambda: _host_status(client, host) == "UP", f"{host} is UP", max(0.1, deadline - time.monotonic()))
        time.sleep(hold_s)
        if _host_status(client, host) == "UP" and _active_fault(client, host) is None:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{host} does not stay UP")


def detect_once(client: httpx.Client, injector: Injector, host: plan.HostPlan, kind: str, timeout_s: float) -> float:
    """Inject, wait for Vigil's fault, undo; T01 - T00 in ms."""
    injected = injector.inject(host, kind)
    try:
        _wait(lambda: _active_fault(client, host.name) is not None, "Vigil opens a fault", timeout_s)
        fault = _active_fault(client, host.name)
        profile = client.get(f"/v1/faults/{fault}/profile").json()
        t01: float = profile["checkpoints"]["T01"]
        return (t01 - injected.t00) * 1000
    finally:
        injector.clear(host, kind)


def measure(state: TestbedState, kind: str, runs: int, timeout_s: float = 10.0) -> tuple[list[float], int]:
    injector = Injector(state)
    samples: list[float] = []
    failed = 0
    hosts = plan.hosts(state.hosts)
    try:
        with bed.admin_client(state) as client:
            for run in range(runs):
                host = hosts[run % len(hosts)]
                wait_stable_up(client, host.name, 0.4, timeout_s)
                try:
                    samples.append(detect_once(client, injector, host, kind, timeout_s))
                except (TimeoutError, KeyError, httpx.HTTPError) as exc:
                    failed += 1
                    print(f"bench.detect_link: {kind} on {host.name}: {exc}", file=sys.stderr)
            for host in hosts:
                wait_stable_up(client, host.name, 0.4, timeout_s)
    finally:
        injector.close()
    return samples, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="injections per kind")
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench.detect_link: skipped, the testbed needs root", file=sys.stderr)
        return 0
    state = bed.up(args.hosts, interval_ms=INTERVAL_MS)
    status = 0
    try:
        for kind in args.kinds:
            samples, failed = measure(state, kind, args.runs)
            if not samples:
                print(f"bench.detect_link: no {kind} injection was measured", file=sys.stderr)
                status = 1
                continue
            params = {"kind": kind, "hosts": args.hosts, "interval_ms": INTERVAL_MS, "detect_mult": 3}
            emit("detect", params, "ms", samples, target_p99=targets(kind), failed_runs=failed)
            status |= 1 if failed else 0
    finally:
        bed.down()
    return status


if __name__ == "__main__":
    sys.exit(main())
