"""Management-loss detection by the heartbeat monitor, and what the monitor costs.

Vigil runs as ``vigil serve`` in its own process (uvloop, SQLite, a
generated cloud of 100 hosts), its heartbeat monitor on a loopback UDP
port; the agents are other processes. Three parts:

* ``detect``: a real ``vigil agent`` (heartbeats only, 20 ms x 3) is frozen
  with SIGSTOP, as a hung host would be; T00 is the moment of the signal.
  Detection is T01 - T00, T01 being the fault's detection time (the
  deadline that passed, ``time`` of the monitor's ``compute.host.down``),
  and ``noticed`` the moment the monitor's timer actually ran. The agent is
  thawed (SIGCONT), the host comes back after the hold-down, and the next
  injection starts. Target: p99 <= 3 x 20 ms + 10 ms = 70 ms. Since the last
  heartbeat left between 0 and 20 ms before the freeze, the floor is
  40-60 ms.
* ``cpu``: 100 simulated hosts (one sender process, 100 heartbeat senders
  at 20 ms) for ``--cpu-s`` seconds: CPU seconds of the Vigil process per
  wall second, less its idle rate measured first, per 100 hosts.
* ``soak`` (``--soak-s``): the same load for longer, counting false
  positives (hosts declared down while their agents ran), which must be 0,
  and the heartbeats lost and late. ``--stall-every-s 30 --stall-ms 1000``
  also stops Vigil and the agents together now and then (SIGSTOP), as a
  stalled machine would, to show the monitor's guards at work.

    python -m bench.detect_heartbeat [--injections 30] [--cpu-s 10] [--hosts 100] [--soak-s 0] [--realtime]

``--realtime`` runs the agents as ``vigil agent --realtime`` does (SCHED_FIFO,
memory locked): on this shared 2-core machine an ordinary process now and
then waits more than the 40 ms of slack a 20 ms x 3 session leaves.
"""

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.stats import emit
from vigil.agent.heartbeat import HeartbeatSender
from vigil.agent.realtime import make_realtime

ADMIN = "bench-admin"
INTERVAL_MS = 20
MULT = 3
TARGET_MS = MULT * INTERVAL_MS + 10


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def host_name(i: int) -> str:
    return f"compute-{i + 1:05d}"


@contextlib.contextmanager
def vigil_server(hosts: int, hold_down_s: float) -> Iterator[tuple[str, int, psutil.Process]]:
    """``vigil serve`` in a scratch directory; (API URL, heartbeat UDP port, the process)."""
    with tempfile.TemporaryDirectory(prefix="vigil-bench-hb-") as scratch:
        data = Path(scratch)
        (data / "tokens.yaml").write_text(f"{ADMIN}: {{project: admin, role: admin}}\n")
        port, udp = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
        env = {
            **os.environ,
            "VIGIL_MONITOR__LISTEN": f"127.0.0.1:{udp}",
            "VIGIL_MONITOR__HOLD_DOWN_S": str(hold_down_s),
            "VIGIL_LOG_LEVEL": "ERROR",
        }
        args = ["serve", "--data-dir", scratch, "--port", str(port), "--hosts", str(hosts), "--instances-per-host", "1"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "vigil", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"vigil serve did not start: {proc.stderr.read().decode() if proc.stderr else ''}"
                    )
                time.sleep(0.1)
            yield url, udp, psutil.Process(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for(check: Any, what: str, within_s: float = 10.0, every_s: float = 0.005) -> Any:
    deadline = time.monotonic() + within_s
    while not (found := check()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"waited {within_s} s for {what}")
        time.sleep(every_s)
    return found


def _unix(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def detect(injections: int, warmup: int, realtime: bool) -> None:
    host = host_name(0)
    with (
        vigil_server(hosts=100, hold_down_s=0.2) as (url, udp, _),
        httpx.Client(base_url=url, headers={"X-Auth-Token": ADMIN}, timeout=10) as api,
    ):
        agent_args = ["agent", "--host", host, "--heartbeat", f"127.0.0.1:{udp}", "--log-level", "WARNING"]
        agent_args.append("--realtime" if realtime else "--no-realtime")
        agent = subprocess.Popen([sys.executable, "-m", "vigil", *agent_args, "--interval-ms", str(INTERVAL_MS)])

        def monitored() -> dict[str, Any]:
            found: dict[str, Any] = api.get(f"/v1/monitor/hosts/{host}").json()["host"]
            return found

        def active_fault() -> dict[str, Any] | None:
            faults = api.get("/v1/faults", params={"state": "ACTIVE"}).json()["faults"]
            return next((f for f in faults if f["resource_id"] == host), None)

        detected: list[float] = []
        noticed: list[float] = []
        try:
            for run in range(warmup + injections):
                wait_for(lambda: monitored()["state"] == "UP" and active_fault() is None, "the host up", 30)
                time.sleep(0.2)  # steady heartbeats
                t00 = time.time()
                agent.send_signal(signal.SIGSTOP)
                time.sleep(0.1)
                fault = wait_for(active_fault, "the fault")
                profile = api.get(f"/v1/faults/{fault['id']}/profile").json()
                transition = monitored()["last_transition"]
                agent.send_signal(signal.SIGCONT)
                if run >= warmup:
                    detected.append((profile["checkpoints"]["T01"] - t00) * 1000)
                    noticed.append((_unix(transition["noticed"]) - t00) * 1000)
        finally:
            agent.kill()
            agent.wait()
    params = {"fault": "agent-freeze (SIGSTOP)", "interval_ms": INTERVAL_MS, "mult": MULT, "target_ms": TARGET_MS}
    params["realtime"] = realtime
    emit("detect_heartbeat.detection", {**params, "measure": "T01 - T00"}, "ms", detected)
    emit("detect_heartbeat.detection", {**params, "measure": "noticed - T00"}, "ms", noticed)


def senders_main(udp: int, hosts: int, seconds: float, realtime: bool) -> None:
    """The simulated hosts (run in a child process): ``hosts`` heartbeat senders at 20 ms.
    At the end (or on SIGTERM) prints how far behind its schedule it ever was."""

    if realtime:
        for problem in make_realtime():
            print(f"senders: {problem}", file=sys.stderr)

    async def run() -> None:
        senders = [HeartbeatSender(host_name(i), ("127.0.0.1", udp), interval_ms=INTERVAL_MS) for i in range(hosts)]
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        for sender in senders:
            await sender.start()
            await asyncio.sleep(INTERVAL_MS / 1000 / hosts)  # spread them over the interval
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        for sender in senders:
            await sender.aclose()
        summary = {
            "max_behind_ms": round(max(s.max_behind_s for s in senders) * 1000, 3),
            "skipped": sum(s.skipped for s in senders),
            "errors": sum(s.errors for s in senders),
        }
        print(json.dumps(summary), flush=True)

    try:
        import uvloop

        uvloop.run(run())
    except ImportError:
        asyncio.run(run())


def load(
    hosts: int, seconds: float, *, soak: bool, realtime: bool, stall_every_s: float = 0, stall_ms: float = 0
) -> None:
    with (
        vigil_server(hosts=max(hosts, 1), hold_down_s=1.0) as (url, udp, vigil),
        httpx.Client(base_url=url, headers={"X-Auth-Token": ADMIN}, timeout=10) as api,
    ):
        time.sleep(1.0)
        idle_start, idle_cpu = time.monotonic(), _cpu(vigil)
        time.sleep(3.0)
        idle_rate = (_cpu(vigil) - idle_cpu) / (time.monotonic() - idle_start)
        warm = 3.0
        sender = subprocess.Popen(
            [sys.executable, "-m", "bench.detect_heartbeat", "--senders", str(udp), "--hosts", str(hosts),
             "--seconds", str(seconds + 600), "--realtime" if realtime else "--no-realtime"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            wait_for(lambda: _up(api) >= hosts, f"{hosts} hosts up", 30, 0.1)
            time.sleep(warm)
            per_second: list[float] = []
            down_at_once: list[int] = []
            start, cpu = time.monotonic(), _cpu(vigil)
            last_t, last_cpu = start, cpu
            stalls, next_stall = 0, start + stall_every_s
            while time.monotonic() - start < seconds:
                time.sleep(1.0)
                if stall_every_s and time.monotonic() >= next_stall:
                    # The machine stalls: both processes stop, then resume in either order.
                    stalls += 1
                    next_stall += stall_every_s
                    order = [vigil.pid, sender.pid] if stalls % 2 else [sender.pid, vigil.pid]
                    for pid in order:
                        os.kill(pid, signal.SIGSTOP)
                    time.sleep(stall_ms / 1000)
                    for pid in order:
                        os.kill(pid, signal.SIGCONT)
                now, used = time.monotonic(), _cpu(vigil)
                per_second.append((used - last_cpu) / (now - last_t))
                last_t, last_cpu = now, used
                if soak:
                    down_at_once.append(hosts - _up(api))
            rate = (last_cpu - cpu) / (last_t - start)
            listing = api.get("/v1/monitor/hosts").json()
        finally:
            sender.terminate()
            out, _ = sender.communicate(timeout=30)
    sent = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    hosts_out = listing["hosts"]
    false_positives = sum((h["transitions"] - 1 + (h["state"] != "UP")) // 2 for h in hosts_out)
    net = [max(0.0, s - idle_rate) * 100 / hosts for s in per_second]
    extra: dict[str, Any] = {
        "idle_cpu_s_per_s": round(idle_rate, 4),
        "cpu_s_per_s": round(rate, 4),
        "net_cpu_s_per_s_per_100_hosts": round((rate - idle_rate) * 100 / hosts, 4),
        "heartbeats_per_s": round(hosts * 1000 / INTERVAL_MS),
        "received": sum(h["received"] for h in hosts_out),
        "lost": sum(h["lost"] for h in hosts_out),
        "late": sum(h["late"] for h in hosts_out),
        "bad": listing["monitor"]["bad"],
        "max_gap_ms": max(h["max_gap_ms"] for h in hosts_out),
        "mass_silences": listing["monitor"]["mass_silences"],
        "stall_graces": sum(h["stalls"] for h in hosts_out),
        "sender_max_behind_ms": sent.get("max_behind_ms"),
        "sender_skipped": sent.get("skipped"),
    }
    params = {"hosts": hosts, "interval_ms": INTERVAL_MS, "mult": MULT, "seconds": seconds, "realtime": realtime}
    if stall_every_s:
        params.update(stalls_injected=stalls, stall_ms=stall_ms)
    if soak:
        extra.update(
            false_positives=false_positives,
            hosts_with_false_positives=sum(1 for h in hosts_out if h["transitions"] > 1),
            seconds_with_a_host_down=sum(1 for n in down_at_once if n),
            most_hosts_down_at_once=max(down_at_once, default=0),
        )
        emit("detect_heartbeat.soak", params, "cpu_s_per_s_per_100_hosts", net, **extra)
    else:
        emit("detect_heartbeat.cpu", params, "cpu_s_per_s_per_100_hosts", net, **extra)


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _up(api: httpx.Client) -> int:
    return sum(1 for h in api.get("/v1/monitor/hosts").json()["hosts"] if h["state"] == "UP")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--injections", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--cpu-s", type=float, default=10.0, help="Seconds of the CPU measurement (0: skip).")
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--soak-s", type=float, default=0.0, help="Seconds of the soak (0: skip).")
    parser.add_argument(
        "--realtime",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="Agents at real-time priority with locked memory, as vigil agent --realtime.",
    )
    parser.add_argument("--stall-every-s", type=float, default=0, help="Soak: stop Vigil and the agents this often...")
    parser.add_argument("--stall-ms", type=float, default=1000, help="...for this long (a stalled machine).")
    parser.add_argument("--senders", type=int, help=argparse.SUPPRESS)  # child mode: the UDP port
    parser.add_argument("--seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.senders is not None:
        senders_main(args.senders, args.hosts, args.seconds, args.realtime)
        return 0
    if args.injections > 0:
        detect(args.injections, args.warmup, args.realtime)
    if args.cpu_s > 0:
        load(args.hosts, args.cpu_s, soak=False, realtime=args.realtime)
    if args.soak_s > 0:
        load(
            args.hosts,
            args.soak_s,
            soak=True,
            realtime=args.realtime,
            stall_every_s=args.stall_every_s,
            stall_ms=args.stall_ms,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
