"""Fence first: a failed host is powered off, and its power read off, before anything of it is recovered.

Without it, a host that only lost its network comes back with its instances
still running, and the service has two actives (Masakari, Medik8s and
Pacemaker all fence first). The inspector has already notified the owners
(T09) when fencing starts: fencing takes seconds, the notification
milliseconds, and the notification never waits for it.

For each open host fault whose host has a fence device (:meth:`FenceFirst.consider`):

1. ``fence_requested``: the checkpoint on the fault, and the owners' alarms
   updated with ``fence: requested`` (a notification each), made durable
   before the BMC is asked;
2. the fence (:class:`~vigil.domain.fencing.FenceOutcome`: off, then a status
   that must read off);
3. confirmed: ``fence_confirmed``, the owners told ``fence: confirmed``, and
   the host's disabled reason becomes ``fenced: ...``, so that when it comes
   back (powered on by someone) the fault clears but the host stays disabled
   until an admin enables it; then the confirmed hook (recovery) runs;
4. not confirmed (an error, a timeout, the power still on, no agent):
   ``fence_failed``, the owners told ``fence: failed``, and a
   ``host.fence_failed`` alarm for admins with the agent's reason. Nothing of
   the host is recovered.

A fault's fencing is durable by its checkpoints: after a restart,
:meth:`FenceFirst.resume` fences again every open host fault that has no
outcome yet (powering off a host already off is harmless: the agent answers
"already off"). Fence and recovery steps are checkpoints after T09 in the
fault's profile.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from vigil.crashpoints import crash_point
from vigil.domain.alarms import AlarmChange, AlarmKind
from vigil.domain.events import ResourceEvent
from vigil.domain.faults import Checkpoint, Fault, FaultState, Severity
from vigil.domain.fencing import FENCED_REASON_PREFIX, FenceOutcome
from vigil.domain.model import ResourceType
from vigil.domain.states import AdminState
from vigil.recovery.ports import Alarms, Controller, Faults, Fencer, Publisher
from vigil.recovery.steps import host_alarm, owner_updates, record_step

log = logging.getLogger(__name__)

OUTCOMES = (Checkpoint.FENCE_CONFIRMED, Checkpoint.FENCE_FAILED)

Confirmed = Callable[[Fault], Awaitable[None]]  # what follows a confirmed fence (recovery)


async def _nothing(fault: Fault) -> None:
    return None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FenceFirst:
    def __init__(
        self,
        controller: Controller,
        faults: Faults,
        alarms: Alarms,
        publisher: Publisher,
        fencer: Fencer,
        *,
        confirmed: Confirmed = _nothing,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._controller = controller
        self._faults = faults
        self._alarms = alarms
        self._publisher = publisher
        self._fencer = fencer
        self._confirmed = confirmed
        self._wall = wall
        self._clock = clock
        self._running: dict[str, asyncio.Task[None]] = {}  # fault id -> its fencing

    def wanted(self, fault: Fault) -> bool:
        """Whether ``fault`` is a host's own failure, still open, with a fence device and no fence outcome yet."""
        return (
            fault.state is FaultState.ACTIVE
            and fault.resource_type == ResourceType.HOST
            and not any(c in fault.checkpoints for c in OUTCOMES)
            and self._fencer.configured(fault.resource_id)
        )

    def consider(self, fault: Fault) -> bool:
        """Start fencing ``fault``'s host if it is wanted and not running; True if it started."""
        if fault.id in self._running or not self.wanted(fault):
            return False
        self._start(fault, self._fence(fault), "fence")
        return True

    def _start(self, fault: Fault, work: Coroutine[Any, Any, None], what: str) -> None:
        ident = fault.id
        task = asyncio.get_running_loop().create_task(work, name=f"vigil.{what}.{fault.resource_id}")
        self._running[ident] = task
        task.add_done_callback(lambda _: self._running.pop(ident, None))

    def can_fence(self, host: str) -> bool:
        """Whether ``host`` has a fence device."""
        return self._fencer.configured(host)

    def fence_host(self, host: str, why: str) -> bool:
        """Fence ``host`` because a rule says so (its ``fence`` action): through its open host fault, so the fence
        is recorded, told and recovered after as any other. False when it has no open host fault (the rule's hub
        then reports it down, which opens one: :class:`vigil.rules_runtime.RuleActionsHub`)."""
        for fault in self._faults.open_faults():
            if fault.resource_type == ResourceType.HOST and fault.resource_id == host:
                log.info("fence of %s asked by %s", host, why)
                self.consider(fault)
                return True
        return False

    def resume(self) -> int:
        """After a restart: fence every open host fault still without an outcome, and take up the recovery of
        those fenced whose recovery had not ended. Returns how many started."""
        started = 0
        for fault in self._faults.open_faults():
            if self.consider(fault):
                started += 1
            elif self._recovery_unfinished(fault) and fault.id not in self._running:
                self._start(fault, self._recover(fault), "recover")
                started += 1
        return started

    @staticmethod
    def _recovery_unfinished(fault: Fault) -> bool:
        checkpoints = fault.checkpoints
        return (
            fault.state is FaultState.ACTIVE
            and Checkpoint.FENCE_CONFIRMED in checkpoints
            and Checkpoint.RECOVERED not in checkpoints
        )

    async def _recover(self, fault: Fault) -> None:
        try:
            await self._confirmed(fault)
        except asyncio.CancelledError:
            raise
        except Exception:  # the next start takes it up again
            log.exception("recovery of host %s stopped", fault.resource_id)

    async def run(self, events: "asyncio.Queue[ResourceEvent]") -> None:
        """Follow committed resource events: a host forced down is a host fault opened (the inspector's fault
        actions force a failed host down in the fault's own unit of work)."""
        while True:
            event = await events.get()
            if (
                event.resource_type != ResourceType.HOST
                or event.changes.get("forced_down", (None, None))[1] is not True
            ):
                continue
            for fault in self._faults.open_faults():
                if fault.resource_type == ResourceType.HOST and fault.resource_id == event.resource_id:
                    self.consider(fault)

    async def settle(self) -> None:
        """Wait for every fencing under way (tests)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def aclose(self) -> None:
        """Stop the fencings under way (their agents are killed): the next start fences those hosts again."""
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
        await self._fencer.aclose()

    async def _fence(self, fault: Fault) -> None:
        host = fault.resource_id
        try:
            fault.mark(Checkpoint.FENCE_REQUESTED, self._wall())
            await self._tell(fault, "requested", f"fence of host {host} requested")
            crash_point("before-fence")
            outcome: FenceOutcome | None = None
            try:
                outcome = await self._fencer.fence(host)
                reason = outcome.reason
            except Exception as exc:  # an agent that could not even run: a failed fence, never a recovery
                log.exception("fencing %s failed to run", host)
                reason = f"the fence could not run: {exc}"
            if outcome is not None and outcome.confirmed:
                crash_point("after-fence")
                fault.mark(Checkpoint.FENCE_CONFIRMED, self._wall())
                log.info("host %s fenced: power off confirmed", host)
                await self._tell(fault, "confirmed", f"host {host} fenced", fenced=True)
                await self._recover(fault)
            else:
                fault.mark(Checkpoint.FENCE_FAILED, self._wall())
                log.warning("host %s could not be fenced: %s; nothing of it is recovered", host, reason)
                await self._tell(
                    fault, "failed", f"host {host} could not be fenced: {reason}", failed=(outcome, reason)
                )
        except asyncio.CancelledError:
            raise
        except Exception:  # the next start resumes it: the fault has no outcome yet
            log.exception("fencing of host %s stopped", host)

    async def _tell(
        self,
        fault: Fault,
        step: str,
        why: str,
        *,
        fenced: bool = False,
        failed: tuple[FenceOutcome | None, str] | None = None,
    ) -> None:
        """One durable step: the fault's checkpoint, the owners' alarms updated, and for the outcome the host or an
        admin alarm; notifications leave once it is committed."""
        now = self._clock()
        changes = owner_updates(self._alarms, fault, now, lambda _: {"fence": step}, admins=True)
        if failed is not None:
            changes.append(self._fence_failed(fault, failed[0], failed[1], now))
        also = (lambda uow: self._mark_fenced(uow, fault.resource_id)) if fenced else None
        await record_step(self._controller, self._publisher, fault, why, now, changes, also)

    def _mark_fenced(self, uow: Any, name: str) -> None:
        """The host stays disabled when it comes back: its fault's recovery re-enables only a host a fault
        disabled, and a fenced one waits for an admin."""
        host = uow.map.host(name)
        reason = host.disabled_reason or ""
        cause = reason.split(": ", 1)[1] if ": " in reason else reason
        uow.update(host, admin_state=AdminState.DISABLED, disabled_reason=f"{FENCED_REASON_PREFIX}{cause}")

    def _fence_failed(self, fault: Fault, outcome: FenceOutcome | None, reason: str, now: datetime) -> AlarmChange:
        answers: list[dict[str, Any]] = []
        if outcome is not None:
            answers = [
                {"action": str(a.action), "ok": a.ok, "power": str(a.power), "detail": a.detail, "ms": a.elapsed_ms}
                for a in outcome.answers
            ]
        return host_alarm(
            self._alarms,
            fault,
            AlarmKind.HOST_FENCE_FAILED,
            Severity.CRITICAL,
            f"host {fault.resource_id} could not be fenced ({reason}): none of its instances is recovered",
            now,
            details={"reason": reason, "answers": answers},
        )
