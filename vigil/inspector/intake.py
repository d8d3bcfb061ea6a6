"""The intake: a report is durable before it acts, and reports act in journal order.

Every southbound report (``PUT /events``, ``POST /v1/event``, the heartbeat
monitor's in-process reports) comes in through :meth:`Intake.receive`:

1. Reports naming an unknown host or switch are recorded and the request is
   refused (:class:`~vigil.inspector.inspector.UnknownResource`).
2. Deduplication by ``(monitor, monitor_event_id, time)`` answers ``duplicate``
   only for an original that is durable. A repeat that arrives while its
   original is still on its way to the journal (a monitor's client timed out
   and sent it again) waits for the original: if the original is stored the
   repeat is a duplicate, if it failed the repeat is handled as new. The
   memory of keys is bounded and rebuilt from the store at start.
3. The reports are appended to the journal (the ``fault_events`` table, as
   ``accepted``, each with its journal ``seq``), group-committed with every
   other request's on a transaction of their own.
4. Once durable, units of work are applied strictly in journal order
   (:meth:`Inspector.apply`, synchronous: the resource map, the alarms, the
   notifications started) and submitted to the committer at once, so their
   derived state is written in the same order; the committer holds the
   write back until the notifications' first attempts are on the wire
   (bounded by ``SETTLE_S``), so a rack failure's thousands of rows do not
   delay its notifications.
5. The request is answered once its unit's derived state is written.

After a crash the reports still ``accepted`` in the journal are applied
again (:meth:`Intake.replay`), in order, before the API serves. Their times
and ids come from the journal, so they reproduce the faults, alarms and
notifications the first application may already have sent: a consumer sees
a duplicate it can drop, never a second alarm, and a fault never exists
without its host change (a fault, its resource changes and its alarms are
one unit of work, written in order after every unit before it).

The same ordered queue runs two kinds of work that no report starts: a held
recovery whose hold-down has passed (flap damping, :meth:`Inspector.release`,
at the time it was due) and, when a host leaves maintenance, the failures
suppressed meanwhile, journaled again under derived ids
(:meth:`Intake.reapply_suppressed`).
"""

import asyncio
import gc
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from vigil.crashpoints import crash_point
from vigil.domain.deliveries import Delivery
from vigil.domain.faults import DedupKey, FaultEvent, Outcome, derived_event_id
from vigil.inspector.inspector import AFTER_MAINTENANCE, Inspector, UnknownResource
from vigil.inspector.ports import Controller, Journal, Publisher, UnitOfWork

log = logging.getLogger(__name__)

# How many (monitor, monitor_event_id, time) keys deduplication remembers.
DEDUP_MEMORY = 100_000
# How long a unit's commit waits for its notifications' first attempts.
SETTLE_S = 0.25

Work = Callable[[UnitOfWork], list[Delivery]]


@dataclass(slots=True, eq=False)
class _Unit:
    """One unit of work waiting for its turn: durable once ``journaled`` resolves."""

    journaled: asyncio.Future[None]
    work: Work
    now: datetime
    reason: str
    claimed: list[DedupKey] = field(default_factory=list)
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Intake:
    def __init__(
        self,
        inspector: Inspector,
        controller: Controller,
        journal: Journal,
        publisher: Publisher,
        *,
        clock: Callable[[], datetime],
        dedup_memory: int = DEDUP_MEMORY,
    ) -> None:
        self.inspector = inspector
        self._controller = controller
        self._journal = journal
        self._publisher = publisher
        self._clock = clock
        self._dedup_memory = dedup_memory
        self._seen: OrderedDict[DedupKey, None] = OrderedDict()
        self._inflight: dict[DedupKey, asyncio.Future[None]] = {}
        self._queue: deque[_Unit] = deque()
        self._seq = 0
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._holding_gc = 0

    # -- start ---------------------------------------------------------------

    def load(self, last_seq: int, seen: Iterable[DedupKey]) -> None:
        """The journal's last seq, and the dedup keys of the newest reports, oldest first."""
        self._seq = max(self._seq, last_seq)
        for key in seen:
            self._remember(key)

    async def replay(self, accepted: Sequence[FaultEvent]) -> int:
        """Apply again, in journal order, the reports a crash left journaled but not applied.

        Consecutive reports received at the same moment (one request's) make one unit of work."""
        batches: list[list[FaultEvent]] = []
        for event in sorted(accepted, key=lambda e: e.seq or 0):
            if batches and batches[-1][0].received_at == event.received_at:
                batches[-1].append(event)
            else:
                batches.append([event])
        units = [self._unit_of(batch, self._done(), "fault event (replayed)") for batch in batches]
        for unit in units:
            self._enqueue(unit)
        for unit in units:
            await unit.done
        return len(accepted)

    async def resume(self) -> None:
        """After a restart: arm the held recoveries, and apply what hosts that left
        maintenance still had suppressed (a restart came between)."""
        self.arm_holds()
        for host in self.inspector.suppressed_out_of_maintenance():
            await self.reapply_suppressed(host, self._clock())

    async def aclose(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    # -- reports -------------------------------------------------------------

    async def receive(self, events: Sequence[FaultEvent]) -> list[FaultEvent]:
        """Journal, apply in order, and answer once the effects are durable (see the module)."""
        unknown = [e for e in events if not self.inspector.known(e)]
        if unknown:
            for event in events:
                event.outcome = Outcome.UNKNOWN_HOST if event in unknown else Outcome.NOT_APPLIED
                event.seq = self._next_seq()
            await self._journal.append(events)
            names = ", ".join(sorted({self.inspector.subject(e) for e in unknown}))
            ids = ", ".join(e.id for e in unknown)
            raise UnknownResource(
                f"unknown host, switch or instance: {names}; no event of this request was applied (recorded as {ids})"
            )
        await self._originals_durable({e.dedup_key for e in events})
        claimed: list[DedupKey] = []
        for event in events:
            key = event.dedup_key
            if key in self._seen or key in claimed:
                event.outcome = Outcome.DUPLICATE
            else:
                claimed.append(key)
            event.seq = self._next_seq()
        crash_point("before-journal")
        journaled = self._journal.append(events)
        for key in claimed:
            self._inflight[key] = journaled
        unit = self._unit_of(list(events), journaled, "fault event")
        unit.claimed = claimed
        self._enqueue(unit)
        await asyncio.shield(unit.done)
        return list(events)

    async def _originals_durable(self, keys: set[DedupKey]) -> None:
        """Wait until no original of these keys is still on its way to the journal."""
        while waiting := [self._inflight[k] for k in keys if k in self._inflight]:
            await asyncio.wait(waiting)

    def _unit_of(self, events: list[FaultEvent], journaled: asyncio.Future[None], reason: str) -> _Unit:
        return _Unit(
            journaled=journaled,
            work=lambda uow: self.inspector.apply(events, uow),
            now=events[0].received_at if events else self._clock(),
            reason=reason,
        )

    # -- work no report starts ---------------------------------------------------

    async def reapply_suppressed(self, host: str, at: datetime) -> None:
        """``host`` left maintenance at ``at``: journal again, under derived ids, the failures
        it had suppressed that are still down, and apply them (dropping the rest)."""
        again = [
            replace(
                event,
                id=derived_event_id(event.id, AFTER_MAINTENANCE),
                received_at=at,
                outcome=Outcome.ACCEPTED,
                fault=None,
                seq=self._next_seq(),
            )
            for event in self.inspector.take_suppressed(host)
        ]
        for event in again:
            log.warning("%s left maintenance with %s still reported down: applying it now", host, event.type)
        journaled = self._journal.append(again) if again else self._done()
        unit = _Unit(
            journaled=journaled,
            work=lambda uow: self.inspector.apply_after_maintenance(host, again, uow),
            now=at,
            reason="failure reported during maintenance",
        )
        self._enqueue(unit)
        await asyncio.shield(unit.done)

    def arm_holds(self) -> None:
        """A timer for each held recovery not armed yet, at the time it is due."""
        loop = asyncio.get_running_loop()
        wall = self._clock()
        for target, key, event, due in self.inspector.held():
            slot = (target, key)
            if slot in self._timers:
                continue
            delay = max(0.0, (due - wall).total_seconds())
            self._timers[slot] = loop.call_later(delay, self._release, target, key, event.id, due)

    def _release(self, target: str, key: str, event_id: str, due: datetime) -> None:
        self._timers.pop((target, key), None)
        unit = _Unit(
            journaled=self._done(),
            work=lambda uow: self.inspector.release(target, key, event_id, due, uow),
            now=due,
            reason="held recovery released",
        )
        unit.done.add_done_callback(_log_failure)
        self._enqueue(unit)

    # -- the ordered queue -----------------------------------------------------

    def _enqueue(self, unit: _Unit) -> None:
        self._queue.append(unit)
        unit.journaled.add_done_callback(lambda _: self._advance())

    def _advance(self) -> None:
        """Apply every unit at the head of the queue whose journal write has ended, in order."""
        while self._queue and self._queue[0].journaled.done():
            unit = self._queue.popleft()
            failure = None if unit.journaled.cancelled() else unit.journaled.exception()
            for key in unit.claimed:
                if self._inflight.get(key) is unit.journaled:
                    del self._inflight[key]
                if failure is None:
                    self._remember(key)
            if unit.journaled.cancelled() or failure is not None:
                if not unit.done.done():
                    unit.done.set_exception(failure or asyncio.CancelledError())
                continue
            crash_point("after-journal")
            try:
                self._apply(unit)
            except Exception as exc:  # one unit's failure is its own request's
                log.exception("applying %s failed", unit.reason)
                if not unit.done.done():
                    unit.done.set_exception(exc)

    def _apply(self, unit: _Unit) -> None:
        uow = self._controller.begin(unit.reason, now=unit.now)
        # No garbage collection from here until the requests are on the wire: a
        # rack failure allocates thousands of snapshots, and a full collection
        # landing in the middle (tens of ms) would hold every notification back.
        self._hold_gc()
        try:
            started = unit.work(uow)
        except BaseException:
            self._release_gc()
            raise
        hold: asyncio.Future[None] | None = None
        if started:
            hold = asyncio.ensure_future(self._settle(started))
        else:
            self._release_gc()
        committed = self._controller.submit(uow, hold=hold)
        committed.add_done_callback(lambda f: _pass_on(f, unit.done))
        if self.inspector.hold_down_s > 0:
            self.arm_holds()

    async def _settle(self, started: list[Delivery]) -> None:
        try:
            await self._publisher.settle(started, SETTLE_S)
            crash_point("after-notify")
        finally:
            self._release_gc()

    def _hold_gc(self) -> None:
        if self._holding_gc == 0 and gc.isenabled():
            gc.disable()
            self._holding_gc = 1
        elif self._holding_gc:
            self._holding_gc += 1

    def _release_gc(self) -> None:
        if self._holding_gc:
            self._holding_gc -= 1
            if self._holding_gc == 0:
                gc.enable()

    # -- helpers ---------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _remember(self, key: DedupKey) -> None:
        self._seen[key] = None
        self._seen.move_to_end(key)
        if len(self._seen) > self._dedup_memory:
            self._seen.popitem(last=False)

    def _done(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def _pass_on(source: "asyncio.Future[None]", target: "asyncio.Future[None]") -> None:
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif (exc := source.exception()) is not None:
        target.set_exception(exc)
    else:
        target.set_result(None)


def _log_failure(done: "asyncio.Future[None]") -> None:
    if not done.cancelled() and (exc := done.exception()) is not None:
        log.error("releasing a held recovery failed: %s", exc, exc_info=exc)
