"""The UDP listener of the heartbeat monitor.

A non-blocking UDP socket watched by the event loop (``add_reader``, which
asyncio's and uvloop's loops both have). Each time it is readable the
listener reads *every* datagram waiting, not one per wake-up as asyncio's
datagram transport does: after the loop was busy for a while, a burst of
queued heartbeats is taken in one go, before the timers that fell due
meanwhile run. :meth:`drain` does the same on demand; the monitor calls it
before declaring a host lost, so a heartbeat that reached the socket in
time is never counted as missing.

Each datagram's bytes go to ``on_datagram`` (the monitor's ``receive``);
decoding, counting bad ones and unknown hosts is the monitor's job. The
receive buffer is enlarged (4 MiB asked) so bursts from many hosts are not
dropped by the kernel.
"""

import asyncio
import logging
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)

RECV_BUFFER = 4 * 1024 * 1024
MAX_DATAGRAM = 2048
MAX_PER_DRAIN = 100_000


class HeartbeatListener:
    def __init__(self, on_datagram: Callable[[bytes], object], host: str = "127.0.0.1", port: int = 8771) -> None:
        self._on_datagram = on_datagram
        self._host = host
        self._port = port
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.errors = 0

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the real port when 0 was asked for)."""
        if self._sock is None:
            return self._host, self._port
        host, port = self._sock.getsockname()[:2]
        return host, port

    def start(self) -> None:
        """Bind and start reading; OSError (e.g. the port is taken) propagates."""
        infos = socket.getaddrinfo(self._host, self._port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
            sock.bind(address)
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"heartbeat listener cannot bind UDP {self._host}:{self._port}: {exc}") from exc
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self.drain)
        log.info("heartbeat monitor listening on udp://%s:%d", *self.address)

    def drain(self) -> int:
        """Hand every datagram waiting in the socket to ``on_datagram``; how many there were."""
        sock = self._sock
        if sock is None:
            return 0
        count = 0
        while count < MAX_PER_DRAIN:
            try:
                data = sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. ECONNREFUSED reported for an earlier send: nothing to read
                self.errors += 1
                log.debug("heartbeat socket error: %s", exc)
                break
            count += 1
            try:
                self._on_datagram(data)
            except Exception:  # one datagram must not stop the reading
                log.exception("handling a heartbeat datagram failed")
        return count

    def close(self) -> None:
        if self._sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
