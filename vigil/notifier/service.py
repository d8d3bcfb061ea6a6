"""The notification pipeline: match → render → record → deliver (``vigil.notifier.outbox``).

:meth:`Notifier.publish` runs on the fault's hot path, synchronously: it
matches each alarm change to subscriptions (T05), renders one payload per
subscription (T06), records one PENDING delivery per callback URL in the
caller's unit of work (the outbox, made durable with the fault itself), and
hands them to the outbox, which sends each at once. It does not wait for the
store: on the journaled fault path the sends go out while the fault's
transaction is being written; every other caller starts them
(:meth:`Notifier.deliver`) once its change is durable.

The outbox (``vigil.notifier.outbox``) retries what an endpoint could not
take, one probe at a time per unreachable endpoint, for the retry horizon,
and records every outcome with the fault's T07 (first send), T08 (last
delivery) and T09 (the last consumer's own receive time, when it reports
one). This module is its watcher: while an endpoint is unreachable, admins
have a ``subscription.unreachable`` alarm for each subscription calling
back to it, cleared when it answers again; a SOL 003 subscriber that missed
notifications meanwhile (given up after the horizon) then gets an
``AlarmListRebuiltNotification``, so it reads the alarm list again. Given-up
deliveries are sent again on an admin's request (:meth:`Notifier.redeliver`).
A VIM's service that the fault actions cannot reach gets the same treatment
from the OpenStack driver's pusher: ``vim.unreachable`` for admins while it
lasts (:meth:`Notifier.vim_unreachable`, :meth:`Notifier.vim_reachable`).

Maintenance messages take the same road (:meth:`Notifier.publish_message`,
:meth:`Notifier.send_message`): matched by their own rule, rendered as an
Aodh event alarm's body, recorded as PENDING deliveries and sent by the
same outbox; they have no fault, so no checkpoints.
"""

import asyncio
import base64
import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from vigil.domain.alarms import Alarm, AlarmChange, AlarmId, AlarmKind, Lifecycle
from vigil.domain.deliveries import Delivery, DeliveryState, NotificationId, delivery_id, notification_id
from vigil.domain.errors import Conflict, DomainError
from vigil.domain.faults import Checkpoint, Fault, FaultId, Severity
from vigil.domain.maintenance import MaintenanceMessage
from vigil.domain.records import Record
from vigil.domain.retry import PermanentError, RetryPolicy, TemporaryError
from vigil.domain.subscriptions import AuthType, PayloadFormat, Subscription, SubscriptionId, visible_resources
from vigil.notifier.alarms import AlarmBook
from vigil.notifier.formats import render, render_alarm_list_rebuilt, render_message
from vigil.notifier.outbox import NOTIFICATION_HEADER, Outbox, RecordSaver
from vigil.notifier.ports import Sender
from vigil.notifier.subscriptions import SubscriptionRegistry

log = logging.getLogger(__name__)

__all__ = ["NOTIFICATION_HEADER", "CallbackNotAllowed", "CallbackTestFailed", "Notifier", "RecordSaver"]


class CallbackTestFailed(DomainError):
    """A subscriber's callback did not pass the test (HTTP 422)."""


class CallbackNotAllowed(DomainError):
    """A callback the policy refuses (HTTP 422, naming the rule)."""


class Recorder(Protocol):
    """A unit of work the caller will commit (the inspector's)."""

    def record(self, record: Record) -> None: ...


class _Records:
    """A unit of work of the notifier's own, saved in one transaction by the saver."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def record(self, record: Record) -> None:
        self.records.append(record)


class Notifier:
    def __init__(
        self,
        *,
        subscriptions: SubscriptionRegistry,
        sender: Sender,
        saver: RecordSaver,
        clock: Callable[[], datetime],
        alarms: AlarmBook | None = None,
        wall: Callable[[], float] = time.time,
        policy: RetryPolicy | None = None,
        horizon_s: float = 86_400.0,
        rng: random.Random | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self.subscriptions = subscriptions
        self._sender = sender
        self._saver = saver
        self._clock = clock
        self._alarms = alarms
        self._wall = wall
        self.outbox = Outbox(
            sender=sender,
            saver=saver,
            clock=clock,
            wall=wall,
            policy=policy,
            horizon_s=horizon_s,
            timeout_s=timeout_s,
            rng=rng,
        )
        self.outbox.watcher = self
        self.outbox.headers = self._authentication
        self._warming: set[asyncio.Task[None]] = set()
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}  # (endpoint, client) → (token, expiry)
        self._token_locks: dict[tuple[str, str], asyncio.Lock] = {}

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
        """Hand recorded deliveries to the outbox."""
        for delivery in deliveries:
            self.outbox.start(delivery, fault)

    async def settle(self, deliveries: Sequence[Delivery], timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) until each delivery's first request has gone out.

        The committer writes a fault's unit of work after this, so the
        commit's work (thousands of rows in a rack failure) does not compete
        with the notifications for the event loop before they are on the
        wire; it need not wait for the answers, so a slow consumer holds up
        no one's commit.
        """
        await self.outbox.settle(deliveries, timeout_s)

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
        self.deliver(deliveries, None)
        return deliveries

    async def send_message(self, message: MaintenanceMessage) -> list[Delivery]:
        """As :meth:`publish_message`, for a caller without a unit of work: the
        PENDING deliveries are made durable in a transaction of their own (the
        saver's) before the sends start."""
        deliveries = self._message_deliveries(message)
        if deliveries:
            await self._saver.save_records(*deliveries)
        self.deliver(deliveries, None)
        return deliveries

    def _message_deliveries(self, message: MaintenanceMessage) -> list[Delivery]:
        now = self._clock()
        deliveries: list[Delivery] = []
        for subscription in self.subscriptions.matching_message(message):
            nid = notification_id(message.id, 1, subscription.id)
            body = render_message(subscription, message, nid).decode()
            for url in subscription.callbacks:
                if self.outbox.holds(delivery_id(nid, url)):
                    continue
                deliveries.append(
                    _pending(
                        nid, subscription.id, url, body, now, AlarmId(message.id), 1, Lifecycle.RAISED,
                        project=message.project, fault=None,
                    )
                )  # fmt: skip
        return deliveries

    # -- restart, redelivery --------------------------------------------------

    async def resume(self, pending: Sequence[Delivery], faults: dict[str, Fault] | None = None) -> None:
        """Deliver what a restart left PENDING (each keeps its id and body); endpoints with an
        active ``subscription.unreachable`` alarm are probed first, and one that a delivery
        had failed on but that has no alarm yet gets it now."""
        unreachable: dict[str, datetime] = {}
        for alarm in self._unreachable_alarms():
            url = str(alarm.details.get("url", ""))
            if url:
                unreachable[url] = min(alarm.raised_at, unreachable.get(url, alarm.raised_at))
        self.outbox.resume(pending, faults or {}, unreachable)
        for url, since in self.outbox.unreachable_endpoints().items():
            if url not in unreachable:
                await self.unreachable(url, since, "failed before the restart")

    async def redeliver(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """Send FAILED deliveries again (an admin's request): PENDING, with a new retry horizon."""
        now = self._clock()
        again: list[Delivery] = []
        for delivery in deliveries:
            if delivery.state is not DeliveryState.FAILED:
                raise Conflict(f"delivery {delivery.id} is {delivery.state}; only a FAILED one is sent again")
            delivery.state = DeliveryState.PENDING
            delivery.retry_since = now
            delivery.next_attempt_at = None
            again.append(delivery)
        if again:
            await self._saver.save_records(*again)
        self.deliver(again, None)
        return again

    # -- the outbox's watcher: unreachable endpoints ------------------------------

    async def unreachable(self, url: str, since: datetime, error: str) -> None:
        """Raise ``subscription.unreachable`` for each subscription calling back to ``url``."""
        if self._alarms is None:
            return
        changes: list[AlarmChange] = []
        for subscription in self._calling_back(url):
            if self._alarms.active(AlarmKind.SUBSCRIPTION_UNREACHABLE, subscription.id) is not None:
                continue
            changes.append(
                self._alarms.raise_alarm(
                    cause=f"{url} {since.isoformat()}",
                    kind=AlarmKind.SUBSCRIPTION_UNREACHABLE,
                    project=None,
                    resource_type="subscription",
                    resource_id=subscription.id,
                    severity=Severity.MAJOR,
                    fault=FaultId(f"subscription:{subscription.id}"),
                    reason=f"subscription {subscription.id} of {subscription.project} cannot be reached at {url}",
                    now=since,
                    details={"url": url, "project": subscription.project, "error": error},
                )
            )
        await self._tell(changes)

    async def reachable(self, url: str, since: datetime, missed: int) -> None:
        """Clear the alarms of ``url``'s subscriptions; SOL 003 ones that missed notifications
        are told their alarm list was rebuilt."""
        now = self._clock()
        changes: list[AlarmChange] = []
        for subscription in self._calling_back(url):
            if self._alarms is not None:
                alarm = self._alarms.active(AlarmKind.SUBSCRIPTION_UNREACHABLE, subscription.id)
                if alarm is not None:
                    changes.append(self._alarms.clear(alarm, now))
        await self._tell(changes)
        if missed:
            sol003 = [s for s in self._calling_back(url) if s.format is PayloadFormat.SOL003]
            rebuilt = [self._rebuilt(s, url, since) for s in sol003]
            if rebuilt:
                await self._saver.save_records(*rebuilt)
                self.deliver(rebuilt, None)

    def subscription_removed(self, subscription: Subscription) -> list[Record]:
        """The records that clear a removed subscription's unreachable alarm (nobody is told)."""
        if self._alarms is None:
            return []
        alarm = self._alarms.active(AlarmKind.SUBSCRIPTION_UNREACHABLE, subscription.id)
        return [] if alarm is None else [self._alarms.clear(alarm, self._clock()).alarm]

    # -- a VIM's services that the fault actions cannot reach (the OpenStack driver's pusher) ----------

    async def vim_unreachable(self, service: str, endpoint: str | None, error: str) -> None:
        """Raise ``vim.unreachable`` for ``service`` (a service type: ``compute``, ``network``, ``identity``),
        once per outage: the fault actions pushed to it wait until it answers again."""
        if self._alarms is None or self._alarms.active(AlarmKind.VIM_UNREACHABLE, service) is not None:
            return
        since = self._clock()
        where = f" at {endpoint}" if endpoint else ""
        change = self._alarms.raise_alarm(
            cause=f"vim {service} {since.isoformat()}",
            kind=AlarmKind.VIM_UNREACHABLE,
            project=None,
            resource_type="vim",
            resource_id=service,
            severity=Severity.MAJOR,
            fault=FaultId(f"vim:{service}"),
            reason=f"the VIM's {service} API cannot be reached{where}: fault actions wait for it",
            now=since,
            details={"service": service, "error": error, **({"endpoint": endpoint} if endpoint else {})},
        )
        await self._tell([change])

    async def vim_reachable(self, service: str) -> None:
        """Clear ``service``'s ``vim.unreachable`` alarm, if it has one: it answered again."""
        if self._alarms is None:
            return
        alarm = self._alarms.active(AlarmKind.VIM_UNREACHABLE, service)
        if alarm is not None:
            await self._tell([self._alarms.clear(alarm, self._clock())])

    def vim_unreachable_services(self) -> list[str]:
        """The services with an open ``vim.unreachable`` alarm (a restart finds them in the store)."""
        return [] if self._alarms is None else [a.resource_id for a in self._alarms.open(AlarmKind.VIM_UNREACHABLE)]

    async def _tell(self, changes: list[AlarmChange]) -> None:
        """Record alarm changes, and notify admins once they are durable."""
        if not changes:
            return
        uow = _Records()
        for change in changes:
            uow.record(change.alarm)
        deliveries = self.publish(changes, None, uow, start=False)
        await self._saver.save_records(*uow.records)
        self.deliver(deliveries, None)

    def _calling_back(self, url: str) -> list[Subscription]:
        return [s for s in self.subscriptions.of_project(None) if url in s.callbacks]

    def _unreachable_alarms(self) -> list[Alarm]:
        if self._alarms is None:
            return []
        return self._alarms.open(AlarmKind.SUBSCRIPTION_UNREACHABLE)

    def _rebuilt(self, subscription: Subscription, url: str, since: datetime) -> Delivery:
        now = self._clock()
        event = f"alarm-list-rebuilt/{since.isoformat()}"
        nid = notification_id(event, 1, subscription.id)
        body = render_alarm_list_rebuilt(subscription, nid, now).decode()
        return _pending(
            nid, subscription.id, url, body, now, AlarmId(event), 1, Lifecycle.RAISED,
            project=subscription.project, fault=None,
        )  # fmt: skip

    # -- connections -------------------------------------------------------------

    def warm(self, urls: Sequence[str]) -> None:
        """Open connections to new callbacks ahead of the first notification."""
        for url in urls:
            task = asyncio.create_task(self._warm(url), name=f"vigil.notifier.warm.{url}")
            self._warming.add(task)
            task.add_done_callback(self._warming.discard)

    async def check_callbacks(self, urls: Sequence[str]) -> None:
        """Every URL a callback the policy allows (names resolved now): CallbackNotAllowed
        naming the rule otherwise. Nothing is sent."""
        for url in urls:
            try:
                await self._sender.check(url)
            except PermanentError as exc:
                raise CallbackNotAllowed(f"{url}: {exc.reason}") from None

    async def test_callbacks(self, urls: Sequence[str]) -> None:
        """ETSI SOL 003's callback test: a GET on each callback URI must answer 204.

        Raises CallbackTestFailed naming the first that does not, and nothing
        more: whether the port was closed, timed out or answered something else
        is not told (it would make the test a port scanner)."""
        for url in urls:
            try:
                status = await self._sender.warm(url)
            except (TemporaryError, PermanentError):
                status = None
            if status != 204:
                raise CallbackTestFailed(f"callback test of {url} failed: a GET on it must answer 204")

    async def _authentication(self, delivery: Delivery) -> dict[str, str]:
        """The Authorization header the delivery's subscription asked for, if any."""
        try:
            auth = self.subscriptions.get(delivery.subscription).authentication
        except DomainError:
            return {}
        if auth is None:
            return {}
        if auth.type is AuthType.BASIC:
            credentials = base64.b64encode(f"{auth.user}:{auth.secret}".encode()).decode()
            return {"Authorization": f"Basic {credentials}"}
        key = (auth.token_endpoint or "", auth.user)
        async with self._token_locks.setdefault(key, asyncio.Lock()):  # one fetch for concurrent deliveries
            cached = self._tokens.get(key)
            if cached is None or cached[1] <= self._wall():
                token, lasts_s = await self._sender.fetch_token(key[0], auth.user, auth.secret)
                cached = self._tokens[key] = (token, self._wall() + max(0.0, lasts_s - 10))
        return {"Authorization": f"Bearer {cached[0]}"}

    async def _warm(self, url: str) -> None:
        try:
            await self._sender.warm(url)
        except Exception as exc:  # a callback that is not up yet is no error at subscription time
            log.info("could not open a connection to %s yet: %s", url, exc)

    async def drain(self) -> None:
        """Wait until every delivery has ended: delivered, refused, or given up after the horizon."""
        await self.outbox.drain()

    async def aclose(self) -> None:
        """Stop delivering; what is still PENDING stays so in the outbox for the next start."""
        await self.outbox.aclose()
        tasks = list(self._warming)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


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
