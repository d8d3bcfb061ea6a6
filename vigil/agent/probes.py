"""Active checks of the agent: the data-plane gateway (ICMP echo) and named processes.

:class:`GatewayProbe` sends an ICMP echo request to the gateway every
``interval_s`` and declares it lost when no reply came for ``mult``
intervals (as the heartbeats do), back at the first reply after that. It
uses a raw ICMP socket (root, as the agent normally runs) or, where that is
not allowed, Linux's unprivileged ICMP datagram socket. ``on_change(up,
at, cause)``: once at the first verdict, then at each change.

:class:`ProcessCheck` looks every ``interval_s`` whether each named
process is alive: a name matches a process whose ``comm`` or whose
program (the base name of ``argv[0]``, or of ``argv[1]`` behind an
interpreter) is that name; ``pidfile:/path`` checks the process whose pid
the file holds. The ``/proc`` scan runs in a worker thread.
``on_change(name, up, at, cause)``: once with each initial state, then at
each change.
"""

import asyncio
import contextlib
import logging
import os
import socket
import struct
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from vigil.agent.netns import socket_in

log = logging.getLogger(__name__)

ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0
INTERPRETERS = {"python", "python3", "sh", "bash", "perl", "ruby", "node", "java"}


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes = b"vigil-agent") -> bytes:
    header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, ident, seq)
    checksum = _checksum(header + payload)
    return struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, checksum, ident, seq) + payload


class GatewayProbe:
    def __init__(
        self,
        gateway: str,
        on_change: Callable[[bool, float, str], object],
        *,
        interval_s: float = 0.1,
        mult: int = 3,
        netns: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.gateway = gateway
        self._on_change = on_change
        self.interval_s = interval_s
        self.mult = mult
        self._netns = netns
        self._clock = clock
        self._ident = os.getpid() & 0xFFFF
        self._raw = True
        self._sock: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._seq = 0
        self._last_reply: float | None = None  # loop time
        self._started = 0.0
        self.up: bool | None = None
        self.sent = 0
        self.replies = 0

    def _open(self) -> socket.socket:
        try:
            return socket_in(self._netns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        except PermissionError:
            self._raw = False
            return socket_in(self._netns, socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)

    async def start(self) -> None:
        sock = self._open()
        sock.setblocking(False)
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)
        self._started = self._loop.time()
        self._task = asyncio.create_task(self._run(), name=f"vigil.agent.gateway.{self.gateway}")
        kind = "raw" if self._raw else "datagram"
        log.info("probing gateway %s every %g ms (%s ICMP)", self.gateway, self.interval_s * 1000, kind)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            self._send()
            self._check(loop.time())
            due += self.interval_s
            if loop.time() > due + self.interval_s:
                due = loop.time()
            await asyncio.sleep(max(0.0, due - loop.time()))

    def _send(self) -> None:
        assert self._sock is not None
        self._seq = (self._seq + 1) & 0xFFFF
        try:
            self._sock.sendto(echo_request(self._ident, self._seq), (self.gateway, 0))
            self.sent += 1
        except OSError as exc:  # no route, network unreachable: a miss like any other
            log.debug("echo to %s not sent: %s", self.gateway, exc)

    def _readable(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                data, (source, *_) = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("ICMP socket error: %s", exc)
                return
            if source != self.gateway:
                continue
            if self._raw:
                data = data[(data[0] & 0x0F) * 4 :]  # skip the IP header
            if len(data) < 8:
                continue
            kind, _, _, ident, _ = struct.unpack("!BBHHH", data[:8])
            if kind != ICMP_ECHO_REPLY or (self._raw and ident != self._ident):
                continue
            self.replies += 1
            assert self._loop is not None
            self._last_reply = self._loop.time()
            if self.up is not True:
                self._verdict(True, self._clock(), "echo reply")

    def _check(self, now: float) -> None:
        window = self.mult * self.interval_s
        last = self._last_reply if self._last_reply is not None else self._started
        if self.up is not False and now - last > window:
            self._verdict(False, self._clock(), f"no echo reply for {(now - last) * 1000:.0f} ms")

    def _verdict(self, up: bool, at: float, cause: str) -> None:
        self.up = up
        log.info("gateway %s %s (%s)", self.gateway, "reachable" if up else "lost", cause)
        self._on_change(up, at, cause)


def _program_names(pid_dir: Path) -> set[str]:
    names: set[str] = set()
    with contextlib.suppress(OSError):
        names.add((pid_dir / "comm").read_text().strip())
    with contextlib.suppress(OSError):
        argv = (pid_dir / "cmdline").read_bytes().split(b"\0")
        if argv and argv[0]:
            program = os.path.basename(argv[0].decode(errors="replace"))
            names.add(program)
            if len(argv) > 1 and program.rstrip("0123456789.") in INTERPRETERS and argv[1]:
                names.add(os.path.basename(argv[1].decode(errors="replace")))
    return names


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[:1]
    return state != ["Z"] and state != ["X"]


def alive_processes(names: Iterable[str], proc: Path = Path("/proc")) -> dict[str, bool]:
    """For each name (or ``pidfile:/path``), whether such a process is alive now."""
    wanted = list(names)
    result: dict[str, bool] = {}
    by_name = [n for n in wanted if not n.startswith("pidfile:")]
    for name in wanted:
        if name.startswith("pidfile:"):
            try:
                pid = int(Path(name.removeprefix("pidfile:")).read_text().split()[0])
            except (OSError, ValueError, IndexError):
                result[name] = False
            else:
                result[name] = _alive(pid)
    if by_name:
        found: set[str] = set()
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            hits = _program_names(entry) & set(by_name)
            if hits and _alive(int(entry.name)):
                found |= hits
                if len(found) == len(by_name):
                    break
        result.update({n: n in found for n in by_name})
    return {n: result[n] for n in wanted}


def alive_instances(directory: Path) -> dict[str, bool | None]:
    """For each ``<instance id>.pid`` file in ``directory``, whether the process it names is alive: an instance's
    workload (None: the file could not be read now, being rewritten). A pid file that is gone is an instance that
    stopped cleanly or moved away, not a failure."""
    found: dict[str, bool | None] = {}
    for pidfile in sorted(directory.glob("*.pid")):
        try:
            pid = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            found[pidfile.stem] = None
        else:
            found[pidfile.stem] = _alive(pid)
    return found


class ProcessCheck:
    """Polls what ``scan`` finds alive (by default, the named processes) and reports each change; a name the scan
    no longer returns is forgotten without a report, one it cannot tell (None) stays as it was."""

    def __init__(
        self,
        names: Iterable[str],
        on_change: Callable[[str, bool, float, str], object],
        *,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        scan: Callable[[], Mapping[str, bool | None]] | None = None,
    ) -> None:
        self.names = list(dict.fromkeys(names))
        self._on_change = on_change
        self.interval_s = interval_s
        self._clock = clock
        self._scan = scan or (lambda: alive_processes(self.names))
        self._enabled = bool(self.names) or scan is not None
        self.state: dict[str, bool] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._enabled:
            self._task = asyncio.create_task(self._run(), name="vigil.agent.processes")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def check(self) -> None:
        alive = await asyncio.to_thread(self._scan)
        at = self._clock()
        for gone in set(self.state) - set(alive):
            del self.state[gone]
        for name, up in alive.items():
            if up is None:  # not known this time: as it was
                continue
            if self.state.get(name) is not up:
                self.state[name] = up
                log.info("process %s %s", name, "alive" if up else "not running")
                self._on_change(name, up, at, "process alive" if up else "no such process running")

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # a failed scan must not end the checks
                log.exception("checking the processes failed")
            await asyncio.sleep(self.interval_s)
