"""Events from monitors operators already run, into Vigil's southbound path.

Prometheus Alertmanager's webhook (:mod:`vigil.monitor.alertmanager`) and
Zabbix's messages (:mod:`vigil.monitor.zabbix`) are parsed and mapped by pure
functions into Doctor's southbound reports, and :class:`Ingest` hands them to
the intake through the ``report`` port: the path ``POST /v1/event`` takes
(journaled, deduplicated by ``(monitor, monitor_event_id, time)``, applied in
order, answered once durable). One request or queue message is one batch:
bad input anywhere in it (:class:`~vigil.monitor.reports.BadInput`, or a host
the intake does not know) applies none of it.

What a monitor sent that Vigil does not act on is *ignored* (an alert or a
trigger no mapping names: answered 2xx, since the sender would only send it
again) and what Vigil could not take is *rejected*. Both are counted and
logged, and the newest :data:`RECENT` of each source are kept in
:class:`IngestBook` for ``GET /v1/ingest``; a rejected report naming an unknown
host is journaled too, as ``unknown_host``, as the southbound API does. The
routes are :mod:`vigil.api.routes.ingest`; the queue consumer is
:mod:`vigil.ingest.amqp`.
"""

import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from vigil.domain.errors import DomainError
from vigil.domain.faults import FaultEvent
from vigil.monitor import alertmanager, zabbix
from vigil.monitor.reports import BadInput, Ignored, Mapped

log = logging.getLogger(__name__)

RECENT = 50  # ignored and rejected entries kept per source

Report = Callable[[Sequence[FaultEvent]], Awaitable[list[FaultEvent]]]
"""The intake's ``receive``: journal, apply in order, answer once durable."""


class Source(StrEnum):
    ALERTMANAGER = "alertmanager"
    ZABBIX = "zabbix"


class Via(StrEnum):
    HTTP = "http"
    AMQP = "amqp"


class EntryKind(StrEnum):
    IGNORED = "ignored"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Entry:
    """One ignored or rejected input, as ``GET /v1/ingest`` shows it."""

    at: float  # epoch
    via: Via
    kind: EntryKind
    what: str
    why: str


@dataclass(slots=True)
class SourceStats:
    """What one source sent: each request or message counts in ``received``; the reports it made in ``reports``
    and, by outcome, in ``outcomes``; what no mapping named in ``ignored``; a request or message refused in
    ``rejected``."""

    received: int = 0
    reports: int = 0
    ignored: int = 0
    rejected: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    last_received_at: float | None = None
    recent: deque[Entry] = field(default_factory=lambda: deque(maxlen=RECENT))


class IngestBook:
    """The counters and the newest ignored and rejected inputs of every source (in memory, and logged)."""

    def __init__(self, epoch: Callable[[], float] = time.time) -> None:
        self._epoch = epoch
        self.sources = {source: SourceStats() for source in Source}

    def received(self, source: Source) -> None:
        stats = self.sources[source]
        stats.received += 1
        stats.last_received_at = self._epoch()

    def rejected(self, source: Source, via: Via, what: str, why: str) -> None:
        stats = self.sources[source]
        stats.rejected += 1
        stats.recent.append(Entry(self._epoch(), via, EntryKind.REJECTED, what, why))
        log.warning("%s input over %s rejected (%s): %s", source, via, what, why)

    def ignored(self, source: Source, via: Via, ignored: Sequence[Ignored]) -> None:
        stats = self.sources[source]
        stats.ignored += len(ignored)
        for item in ignored:
            what = f"{item.name} ({item.id})" if item.id else item.name
            stats.recent.append(Entry(self._epoch(), via, EntryKind.IGNORED, what, item.reason))
            log.info("%s input over %s ignored, %s: %s", source, via, what, item.reason)

    def applied(self, source: Source, events: Sequence[FaultEvent]) -> None:
        stats = self.sources[source]
        stats.reports += len(events)
        stats.outcomes.update(str(e.outcome) for e in events)


@dataclass(slots=True)
class Applied:
    """What became of a batch: its reports with their outcomes, what was ignored, what Alertmanager truncated."""

    events: list[FaultEvent] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    truncated: int = 0


def _new_id() -> str:
    return str(uuid.uuid4())


class Ingest:
    """Maps each source's input and hands the reports to the intake, keeping the book.

    Every entry point raises :class:`BadInput` for input it cannot take, and passes on what the intake raises for
    a batch it refuses (a :class:`DomainError`: an unknown host, the reports journaled as ``unknown_host``), after
    recording the rejection; nothing of such a batch is applied."""

    def __init__(
        self,
        report: Report,
        alerts: alertmanager.AlertMapping,
        triggers: zabbix.TriggerMapping,
        *,
        clock: Callable[[], datetime],
        new_id: Callable[[], str] = _new_id,
        book: IngestBook | None = None,
    ) -> None:
        self._report = report
        self.alerts = alerts
        self.triggers = triggers
        self._clock = clock
        self._new_id = new_id
        self.book = book or IngestBook()
        self.queue_state: Callable[[], Mapping[str, Any]] | None = None  # the queue consumer's, when one runs

    def received(self, source: Source) -> None:
        self.book.received(source)

    def rejected(self, source: Source, via: Via, what: str, why: str) -> None:
        """Record input refused before it reached a mapping (a body that is not JSON, a wrong shape)."""
        self.book.rejected(source, via, what, why)

    async def alertmanager(self, notification: alertmanager.Notification) -> Applied:
        """One webhook payload (already counted as received)."""
        what = f"group {notification.group_key or '?'}"
        try:
            mapped = alertmanager.reports(notification, self.alerts, received_at=self._clock(), new_id=self._new_id)
        except BadInput as exc:
            self.book.rejected(Source.ALERTMANAGER, Via.HTTP, what, str(exc))
            raise
        if mapped.truncated:
            log.warning("Alertmanager left %d alerts out of %s (its max_alerts)", mapped.truncated, what)
        return await self._submit(Source.ALERTMANAGER, Via.HTTP, mapped, what)

    async def zabbix_text(self, text: str) -> Applied:
        """Enea's media type message, posted as text (already counted as received)."""
        return await self._zabbix(lambda: zabbix.parse_text(text, self.triggers.timezone), Via.HTTP)

    async def zabbix_json(self, body: Any) -> Applied:
        """The webhook media type's JSON object, or an oslo.messaging notification (already counted as received)."""
        return await self._zabbix(lambda: zabbix.parse_json(body, self.triggers.timezone), Via.HTTP)

    async def zabbix_message(self, body: bytes) -> Applied:
        """One message of the queue: counted as received here."""
        self.book.received(Source.ZABBIX)
        return await self._zabbix(lambda: zabbix.parse_body(body, self.triggers.timezone), Via.AMQP)

    async def _zabbix(self, parse: Callable[[], zabbix.TriggerEvent | Ignored], via: Via) -> Applied:
        try:
            parsed = parse()
            if isinstance(parsed, Ignored):
                mapped = Mapped(ignored=[parsed])
            else:
                mapped = zabbix.reports([parsed], self.triggers, received_at=self._clock(), new_id=self._new_id)
        except BadInput as exc:
            self.book.rejected(Source.ZABBIX, via, "message", str(exc))
            raise
        what = parsed.name if isinstance(parsed, Ignored) else f"trigger {parsed.triggerid} on {parsed.host}"
        return await self._submit(Source.ZABBIX, via, mapped, what)

    async def _submit(self, source: Source, via: Via, mapped: Mapped, what: str) -> Applied:
        self.book.ignored(source, via, mapped.ignored)
        applied = Applied(ignored=mapped.ignored, truncated=mapped.truncated)
        if not mapped.events:
            return applied
        try:
            applied.events = await self._report(mapped.events)
        except DomainError as exc:
            self.book.rejected(source, via, what, str(exc))
            raise
        self.book.applied(source, applied.events)
        return applied
