"""The outbox: a recorded delivery is sent until it is delivered or refused, never dropped silently.

Deliveries are grouped by their callback URL, an *endpoint*:

* A reachable endpoint gets each delivery at once, in a task of its own.
* A TemporaryError (5xx, 408, 429, a timeout, a refused connection) makes
  the endpoint unreachable. From then on its deliveries wait in its queue,
  oldest first, and one probe at a time is made: the oldest is sent again
  after the policy's capped backoff, which grows with the endpoint's
  consecutive failures, not with each notification's. With nothing left to
  send, a GET probes it. A thousand notifications for a consumer that is
  down cost one request per backoff, not a thousand.
* The first answer (delivered, or refused for good) makes it reachable
  again: the queue is sent. The watcher (the notifier) is told when an
  endpoint becomes unreachable and reachable again: it raises and clears
  the admins' ``subscription.unreachable`` alarm, and sends an
  ``AlarmListRebuiltNotification`` to a SOL 003 subscriber that missed
  notifications.
* A delivery whose retries have lasted longer than the horizon (from its
  creation, or from the redelivery an admin asked for) ends FAILED, its
  reason saying it was given up; the endpoint's alarm stays raised, and an
  admin can send it again (:meth:`Outbox.start` on it once more).

Every state change of a delivery is recorded (``saver``), so a restart
resumes the queue: deliveries that had failed before wait for their
endpoint's probe, the others go at once.
"""

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Protocol

from vigil.crashpoints import crash_point
from vigil.domain.deliveries import Delivery, DeliveryId, DeliveryState
from vigil.domain.faults import Checkpoint, Fault
from vigil.domain.records import Record
from vigil.domain.retry import PermanentError, RetryPolicy, TemporaryError
from vigil.notifier.ports import Sender

log = logging.getLogger(__name__)

NOTIFICATION_HEADER = "X-Vigil-Notification-Id"


class RecordSaver(Protocol):
    """Makes records durable in a transaction of their own."""

    async def save_records(self, *records: Record) -> None: ...


class EndpointWatcher(Protocol):
    """Told when an endpoint stops answering and when it answers again."""

    async def unreachable(self, url: str, since: datetime, error: str) -> None: ...

    async def reachable(self, url: str, since: datetime, missed: int) -> None: ...


class _Outcome(Enum):
    DELIVERED = "delivered"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"


@dataclass(eq=False)
class _Endpoint:
    url: str
    since: datetime | None = None  # unreachable since; None while reachable
    failures: int = 0  # consecutive failed attempts and probes
    error: str = ""
    queue: list[tuple[Delivery, Fault | None]] = field(default_factory=list)
    missed: int = 0  # deliveries given up while it was unreachable
    prober: asyncio.Task[None] | None = None


class Outbox:
    def __init__(
        self,
        *,
        sender: Sender,
        saver: RecordSaver,
        clock: Callable[[], datetime],
        wall: Callable[[], float] = time.time,
        policy: RetryPolicy | None = None,
        horizon_s: float = 86_400.0,
        timeout_s: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self._sender = sender
        self._saver = saver
        self._clock = clock
        self._wall = wall
        self._policy = policy or RetryPolicy()
        self._horizon = timedelta(seconds=horizon_s)
        self._timeout_s = timeout_s
        self._rng = rng or random.Random()
        self.watcher: EndpointWatcher | None = None
        # Headers a delivery needs beyond the notification id (its subscription's authentication).
        self.headers: Callable[[Delivery], Awaitable[Mapping[str, str]]] | None = None
        self._endpoints: dict[str, _Endpoint] = {}
        self._tasks: dict[DeliveryId, asyncio.Task[None]] = {}
        self._in_flight: dict[str, int] = {}  # fault id → deliveries of it not yet ended
        self._first_sent: dict[DeliveryId, asyncio.Event] = {}
        self._queued: set[DeliveryId] = set()

    # -- what the notifier asks ----------------------------------------------

    def start(self, delivery: Delivery, fault: Fault | None) -> None:
        """Send a recorded delivery: at once, or queued behind its endpoint's probe."""
        if self.holds(delivery.id):
            return
        if fault is not None:
            self._in_flight[fault.id] = self._in_flight.get(fault.id, 0) + 1
        self._dispatch(delivery, fault)

    def _dispatch(self, delivery: Delivery, fault: Fault | None) -> None:
        endpoint = self._endpoints.get(delivery.url)
        if endpoint is not None and endpoint.since is not None:
            self._enqueue(endpoint, delivery, fault)
            return
        self._first_sent[delivery.id] = asyncio.Event()
        task = asyncio.create_task(self._send_now(delivery, fault), name=f"vigil.notifier.deliver.{delivery.id}")
        self._tasks[delivery.id] = task
        task.add_done_callback(lambda _: self._ended(delivery.id))

    def holds(self, ident: str) -> bool:
        """Whether a delivery is under way or queued."""
        return ident in self._tasks or ident in self._queued

    def resume(self, pending: Sequence[Delivery], faults: dict[str, Fault], unreachable: dict[str, datetime]) -> None:
        """After a restart: ``unreachable`` endpoints (with since when) probe first; a delivery
        that had failed before waits for its endpoint's probe; the others go at once."""
        for url, since in unreachable.items():
            self._endpoint(url).since = since
        for delivery in pending:
            if delivery.state is not DeliveryState.PENDING:
                continue
            if delivery.attempts > 0 and delivery.url not in unreachable:
                endpoint = self._endpoint(delivery.url)
                endpoint.since = endpoint.since or self._clock()
                endpoint.error = delivery.last_error or ""
            self.start(delivery, faults.get(delivery.fault) if delivery.fault else None)
        for url in unreachable:
            self._ensure_prober(self._endpoint(url))

    def unreachable_endpoints(self) -> dict[str, datetime]:
        return {url: e.since for url, e in self._endpoints.items() if e.since is not None}

    async def settle(self, deliveries: Sequence[Delivery], timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) until each delivery's first request has gone out
        (or its first attempt ended without one; a queued delivery has none to wait for)."""
        waits = [e.wait() for d in deliveries if (e := self._first_sent.get(d.id)) is not None]
        if waits:
            await asyncio.wait([asyncio.ensure_future(w) for w in waits], timeout=timeout_s)

    async def drain(self, poll_s: float = 0.01) -> None:
        """Wait until every delivery has ended: delivered, refused, or given up after the horizon."""
        while self._tasks or self._queued:
            if self._tasks:
                await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)
            else:
                await asyncio.sleep(poll_s)

    async def aclose(self) -> None:
        """Stop; what is still PENDING stays so in the store for the next start."""
        tasks = [*self._tasks.values(), *(e.prober for e in self._endpoints.values() if e.prober is not None)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- sending -----------------------------------------------------------------

    def _ended(self, ident: DeliveryId) -> None:
        self._tasks.pop(ident, None)
        sent = self._first_sent.pop(ident, None)
        if sent is not None:
            sent.set()

    async def _send_now(self, delivery: Delivery, fault: Fault | None) -> None:
        outcome = await self._attempt(delivery, fault)
        if outcome is not _Outcome.UNREACHABLE:
            return
        endpoint = self._endpoint(delivery.url)
        newly_lost = endpoint.since is None
        if newly_lost:
            endpoint.since, endpoint.failures, endpoint.error = self._clock(), 1, delivery.last_error or ""
        self._enqueue(endpoint, delivery, fault)
        await self._saver.save_records(delivery)
        if newly_lost and endpoint.since is not None:
            log.warning(
                "%s is unreachable (%s): its notifications wait, one probe at a time", delivery.url, endpoint.error
            )
            if self.watcher is not None:
                await self.watcher.unreachable(endpoint.url, endpoint.since, endpoint.error)

    async def _attempt(self, delivery: Delivery, fault: Fault | None) -> _Outcome:
        """One attempt; the delivery is finished (and recorded) unless the endpoint was unreachable."""
        delivery.attempts += 1
        if fault is not None:
            fault.mark(Checkpoint.T07, self._wall())
        sent = self._first_sent.get(delivery.id)
        try:
            try:
                headers: dict[str, str] = {NOTIFICATION_HEADER: delivery.notification}
                if self.headers is not None:
                    headers.update(await self.headers(delivery))
                result = await self._sender.send(
                    delivery.url,
                    delivery.body.encode(),
                    headers=headers,
                    timeout_s=self._timeout_s,
                    on_sent=sent.set if sent is not None else None,
                )
            finally:
                if sent is not None:
                    sent.set()
        except TemporaryError as exc:
            delivery.last_error = str(exc)
            delivery.last_status = exc.status
            return _Outcome.UNREACHABLE
        except PermanentError as exc:
            delivery.last_error = str(exc)
            delivery.last_status = exc.status
            await self._finish(delivery, fault, DeliveryState.FAILED)
            return _Outcome.REFUSED
        crash_point("after-delivery")
        delivery.last_status = result.status
        delivery.last_error = None
        delivery.delivered_at = self._clock()
        if fault is not None:
            fault.mark(Checkpoint.T08, self._wall(), keep_first=False)
            if result.received_at is not None:
                previous = fault.checkpoints.get(Checkpoint.T09, 0.0)
                fault.mark(Checkpoint.T09, max(previous, result.received_at), keep_first=False)
        await self._finish(delivery, fault, DeliveryState.DELIVERED)
        return _Outcome.DELIVERED

    async def _finish(self, delivery: Delivery, fault: Fault | None, state: DeliveryState) -> None:
        delivery.state = state
        delivery.next_attempt_at = None
        if state is DeliveryState.FAILED:
            log.warning("notification %s to %s failed: %s", delivery.notification, delivery.url, delivery.last_error)
        records: list[Record] = [delivery]
        if fault is not None:
            # The fault's checkpoints are saved once, with its last delivery's
            # outcome, not copied again with every one of (say) 200 deliveries.
            left = self._in_flight.get(fault.id, 1) - 1
            if left <= 0:
                self._in_flight.pop(fault.id, None)
                records.append(fault)
            else:
                self._in_flight[fault.id] = left
        await self._saver.save_records(*records)

    # -- unreachable endpoints -----------------------------------------------------

    def _endpoint(self, url: str) -> _Endpoint:
        endpoint = self._endpoints.get(url)
        if endpoint is None:
            endpoint = self._endpoints[url] = _Endpoint(url)
        return endpoint

    def _enqueue(self, endpoint: _Endpoint, delivery: Delivery, fault: Fault | None) -> None:
        endpoint.queue.append((delivery, fault))
        endpoint.queue.sort(key=lambda entry: (entry[0].created_at, entry[0].id))
        self._queued.add(delivery.id)
        if endpoint.since is not None:
            self._ensure_prober(endpoint)

    def _ensure_prober(self, endpoint: _Endpoint) -> None:
        if endpoint.prober is None or endpoint.prober.done():
            endpoint.prober = asyncio.create_task(self._probe(endpoint), name=f"vigil.notifier.probe.{endpoint.url}")

    async def _probe(self, endpoint: _Endpoint) -> None:
        """One probe at a time until the endpoint answers."""
        while endpoint.since is not None:
            await self._give_up_expired(endpoint)
            # After a restart (no failure seen yet by this process) the first probe goes at once.
            delay = self._policy.delay(endpoint.failures, self._rng) if endpoint.failures else 0.0
            if endpoint.queue:
                head = endpoint.queue[0][0]
                head.next_attempt_at = self._clock() + timedelta(seconds=delay)
                await self._saver.save_records(head)
            await asyncio.sleep(delay)
            if not await self._probe_once(endpoint):
                endpoint.failures += 1
                continue
            await self._found(endpoint)

    async def _probe_once(self, endpoint: _Endpoint) -> bool:
        """Send the oldest queued delivery (or a GET when none is queued); True if it was answered."""
        if endpoint.queue:
            delivery, fault = endpoint.queue[0]
            outcome = await self._attempt(delivery, fault)
            if outcome is _Outcome.UNREACHABLE:
                endpoint.error = delivery.last_error or ""
                await self._saver.save_records(delivery)
                return False
            endpoint.queue.pop(0)
            self._queued.discard(delivery.id)
            return True
        try:
            await self._sender.warm(endpoint.url)
        except TemporaryError as exc:
            endpoint.error = str(exc)
            return False
        except PermanentError:
            return True  # it answered, or will never be usable: no reason to keep probing
        return True

    async def _found(self, endpoint: _Endpoint) -> None:
        """The endpoint answered: send its queue, and tell the watcher."""
        since, missed = endpoint.since, endpoint.missed
        endpoint.since, endpoint.failures, endpoint.missed, endpoint.error = None, 0, 0, ""
        queued, endpoint.queue = endpoint.queue, []
        log.info("%s answers again: sending its %d waiting notifications", endpoint.url, len(queued))
        for delivery, fault in queued:
            self._queued.discard(delivery.id)
            self._dispatch(delivery, fault)
        if self.watcher is not None and since is not None:
            await self.watcher.reachable(endpoint.url, since, missed)

    async def _give_up_expired(self, endpoint: _Endpoint) -> None:
        now = self._clock()
        kept: list[tuple[Delivery, Fault | None]] = []
        for delivery, fault in endpoint.queue:
            started = delivery.retry_since or delivery.created_at
            if now - started <= self._horizon:
                kept.append((delivery, fault))
                continue
            self._queued.discard(delivery.id)
            endpoint.missed += 1
            last = delivery.last_error or f"never answered: {endpoint.error}"
            delivery.last_error = f"given up after {self._horizon.total_seconds():g} s of retries; last error: {last}"
            await self._finish(delivery, fault, DeliveryState.FAILED)
        endpoint.queue = kept
