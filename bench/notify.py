"""Notification time: from detection (T01) to the last consumer's receipt (T09).

Doctor's figure of merit, measured the way OPNFV's profiler does, over many
faults per case:

* ``host``: one compute host fails with 1, 10, 25 or 50 instances of one
  project on it (Doctor's table: 117 ms for 1 VM, 584-704 ms for 50);
  target p99 ≤ 10 ms at 50;
* ``rack``: the top-of-rack switch of 40 hosts x 100 instances fails,
  4,000 instances across 200 projects, each project with its own
  subscription and its own webhook endpoint (port); target: the last
  consumer notified ≤ 250 ms after T01.

Vigil runs in this process (the API on a loopback port, SQLite store, on
uvloop as ``vigil serve`` does); the webhook receivers are real HTTP
servers in a separate process (``bench.receivers``) that answer
``{"received_at": time.time()}``, which Vigil keeps as T09. The monitor
posts Doctor's event over a kept-alive connection with ``time`` = T01 and
``injected_at`` = T00; the result is read from ``GET /v1/faults/{id}/profile``
once the delivery log shows every notification delivered. Between faults
the failed resource recovers (``*.up``), its instances are reset to ACTIVE
(``reset-state``, as an operator would), and the clearing notifications are
let through, so every fault starts from the same state.

With ``--store postgresql`` the store is a fresh PostgreSQL database; with
``postgresql-ha`` Vigil is the leader of high availability on it, so every
write also checks the leader's lease (``vigil.store.leader``).

    python -m bench.notify [--runs 30] [--warmup 3] [--instances 1 10 25 50] [--no-rack] [--format aodh]
        [--store sqlite|postgresql|postgresql-ha] [--postgres URL]
"""

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.databases import POSTGRES, database
from bench.stats import emit, percentile
from vigil.api.auth import Principal, Role, TokenRegistry
from vigil.domain.callbacks import LOOPBACK
from vigil.settings import load_settings
from vigil.wiring import BackgroundServer, create_server_app

ADMIN, MONITOR = "bench-admin", "bench-monitor"

PROFILER: cProfile.Profile | None = None  # --profile: each measured fault, from the event to the last delivery


class GcClock:
    """Time spent in the garbage collector (a pause of the whole process) while running."""

    def __init__(self) -> None:
        self.total_s = 0.0
        self.collections = 0
        self._started = 0.0
        self.running = False
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if not self.running:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.total_s += time.perf_counter() - self._started
            self.collections += 1

    def close(self) -> None:
        gc.callbacks.remove(self._callback)


@dataclass(frozen=True)
class Case:
    name: str
    hosts: int
    per_host: int
    projects: int
    family: str  # compute.host or network.switch
    target: str  # the host or switch that fails
    targets_ms: dict[str, float] = field(default_factory=dict)
    store: str = "sqlite"  # or postgresql, or postgresql-ha (the leader's lease checked by every write)

    @property
    def params(self) -> dict[str, Any]:
        failed = self.hosts if self.family == "network.switch" else 1
        return {
            **({"store": self.store} if self.store != "sqlite" else {}),
            "case": self.name,
            "hosts_failed": failed,
            "instances": failed * self.per_host,
            "projects": self.projects,
        }


def host_case(instances: int) -> Case:
    targets = {"p99": 10.0} if instances == 50 else {"p99": 2.0} if instances == 1 else {}
    return Case("host", 4, instances, 1, "compute.host", "compute-00001", targets)


RACK = Case("rack", 40, 100, 200, "network.switch", "tor-001", {"max": 250.0})


class EventPoster:
    """A monitor's kept-alive HTTP/1.1 connection, writing requests by hand:
    the monitor's own cost stays out of T01..T09 as far as it can."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self._address = (host, port)
        self._token = token
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        """Open the connection unless it is open (the server closes idle ones after 5 s)."""
        if self._writer is None or self._reader is None or self._reader.at_eof() or self._writer.is_closing():
            await self.aclose()
            self._reader, self._writer = await asyncio.open_connection(*self._address)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        await self.connect()
        assert self._reader is not None
        assert self._writer is not None
        head = (
            f"POST {path} HTTP/1.1\r\nhost: {self._address[0]}\r\nx-auth-token: {self._token}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        )
        self._writer.write(head.encode() + body)
        status_line = await self._reader.readline()
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return int(status_line.split()[1]), await self._reader.readexactly(length)

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._reader = self._writer = None


class Receivers:
    """``bench.receivers`` in a subprocess: ``count`` webhook servers."""

    def __init__(self, count: int) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.receivers", "--count", str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        self.ports: list[int] = json.loads(self._proc.stdout.readline())["ports"]

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=10)


def _event(case: Case, status: str, ident: str, *, t00: float | None = None) -> bytes:
    t01 = time.time()
    details: dict[str, Any] = {
        "hostname": case.target,
        "status": status,
        "monitor": "bench",
        "monitor_event_id": ident,
    }
    if t00 is not None:
        details["injected_at"] = t00
    when = datetime.fromtimestamp(t01, UTC).isoformat()
    return json.dumps({"time": when, "type": f"{case.family}.{status}", "details": details}).encode()


async def _deliveries(admin: httpx.AsyncClient, fault: str, count: int, timeout_s: float = 30.0) -> list[Any]:
    """Wait until the delivery log holds ``count`` finished deliveries of ``fault``."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = (await admin.get("/v1/deliveries", params={"fault": fault, "limit": 1000})).json()["deliveries"]
        if len(found) >= count and all(d["state"] != "PENDING" for d in found):
            return list(found)
        if time.monotonic() > deadline:
            states = [d["state"] for d in found]
            raise RuntimeError(f"fault {fault}: wanted {count} finished deliveries, have {states}")
        await asyncio.sleep(0.01)


async def _reset(admin: httpx.AsyncClient, instances: Sequence[str]) -> None:
    limit = asyncio.Semaphore(16)
    body = {"action": "reset-state", "state": "ACTIVE"}

    async def one(ident: str) -> None:
        async with limit:
            response = await admin.post(f"/v1/instances/{ident}/action", json=body)
            if response.status_code != 202:
                raise RuntimeError(f"reset-state of {ident}: {response.status_code} {response.text}")

    await asyncio.gather(*(one(i) for i in instances))


async def run_case(
    case: Case, runs: int, warmup: int, payload_format: str, store: str = "sqlite", postgres: str = POSTGRES
) -> None:
    logging.getLogger().setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="vigil-bench-notify-") as scratch:
        async with database("sqlite" if store == "sqlite" else "postgresql", postgres) as url:
            case = replace(case, store=store)
            await _run_case(case, runs, warmup, payload_format, Path(scratch), url, ha=store == "postgresql-ha")


async def _run_case(
    case: Case, runs: int, warmup: int, payload_format: str, data_dir: Path, url: str | None, *, ha: bool
) -> None:
    settings = load_settings(
        None,
        data_dir=data_dir,
        log_level="WARNING",
        store={"url": url or f"sqlite+aiosqlite:///{data_dir / 'vigil.db'}"},
        ha={"enabled": ha},
        auth={"tokens_file": data_dir / "tokens.yaml"},
        cloud={"hosts": case.hosts, "instances_per_host": case.per_host, "projects": case.projects},
        monitor={"listen": "off"},
        inspector={"hold_down_s": 0},  # each fault recovers at once, so the next starts from the same state
        notifier={"allowed_callback_networks": list(LOOPBACK)},  # the receivers listen on loopback
    )
    projects = [f"project-{p + 1:03d}" for p in range(case.projects)]
    tokens = {ADMIN: Principal("admin", Role.ADMIN), MONITOR: Principal("monitoring", Role.MONITOR)}
    tokens.update({f"member-{p}": Principal(p, Role.MEMBER) for p in projects})
    receivers = Receivers(case.projects)
    try:
        app = create_server_app(settings, TokenRegistry(tokens))
        async with (
            BackgroundServer(app) as server,
            httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": ADMIN}, timeout=60) as admin,
        ):
            await _measure(case, runs, warmup, payload_format, server, admin, projects, receivers.ports)
    finally:
        receivers.close()


async def _measure(
    case: Case,
    runs: int,
    warmup: int,
    payload_format: str,
    server: BackgroundServer,
    admin: httpx.AsyncClient,
    projects: list[str],
    ports: list[int],
) -> None:
    instances = (await admin.get("/v1/instances", params={"limit": 10000})).json()["instances"]
    hosts = (await admin.get("/v1/hosts", params={"limit": 10000})).json()["hosts"]
    failing = (
        {case.target} if case.family == "compute.host" else {h["name"] for h in hosts if h["switch"] == case.target}
    )
    affected = [i["id"] for i in instances if i["host"] in failing]
    subscribed = 0
    for project, port in zip(projects, ports, strict=True):
        mine = [i["id"] for i in instances if i["project"] == project]
        body = {
            "name": f"bench {project}",
            "filter": {"resource_ids": mine, "event_types": ["instance.down"]},
            "callbacks": [f"http://127.0.0.1:{port}/{project}"],
            "format": payload_format,
        }
        headers = {"X-Auth-Token": f"member-{project}"}
        response = await admin.post("/v1/subscriptions", json=body, headers=headers)
        response.raise_for_status()
        subscribed += any(i["host"] in failing for i in instances if i["project"] == project)
    await asyncio.sleep(0.2)  # the subscriptions' connections open
    poster = EventPoster(server.host, server.port, MONITOR)
    samples: list[float] = []
    points: dict[str, list[float]] = {}
    gc_ms: list[float] = []
    gc_clock = GcClock()
    try:
        for run in range(warmup + runs):
            await poster.connect()  # outside the measurement: a monitor keeps its connection open
            await asyncio.sleep(0.01)
            if PROFILER is not None and run >= warmup:
                PROFILER.enable()
            gc_clock.total_s, gc_clock.running = 0.0, True
            t00 = time.time()
            status, raw = await poster.post("/v1/event", _event(case, "down", f"down-{run}", t00=t00))
            if status != 200:
                raise RuntimeError(f"the fault event was refused: {status} {raw!r}")
            fault = json.loads(raw)["event"]["fault"]
            await asyncio.sleep(0.02 if case.name == "host" else 0.3)
            done = await _deliveries(admin, fault, subscribed)
            gc_clock.running = False
            if PROFILER is not None:
                PROFILER.disable()
            profile = (await admin.get(f"/v1/faults/{fault}/profile")).json()
            if run >= warmup:
                if profile["notification_ms"] is None or any(d["state"] != "DELIVERED" for d in done):
                    raise RuntimeError(f"fault {fault}: not every consumer was notified: {profile}")
                samples.append(profile["notification_ms"])
                for name, at in profile["ms_after_T01"].items():
                    points.setdefault(name, []).append(at)
                gc_ms.append(gc_clock.total_s * 1000)
            status, raw = await poster.post("/v1/event", _event(case, "up", f"up-{run}"))
            if status != 200:
                raise RuntimeError(f"the recovery event was refused: {status} {raw!r}")
            await _reset(admin, affected)
            await _deliveries(admin, fault, 2 * subscribed)  # the clearing notifications are through
            await asyncio.sleep(0.05)
    finally:
        gc_clock.close()
        await poster.aclose()
    extra: dict[str, Any] = {
        "format": payload_format,
        "consumers": subscribed,
        "checkpoints_p50_ms": {name: round(percentile(v, 50), 3) for name, v in sorted(points.items())},
    }
    extra["gc_pause_p50_ms"] = round(percentile(gc_ms, 50), 3)  # while the fault was handled and delivered
    if case.targets_ms:
        extra["target_ms"] = case.targets_ms
        got = {"p99": percentile(samples, 99), "max": max(samples)}
        extra["target_met"] = all(got[k] <= v for k, v in case.targets_ms.items())
    emit("notify", case.params, "ms", samples, **extra)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="faults measured per case (at least 30 for p99)")
    parser.add_argument("--warmup", type=int, default=3, help="faults run first and not counted")
    parser.add_argument("--instances", type=int, nargs="*", default=[1, 10, 25, 50], help="host cases")
    parser.add_argument("--no-rack", dest="rack", action="store_false", help="skip the rack failure")
    parser.add_argument("--format", default="aodh", choices=["aodh", "sol003"])
    parser.add_argument("--profile", metavar="FILE", help="write cProfile stats of the measured faults to FILE")
    parser.add_argument(
        "--store",
        default="sqlite",
        choices=["sqlite", "postgresql", "postgresql-ha"],
        help="the store (PostgreSQL: a fresh database on --postgres; -ha: as the leader of high availability)",
    )
    parser.add_argument("--postgres", default=POSTGRES, help="a PostgreSQL server to make the database on")
    args = parser.parse_args(argv)
    global PROFILER
    if args.profile:
        PROFILER = cProfile.Profile()
    cases = [host_case(n) for n in args.instances] + ([RACK] if args.rack else [])
    try:
        import uvloop
    except ImportError:
        uvloop = None
    for case in cases:
        work = run_case(case, args.runs, args.warmup, args.format, args.store, args.postgres)
        if uvloop is not None:
            uvloop.run(work)
        else:
            asyncio.run(work)
    if PROFILER is not None:
        PROFILER.dump_stats(args.profile)


if __name__ == "__main__":
    main()
