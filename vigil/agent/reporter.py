"""Southbound events from the agent to Vigil, over the management network.

:meth:`EventReporter.report` queues a Doctor event (``{"time", "type",
"details": {"hostname", "status", "monitor", "monitor_event_id",
"related_to", "cause"}}``) and returns at once; one task sends the queue
with ``PUT /events`` (everything waiting goes in one request) over one
aiohttp session whose connection is kept alive and opened ahead of the
first event. If Vigil is unreachable or answers 5xx, 408 or 429, the same
events are sent again with exponential backoff, in order, under the same
``monitor_event_id`` and time: Vigil drops a repeat it already took, so a retried
request whose first answer was lost does not count twice. Another 4xx
(a bad token, an unknown host) is logged and its events dropped. With a
shared ``key`` each request carries ``X-Vigil-Signature``, the HMAC-SHA256
of its body (:mod:`vigil.domain.signatures`), as the heartbeats do. The queue
is bounded: when it is full the oldest event is dropped (and counted).

With several Vigil addresses (high availability: the leader and its
standbys), events go to the one that took the last ones; a standby's 503 or
an address that does not answer moves them to the next address at once,
and only when every address failed do they wait the backoff.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from vigil.domain.signatures import SIGNATURE_HEADER, sign

log = logging.getLogger(__name__)

MONITOR = "vigil-agent"
MAX_BATCH = 500
RETRY_STATUSES = {408, 429}


@dataclass(slots=True)
class Counters:
    queued: int = 0
    sent: int = 0
    retries: int = 0
    dropped_full: int = 0
    refused: int = 0


class EventReporter:
    def __init__(
        self,
        url: str | Sequence[str],
        token: str,
        host: str,
        *,
        monitor: str = MONITOR,
        max_queue: int = 10_000,
        timeout_s: float = 2.0,
        retry_initial_s: float = 0.05,
        retry_max_s: float = 2.0,
        new_id: Callable[[], str] | None = None,
        key: bytes | None = None,
    ) -> None:
        self.urls = [u.rstrip("/") for u in ([url] if isinstance(url, str) else url)]
        if not self.urls:
            raise ValueError("no Vigil address to report to")
        self._at = 0  # the address that took the last events (the leader, with high availability)
        self._token = token
        self.host = host
        self.monitor = monitor
        self._queue: deque[dict[str, Any]] = deque()
        self._max_queue = max_queue
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        boot = int(time.time() * 1000)
        self._counter = 0
        self._new_id = new_id or self._sequential_id(boot)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._key = key
        self.counters = Counters()

    @property
    def url(self) -> str:
        """The address events go to now."""
        return self.urls[self._at]

    def _sequential_id(self, boot: int) -> Callable[[], str]:
        def new_id() -> str:
            self._counter += 1
            return f"{self.host}-{boot}-{self._counter}"

        return new_id

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=len(self.urls), limit_per_host=1, keepalive_timeout=60)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            headers={"X-Auth-Token": self._token},
            skip_auto_headers=("Accept-Encoding",),
        )
        self._task = asyncio.create_task(self._sending(), name="vigil.agent.report")
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):  # warm the connection
            async with self._session.get(f"{self.url}/healthz") as response:
                await response.read()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def report(
        self, event_type: str, at: float, *, related_to: str | None = None, cause: str | None = None
    ) -> dict[str, Any]:
        """Queue one event (``at`` is Unix time); the body it will be sent as."""
        details: dict[str, Any] = {
            "hostname": self.host,
            "status": "up" if event_type.endswith(".up") else "down",
            "monitor": self.monitor,
            "monitor_event_id": self._new_id(),
        }
        if related_to is not None:
            details["related_to"] = related_to
        if cause is not None:
            details["cause"] = cause[:1024]
        event = {"time": datetime.fromtimestamp(at, UTC).isoformat(), "type": event_type, "details": details}
        if len(self._queue) >= self._max_queue:
            dropped = self._queue.popleft()
            self.counters.dropped_full += 1
            log.error("event queue full: dropped %s of %s", dropped["type"], dropped["time"])
        self._queue.append(event)
        self.counters.queued += 1
        self._idle.clear()
        self._wake.set()
        return event

    async def flushed(self) -> None:
        """Wait until every queued event was sent (or dropped)."""
        await self._idle.wait()

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def _sending(self) -> None:
        delay, failed = self._retry_initial_s, 0
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [self._queue[i] for i in range(min(len(self._queue), MAX_BATCH))]
            outcome = await self._send(batch)
            if outcome == "retry":
                self.counters.retries += 1
                self._at = (self._at + 1) % len(self.urls)
                failed += 1
                if failed % len(self.urls):  # the next address at once (a standby's 503, a dead leader)
                    continue
                await asyncio.sleep(delay)  # every address failed: back off
                delay = min(delay * 2, self._retry_max_s)
                continue
            delay, failed = self._retry_initial_s, 0
            for _ in batch:  # the queue may have lost its oldest meanwhile; drop what was sent
                if self._queue and self._queue[0] is _:
                    self._queue.popleft()
            if outcome == "sent":
                self.counters.sent += len(batch)
            else:
                self.counters.refused += len(batch)

    async def _send(self, batch: list[dict[str, Any]]) -> str:
        assert self._session is not None
        try:
            body = json.dumps(batch, separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json"}
            if self._key is not None:
                headers[SIGNATURE_HEADER] = sign(self._key, body)
            async with self._session.put(f"{self.url}/events", data=body, headers=headers) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("cannot reach Vigil at %s (%s); %d events wait", self.url, exc, len(self._queue))
            return "retry"
        if 200 <= status < 300:
            return "sent"
        if status >= 500 or status in RETRY_STATUSES:
            log.warning("Vigil answered %d; retrying %d events", status, len(batch))
            return "retry"
        log.error("Vigil refused %d events with %d: %s", len(batch), status, text[:500])
        return "refused"
