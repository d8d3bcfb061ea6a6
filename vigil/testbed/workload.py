"""The VNF's instances as real processes, and the fleet that runs them.

An instance process (``python -m vigil.testbed.workload``) runs inside its
host's namespace and answers UDP requests on the data-plane network: on
its host's data-plane address, and on the VNF's service address (VIP)
while it holds it. Its socket on the VIP is bound with ``IP_FREEBIND``
beforehand, so claiming the service is only adding the address. The
process takes orders on a UNIX datagram socket (paths are not confined to
a network namespace): ``claim`` adds the VIP to its data-plane interface
(one rtnetlink message) and announces it with gratuitous ARP (repeated
after 20 and 200 ms, as VRRP routers do); ``release`` removes it. A
non-redundant instance (``--no-vip``) serves its own address only, on a
port of its own, and has no VIP to claim. Each
order and its timing is logged as a JSON line on stdout.

:class:`Fleet` (the orchestrator's side) starts one process per Vigil
instance in the namespace of the host the instance runs on, gives the
orders, keeps the processes in step with the VNF manager's members
(:meth:`Fleet.sync`), and stops them, taking the VIP off their host even if
the process cannot answer (unless the instance that holds the VIP now runs
on that host too). :meth:`Fleet.abandon` instead forgets a process without
stopping it, as an orchestrator must leave an instance on a host it cannot
reach (only the host's power stops it), and :meth:`Fleet.serving` reads
where a process answers (its address, port and start). Its processes' pid
files are in the testbed's state directory, so ``vigil testbed down`` stops
them too.

The stdlib only: an instance starts in tens of milliseconds.
"""

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from vigil.testbed import plan
from vigil.testbed.rtnl import Announcer, Rtnl

IP_FREEBIND = 15
START_BATCH = 3  # processes Fleet.sync starts at once (more would starve the rest of this 2-core machine)
GARP_REPEATS_S = (0.02, 0.2)


# -- the instance process -----------------------------------------------------


class Instance:
    def __init__(self, name: str, address: str, vip: str | None, port: int, dev: str, control: Path) -> None:
        self.name = name
        self.address = address
        self.vip = vip
        self.port = port
        self.dev = dev
        self.control = control
        self.rtnl = Rtnl()
        self.announcer = Announcer(dev, vip) if vip else None  # None: a non-redundant instance, no VIP
        self.active = False
        self.answered = 0
        self._tag = b" " + name.encode()
        self._stop = asyncio.Event()

    def _log(self, event: str, **fields: object) -> None:
        print(json.dumps({"event": event, "instance": self.name, "at": time.time(), **fields}), flush=True)

    def _udp(self, address: str, freebind: bool) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if freebind:
            sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        sock.bind((address, self.port))
        sock.setblocking(False)
        return sock

    def _serve(self, sock: socket.socket) -> None:
        while True:
            try:
                data, peer = sock.recvfrom(2048)
            except BlockingIOError:
                return
            with contextlib.suppress(OSError):
                sock.sendto(data + self._tag, peer)
            self.answered += 1

    def claim(self) -> None:
        if self.vip is None or self.announcer is None:
            self._log("no_vip")
            return
        start = time.time()
        self.rtnl.add_address(self.dev, self.vip)
        added = time.time()
        self.announcer.announce()
        self.active = True
        self._log("claimed", started=start, added_ms=(added - start) * 1000, took_ms=(time.time() - start) * 1000)
        loop = asyncio.get_running_loop()
        for delay in GARP_REPEATS_S:
            loop.call_later(delay, self._announce)

    def _announce(self) -> None:
        if self.active and self.announcer is not None:
            with contextlib.suppress(OSError):
                self.announcer.announce()

    def release(self) -> None:
        if self.vip is None:
            return
        start = time.time()
        removed = self.rtnl.delete_address(self.dev, self.vip)
        self.active = False
        self._log("released", removed=removed, took_ms=(time.time() - start) * 1000)

    def _order(self, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(256)
            except BlockingIOError:
                return
            order = data.decode(errors="replace").strip()
            try:
                if order == "claim":
                    self.claim()
                elif order == "release":
                    self.release()
                elif order == "quit":
                    self._stop.set()
                else:
                    self._log("unknown_order", order=order)
            except OSError as exc:
                self._log("order_failed", order=order, error=str(exc))

    async def run(self, active: bool) -> None:
        loop = asyncio.get_running_loop()
        data = [self._udp(self.address, False), *([self._udp(self.vip, True)] if self.vip else [])]
        with contextlib.suppress(FileNotFoundError):
            self.control.unlink()
        orders = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        orders.bind(str(self.control))
        orders.setblocking(False)
        for sock in data:
            loop.add_reader(sock.fileno(), self._serve, sock)
        loop.add_reader(orders.fileno(), self._order, orders)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop.set)
        if active:
            self.claim()
        port = data[0].getsockname()[1]
        self._log("serving", address=self.address, vip=self.vip, port=port, active=self.active)
        try:
            await self._stop.wait()
        finally:
            if self.active:
                with contextlib.suppress(OSError):
                    self.release()
            for sock in [*data, orders]:
                loop.remove_reader(sock.fileno())
                sock.close()
            with contextlib.suppress(FileNotFoundError):
                self.control.unlink()
            self.rtnl.close()
            if self.announcer is not None:
                self.announcer.close()
            self._log("stopped", answered=self.answered)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A VNF instance: a UDP request/response server (testbed workload).")
    parser.add_argument("--name", required=True)
    parser.add_argument("--address", required=True, help="this host's data-plane address")
    parser.add_argument("--vip", default=plan.SERVICE_IP)
    parser.add_argument("--port", type=int, default=plan.SERVICE_PORT)
    parser.add_argument("--dev", default=plan.NS_DC_IF)
    parser.add_argument("--control", required=True, type=Path, help="UNIX datagram socket for orders")
    parser.add_argument("--active", action="store_true", help="claim the service address at start")
    parser.add_argument(
        "--no-vip", action="store_true", help="a non-redundant instance: its own address only (--port 0: any port)"
    )
    args = parser.parse_args(argv)
    vip = None if args.no_vip else args.vip
    instance = Instance(args.name, args.address, vip, args.port, args.dev, args.control)
    asyncio.run(instance.run(args.active))
    return 0


# -- the orchestrator's side ----------------------------------------------------


class FleetError(Exception):
    pass


class Fleet:
    """One instance process per Vigil instance, in its host's namespace."""

    def __init__(self, state_dir: Path, *, python: str = sys.executable) -> None:
        self.state_dir = state_dir
        self.python = python
        self.run_dir = state_dir / "instances"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.hosts: dict[str, plan.HostPlan] = {}  # instance id -> host
        self.holder: str | None = None  # the instance last started active or ordered to claim the VIP
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._log_offsets: dict[str, int] = {}  # instance id -> its log's size when its process started
        self._abandoned: list[subprocess.Popen[bytes]] = []
        self._orders = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._orders.setblocking(False)

    def _control(self, instance: str) -> Path:
        # A UNIX socket path has at most 107 bytes: name it by a short digest of the id.
        return self.run_dir / f"{hashlib.sha256(instance.encode()).hexdigest()[:16]}.sock"

    def _pid_file(self, instance: str) -> Path:
        return self.state_dir / "pids" / f"instance-{instance}.pid"

    def _log_file(self, instance: str) -> Path:
        return self.state_dir / "logs" / f"instance-{instance}.log"

    def start(
        self, instance: str, host: plan.HostPlan, *, active: bool, vip: bool = True, timeout_s: float = 10.0
    ) -> None:
        """Start ``instance``'s process on ``host``; without ``vip`` it serves its own address only
        (on a port of its own: several such instances may share a host with a member of the pair)."""
        self._spawn(instance, host, active=active, vip=vip)
        self._wait_started(instance, time.monotonic() + timeout_s)

    def _spawn(self, instance: str, host: plan.HostPlan, *, active: bool, vip: bool) -> None:
        if instance in self._procs:
            raise FleetError(f"instance {instance} runs already")
        control = self._control(instance)
        with contextlib.suppress(FileNotFoundError):
            control.unlink()
        argv = [
            self.python,
            "-m",
            "vigil.testbed.workload",
            "--name",
            instance,
            "--address",
            host.dc_ip,
            "--control",
            str(control),
        ]
        if not vip:
            argv += ["--no-vip", "--port", "0"]
        elif active:
            argv.append("--active")
            self.holder = instance
        log = self._log_file(instance).open("ab")
        with log:
            self._log_offsets[instance] = log.tell()
            proc = subprocess.Popen(
                ["ip", "netns", "exec", host.netns, *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._pid_file(instance).parent.mkdir(parents=True, exist_ok=True)
        self._pid_file(instance).write_text(f"{proc.pid}\n")
        self._procs[instance] = proc
        self.hosts[instance] = host

    def _wait_started(self, instance: str, deadline: float) -> None:
        """Until the process listens for orders (it serves by then); stopped, and FleetError, if it does not."""
        proc, host, control = self._procs[instance], self.hosts[instance], self._control(instance)
        while not control.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                self.stop(instance)
                raise FleetError(f"instance {instance} on {host.name} did not start (see its log)")
            time.sleep(0.005)

    def order(self, instance: str, what: str) -> bool:
        """Send ``claim``, ``release`` or ``quit``; False if the process is not listening."""
        if what == "claim":
            self.holder = instance
        try:
            self._orders.sendto(what.encode(), str(self._control(instance)))
        except OSError:
            return False
        return True

    def stop(self, instance: str, timeout_s: float = 3.0) -> None:
        proc = self._procs.pop(instance, None)
        host = self.hosts.pop(instance, None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        holder = self.holder
        if holder == instance:
            self.holder = None
        elif holder is not None and self.hosts.get(holder) == host:
            host = None  # the VIP on this host is the holder's now (e.g. a worker leaves the active's host)
        if host is not None:  # a frozen or killed process cannot give the address back itself
            subprocess.run(
                ["ip", "-n", host.netns, "addr", "del", f"{plan.SERVICE_IP}/32", "dev", plan.NS_DC_IF],
                capture_output=True,
                check=False,
            )
        self._pid_file(instance).unlink(missing_ok=True)
        self._control(instance).unlink(missing_ok=True)

    def abandon(self, instance: str) -> None:
        """Forget ``instance``'s process without stopping it or touching its host: it runs on until its host's
        power goes (reaped at :meth:`close`). Another process of the instance may then be started elsewhere."""
        proc = self._procs.pop(instance, None)
        self.hosts.pop(instance, None)
        self._log_offsets.pop(instance, None)
        if self.holder == instance:
            self.holder = None
        if proc is not None:
            self._abandoned.append(proc)

    def serving(self, instance: str, timeout_s: float = 5.0) -> dict[str, Any]:
        """The ``serving`` line of ``instance``'s current process (``address``, ``port``, ``at``: Unix time it
        began to answer), once it has written it."""
        if instance not in self._procs:
            raise FleetError(f"instance {instance} has no process")
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(FileNotFoundError), self._log_file(instance).open("rb") as log:
                log.seek(self._log_offsets.get(instance, 0))
                for line in log.read().splitlines():
                    with contextlib.suppress(ValueError):
                        event = json.loads(line)
                        if isinstance(event, dict) and event.get("event") == "serving":
                            return event
            if self._procs[instance].poll() is not None or time.monotonic() > deadline:
                raise FleetError(f"instance {instance} does not say where it serves (see its log)")
            time.sleep(0.005)

    def running(self) -> dict[str, plan.HostPlan]:
        return {i: h for i, h in self.hosts.items() if self._procs[i].poll() is None}

    def sync(self, wanted: dict[str, tuple[plan.HostPlan, bool]], *, without_vip: Collection[str] = ()) -> None:
        """Processes for exactly ``wanted`` (instance -> (host, active)): stop the rest, start the missing
        (those in ``without_vip`` as non-redundant instances)."""
        for instance in [i for i in self._procs if i not in wanted or wanted[i][0] != self.hosts.get(i)]:
            self.stop(instance)
        missing = [i for i in wanted if i not in self._procs]
        failed: list[str] = []
        for first in range(0, len(missing), START_BATCH):  # a few started at once: their start-ups overlap
            batch = missing[first : first + START_BATCH]
            for instance in batch:
                host, active = wanted[instance]
                self._spawn(instance, host, active=active, vip=instance not in without_vip)
            deadline = time.monotonic() + 10.0
            for instance in batch:
                try:
                    self._wait_started(instance, deadline)
                except FleetError as exc:
                    failed.append(str(exc))
        if failed:
            raise FleetError("; ".join(failed))

    def close(self) -> None:
        for instance in list(self._procs):
            self.stop(instance)
        for proc in self._abandoned:  # normally killed with their host already
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._abandoned.clear()
        self._orders.close()


if __name__ == "__main__":
    sys.exit(main())
