"""The notification pipeline: match → render → record → deliver → retry.

:meth:`Notifier.publish` runs on the fault's hot path, synchronously: it
matches each alarm change to subscriptions (T05), renders one payload per
subscription (T06), records one PENDING delivery per callback URL in the
caller's unit of work (the outbox, made durable with the fault itself), and
starts one task per delivery at once. It does not wait for the store: the
sends go out while the fault's transaction is being written.

Each delivery task sends, and on a TemporaryError (5xx, timeout, refused)
waits out the retry policy's backoff and tries again; a PermanentError
(other 4xx) or running out of attempts marks it FAILED. Every outcome is
recorded, with the fault's T07 (first send), T08 (last delivery) and T09
(the last consumer's own receive time, when it reports one).
:meth:`Notifier.resume` restarts deliveries a restart left PENDING.

Maintenance messages take the same road (:meth:`Notifier.publish_message`,
:meth:`Notifier.send_message`): matched by their own rule, rendered as an
Aodh event alarm's body, recorded as PENDING deliveries and sent and retried
by the same tasks; they have no fault, so no checkpoints.
"""

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from vigil.crashpoints import crash_point
from vigil.domain.alarms import AlarmChange, AlarmId, Lifecycle
from vigil.domain.deliveries import (
    Delivery,
    DeliveryId,
    DeliveryState,
    NotificationId,
    delivery_id,
    notification_id,
)
from vigil.domain.errors import DomainError
from vigil.domain.faults import Checkpoint, Fault, FaultId
from vigil.domain.maintenance import MaintenanceMessage
from vigil.domain.records import Record
from vigil.domain.retry import PermanentError, RetryPolicy, TemporaryError
from vigil.domain.subscriptions import SubscriptionId, visible_resources
from vigil.notifier.formats import render, render_message
from vigil.notifier.ports import Sender
from vigil.notifier.subscriptions import SubscriptionRegistry

log = logging.getLogger(__name__)

NOTIFICATION_HEADER = "X-Vigil-Notification-Id"


class CallbackTestFailed(DomainError):
    """A subscriber's callback did not pass the test (HTTP 422)."""


class Recorder(Protocol):
    """A unit of work the caller will commit (the inspector's)."""

    def record(self, record: Record) -> None: ...


class RecordSaver(Protocol):
    """Makes records durable in a transaction of their own."""

    async def save_records(self, *records: Record) -> None: ...


class Notifier:
    def __init__(
        self,
        *,
        subscriptions: SubscriptionRegistry,
        sender: Sender,
        saver: RecordSaver,
        clock: Callable[[], datetime],
        wall: Callable[[], float] = time.time,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self.subscriptions = subscriptions
        self._sender = sender
        self._saver = saver
        self._clock = clock
        self._wall = wall
        self._policy = policy or RetryPolicy()
        self._rng = rng or random.Random()
        self._timeout_s = timeout_s
        self._tasks: dict[DeliveryId, asyncio.Task[None]] = {}
        self._warming: set[asyncio.Task[None]] = set()
        self._in_flight: dict[str, int] = {}  # fault id → deliveries of it not yet ended
        self._first_sent: dict[DeliveryId, asyncio.Event] = {}

    # -- the hot path --------------------------------------------------------

    def publish(
        self, changes: Sequence[AlarmChange], fault: Fault | None, uow: Recorder, *, start: bool = True
    ) -> list[Delivery]:
        """Match, render, record and start delivering; return the deliveries.

        With ``start`` False the deliveries are only recorded in ``uow``: the
        caller starts them (:meth:`deliver`) once ``uow`` is durable. Only the
        journaled fault path notifies before its commit, because applying its
        report again after a crash sends the same notifications; every other
        change notifies after it, so nothing is told that a crash can take back.
        """
        plan = [(s, c) for c in changes for s in self.subscriptions.matching(c.alarm, c.lifecycle)]
        if fault is not None:
            fault.mark(Checkpoint.T05, self._wall())
        deliveries: list[Delivery] = []
        for subscription, change in plan:
            nid = notification_id(change.alarm.id, change.alarm.version, subscription.id)
            resources = visible_resources(subscription, change.alarm)
            # Stamped with the alarm's own time, not the clock: a change applied again
            # after a crash renders the same bytes under the same notification id.
            now = change.alarm.changed_at
            body = render(subscription, change, nid, resource_ids=resources, now=now).decode()
            for url in subscription.callbacks:
                delivery = _pending(
                    nid, subscription.id, url, body, now, change.alarm.id, change.alarm.version, change.lifecycle,
                    project=change.alarm.project, fault=change.alarm.fault,
                )  # fmt: skip
                deliveries.append(delivery)
                uow.record(delivery)
        if fault is not None:
            fault.mark(Checkpoint.T06, self._wall())
        if start:
            self.deliver(deliveries, fault)
        return deliveries

    def deliver(self, deliveries: Sequence[Delivery], fault: Fault | None) -> None:
        """Start delivering recorded deliveries (one task each)."""
        for delivery in deliveries:
            self._start(delivery, fault)

    # -- maintenance messages -----------------------------------------------

    def publish_message(self, message: MaintenanceMessage, uow: Recorder) -> list[Delivery]:
        """Match, render, record in ``uow`` and start delivering a maintenance message.

        One PENDING delivery per callback URL of each subscription that is to
        receive it (``SubscriptionRegistry.matching_message``). The deliveries
        table has alarm columns, so a message's delivery is recorded as
        ``alarm=message.id``, ``alarm_version=1``, ``lifecycle=RAISED``,
        ``fault=None``, ``project=message.project``, with the notification id
        ``notification_id(message.id, 1, subscription.id)``: stable, so a
        repeat of the same message is recognisable to its receiver. A repeat
        whose delivery to a URL is still under way is not started twice
        (nor returned).
        """
        deliveries = self._message_deliveries(message)
        for delivery in deliveries:
            uow.record(delivery)
        for delivery in deliveries:
            self._start(delivery, None)
        return deliveries

    async def send_message(self, message: MaintenanceMessage) -> list[Delivery]:
        """As :meth:`publish_message`, for a caller without a unit of work: the
        PENDING deliveries are made durable in a transaction of their own (the
        saver's) before the sends start."""
        deliveries = self._message_deliveries(message)
        if deliveries:
            await self._saver.save_records(*deliveries)
        for delivery in deliveries:
            self._start(delivery, None)
        return deliveries

    def _message_deliveries(self, message: MaintenanceMessage) -> list[Delivery]:
        now = self._clock()
        deliveries: list[Delivery] = []
        for subscription in self.subscriptions.matching_message(message):
            nid = notification_id(message.id, 1, subscription.id)
            body = render_message(subscription, message, nid).decode()
            for url in subscription.callbacks:
                if delivery_id(nid, url) in self._tasks:
                    continue
                deliveries.append(
                    _pending(
                        nid, subscription.id, url, body, now, AlarmId(message.id), 1, Lifecycle.RAISED,
                        project=message.project, fault=None,
                    )
                )  # fmt: skip
        return deliveries

    async def settle(self, deliveries: Sequence[Delivery], timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) until each delivery's first request has gone out
        (or its first attempt ended without one).

        The committer writes a fault's unit of work after this, so the
        commit's work (thousands of rows in a rack failure) does not compete
        with the notifications for the event loop before they are on the
        wire; it need not wait for the answers, so a slow consumer holds up
        no one's commit.
        """
        waits = [e.wait() for d in deliveries if (e := self._first_sent.get(d.id)) is not None]
        if waits:
            await asyncio.wait([asyncio.ensure_future(w) for w in waits], timeout=timeout_s)

    async def resume(self, pending: Sequence[Delivery], faults: dict[str, Fault] | None = None) -> None:
        """Deliver what a restart left PENDING (each keeps its id and body)."""
        for delivery in pending:
            if delivery.state is DeliveryState.PENDING and delivery.id not in self._tasks:
                fault = (faults or {}).get(delivery.fault) if delivery.fault else None
                self._start(delivery, fault)

    def warm(self, urls: Sequence[str]) -> None:
        """Open connections to new callbacks ahead of the first notification."""
        for url in urls:
            task = asyncio.create_task(self._warm(url), name=f"vigil.notifier.warm.{url}")
            self._warming.add(task)
            task.add_done_callback(self._warming.discard)

    async def test_callbacks(self, urls: Sequence[str]) -> None:
        """ETSI SOL 003's callback test: a GET on each callback URI must answer 204.

        Raises CallbackTestFailed naming the first that does not."""
        for url in urls:
            try:
                status = await self._sender.warm(url)
            except (TemporaryError, PermanentError) as exc:
                raise CallbackTestFailed(f"callback test of {url} failed: {exc}") from exc
            if status != 204:
                raise CallbackTestFailed(f"callback test: GET {url} answered {status}; SOL 003 expects 204")

    async def _warm(self, url: str) -> None:
        try:
            await self._sender.warm(url)
        except Exception as exc:  # a callback that is not up yet is no error at subscription time
            log.info("could not open a connection to %s yet: %s", url, exc)

    async def drain(self) -> None:
        """Wait until every delivery under way has ended (delivered or failed)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def aclose(self) -> None:
        """Stop delivering; what is still PENDING stays so in the outbox for the next start."""
        tasks = [*self._tasks.values(), *self._warming]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- delivery ------------------------------------------------------------

    def _start(self, delivery: Delivery, fault: Fault | None) -> None:
        if fault is not None:
            self._in_flight[fault.id] = self._in_flight.get(fault.id, 0) + 1
        self._first_sent[delivery.id] = asyncio.Event()
        task = asyncio.create_task(self._deliver(delivery, fault), name=f"vigil.notifier.deliver.{delivery.id}")
        self._tasks[delivery.id] = task
        task.add_done_callback(lambda _: self._ended(delivery.id))

    def _ended(self, ident: DeliveryId) -> None:
        self._tasks.pop(ident, None)
        tried = self._first_sent.pop(ident, None)
        if tried is not None:
            tried.set()

    async def _deliver(self, delivery: Delivery, fault: Fault | None) -> None:
        body = delivery.body.encode()
        headers = {NOTIFICATION_HEADER: delivery.notification}
        while True:
            delivery.attempts += 1
            if fault is not None:
                fault.mark(Checkpoint.T07, self._wall())
            sent = self._first_sent.get(delivery.id)
            try:
                try:
                    result = await self._sender.send(
                        delivery.url,
                        body,
                        headers=headers,
                        timeout_s=self._timeout_s,
                        on_sent=sent.set if sent is not None else None,
                    )
                finally:
                    if sent is not None:
                        sent.set()
            except TemporaryError as exc:
                delivery.last_error = str(exc)
                delivery.last_status = getattr(exc, "status", None)
                if delivery.attempts >= self._policy.max_attempts:
                    await self._finish(delivery, fault, DeliveryState.FAILED)
                    return
                delay = exc.delay if exc.delay is not None else self._policy.delay(delivery.attempts, self._rng)
                delivery.next_attempt_at = self._clock() + timedelta(seconds=delay)
                await self._saver.save_records(delivery)
                await asyncio.sleep(delay)
                continue
            except PermanentError as exc:
                delivery.last_error = str(exc)
                delivery.last_status = getattr(exc, "status", None)
                await self._finish(delivery, fault, DeliveryState.FAILED)
                return
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
            return

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


def _pending(
    nid: NotificationId,
    subscription: SubscriptionId,
    url: str,
    body: str,
    now: datetime,
    alarm: AlarmId,
    version: int,
    lifecycle: Lifecycle,
    *,
    project: str | None,
    fault: FaultId | None,
) -> Delivery:
    """A new PENDING delivery of one notification to one callback URL."""
    return Delivery(
        id=delivery_id(nid, url),
        notification=nid,
        subscription=subscription,
        url=url,
        alarm=alarm,
        alarm_version=version,
        lifecycle=lifecycle,
        project=project,
        fault=fault,
        body=body,
        state=DeliveryState.PENDING,
        created_at=now,
    )
