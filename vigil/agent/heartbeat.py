"""The agent's heartbeats: one UDP datagram per interval to Vigil's heartbeat monitor.

The schedule is a grid on the monotonic clock (``start + k x interval``),
so sending time does not accumulate into drift. If the agent falls behind
by more than an interval (it was frozen, or its machine stalled), the missed
beats are not sent in a burst: it sends one now and rejoins the grid; the
sequence numbers skip the missed beats, so the monitor counts them as lost.
The datagram format is :mod:`vigil.domain.heartbeats`; ``epoch`` (the
start time in ms) tells the monitor when a restarted agent numbers from 1
again.
"""

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from vigil.domain.heartbeats import Heartbeat, encode

log = logging.getLogger(__name__)


class HeartbeatSender:
    def __init__(
        self,
        host: str,
        target: tuple[str, int] | list[tuple[str, int]],
        *,
        interval_ms: float = 20.0,
        mult: int = 3,
        key: bytes | None = None,
        epoch: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if interval_ms <= 0 or mult < 1:
            raise ValueError("interval_ms and mult must be positive")
        self.host = host
        # Several monitors (high availability: the leader's and the standbys'): each beat goes to every one.
        self.targets = list(target) if isinstance(target, list) else [target]
        self.interval_ms = interval_ms
        self.mult = mult
        self._key = key
        self.epoch = epoch if epoch is not None else int(time.time() * 1000)
        self._clock = clock
        self.seq = 0
        self.sent = 0
        self.errors = 0
        self.skipped = 0
        self.max_behind_s = 0.0  # the most it was ever late on its schedule
        self._socks: list[tuple[socket.socket, Any]] = []  # (socket, address) per target
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    async def start(self) -> None:
        """Start sending (again: the sequence numbers go on where they stopped)."""
        if self._task is not None:
            return
        if not self._socks:
            for target in self.targets:
                infos = socket.getaddrinfo(*target, type=socket.SOCK_DGRAM)
                family, kind, proto, _, address = infos[0]
                sock = socket.socket(family, kind, proto)
                sock.setblocking(False)
                # Not connected: a connected socket would fail the send after an ICMP port
                # unreachable (Vigil restarting), losing a heartbeat for nothing.
                self._socks.append((sock, address))
        self._task = asyncio.create_task(self._run(), name=f"vigil.agent.heartbeat.{self.host}")

    async def stop(self) -> None:
        """Stop sending, keeping the socket and the numbering (a freeze, as the monitor sees it)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def aclose(self) -> None:
        await self.stop()
        for sock, _ in self._socks:
            sock.close()
        self._socks = []

    def send_one(self) -> None:
        assert self._socks
        self.seq += 1
        beat = encode(Heartbeat(self.host, self.seq, self.interval_ms, self.mult, self._clock(), self.epoch), self._key)
        sent = False
        for sock, address in self._socks:
            try:
                sock.sendto(beat, address)
                sent = True
            except OSError as exc:  # e.g. no route to that monitor yet
                self.errors += 1
                log.debug("heartbeat %d not sent to %s: %s", self.seq, address, exc)
        self.sent += sent

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.interval_ms / 1000
        due = loop.time()
        while True:
            self.send_one()
            due += interval
            now = loop.time()
            self.max_behind_s = max(self.max_behind_s, now - due + interval)
            if now > due + interval:  # fell behind: rejoin the grid, do not burst
                missed = int((now - due) / interval)
                due += missed * interval
                self.seq += missed
                self.skipped += missed
            await asyncio.sleep(max(0.0, due - loop.time()))
