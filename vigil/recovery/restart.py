"""Restart in place: an instance that failed alone is stopped and started again where it is.

An instance-level failure (``compute.instance.down``: its workload died, its
guest stopped answering) leaves its host healthy, so nothing is fenced and
nothing moves: as Masakari's instance recovery does, the instance is reset
to ACTIVE, stopped and started again on its host, when its recovery policy
is ``restart`` (:mod:`vigil.domain.recovery`). Its owner, already notified
of the failure, hears ``recovery: restarting`` then ``done`` or ``failed``;
the fault's profile gets ``recovery_started`` and ``recovered``. The fault
itself clears when its monitor reports the instance up again.

A restart cut off by a stop or a crash is done again at the next start
(:meth:`Restarter.resume`: an open instance fault without ``recovered``).
"""

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from vigil.domain.errors import DomainError
from vigil.domain.events import ResourceEvent
from vigil.domain.faults import Checkpoint, Fault, FaultState
from vigil.domain.model import ResourceType
from vigil.domain.recovery import RecoveryAction, RecoveryPolicies
from vigil.domain.states import InstanceState
from vigil.recovery.ports import Alarms, Controller, Faults, Publisher, RestartVim
from vigil.recovery.steps import owner_updates, record_step

log = logging.getLogger(__name__)

WHY = "restart of a failed instance in place"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Restarter:
    def __init__(
        self,
        controller: Controller,
        faults: Faults,
        alarms: Alarms,
        publisher: Publisher,
        vim: RestartVim,
        policies: RecoveryPolicies,
        *,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._controller = controller
        self._faults = faults
        self._alarms = alarms
        self._publisher = publisher
        self._vim = vim
        self.policies = policies
        self._wall = wall
        self._clock = clock
        self._running: dict[str, asyncio.Task[None]] = {}

    def wanted(self, fault: Fault) -> bool:
        """An open instance fault whose instance's policy restarts it, not restarted yet."""
        if fault.state is not FaultState.ACTIVE or fault.resource_type != ResourceType.INSTANCE:
            return False
        if Checkpoint.RECOVERED in fault.checkpoints:
            return False
        try:
            inst = self._vim.map.instance(fault.resource_id)
        except DomainError:
            return False
        return self.policies.of(inst.project, inst.group).action is RecoveryAction.RESTART

    def consider(self, fault: Fault, *, forced: bool = False) -> bool:
        """Restart the fault's instance if its policy says so (``forced``: a rule's workflow says so)."""
        if fault.id in self._running or not (self.wanted(fault) or (forced and self._restartable(fault))):
            return False
        self._start(fault, self._restart(fault))
        return True

    def _start(self, fault: Fault, work: Coroutine[Any, Any, None]) -> None:
        ident = fault.id
        task = asyncio.get_running_loop().create_task(work, name=f"vigil.restart.{fault.resource_id}")
        self._running[ident] = task
        task.add_done_callback(lambda _: self._running.pop(ident, None))

    @staticmethod
    def _restartable(fault: Fault) -> bool:
        return (
            fault.state is FaultState.ACTIVE
            and fault.resource_type == ResourceType.INSTANCE
            and Checkpoint.RECOVERED not in fault.checkpoints
        )

    def open_instance_faults(self, instance: str | None) -> list[Fault]:
        """The open faults of ``instance`` (of every instance with None)."""
        return [
            f
            for f in self._faults.open_faults()
            if f.resource_type == ResourceType.INSTANCE and instance in (None, f.resource_id)
        ]

    def resume(self) -> int:
        """After a restart: every open instance fault not yet restarted. Returns how many started."""
        return sum(self.consider(fault) for fault in self._faults.open_faults())

    async def run(self, events: "asyncio.Queue[ResourceEvent]") -> None:
        """Follow committed resource events: an instance set to ERROR with an open fault of its own."""
        while True:
            event = await events.get()
            if event.resource_type != ResourceType.INSTANCE:
                continue
            if event.changes.get("state", (None, None))[1] != InstanceState.ERROR.value:
                continue
            for fault in self._faults.open_faults():
                if fault.resource_type == ResourceType.INSTANCE and fault.resource_id == event.resource_id:
                    self.consider(fault)

    async def aclose(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def _restart(self, fault: Fault) -> None:
        ident = fault.resource_id
        try:
            fault.mark(Checkpoint.RECOVERY_STARTED, self._wall())
            await self._tell(fault, "restarting")
            error: str | None = None
            try:
                inst = self._vim.map.instance(ident)
                if inst.state is not InstanceState.ACTIVE:
                    await self._vim.reset_state(ident, InstanceState.ACTIVE, reason=WHY)
                await self._vim.stop(ident)
                await self._vim.start(ident)
            except (DomainError, OSError) as exc:
                error = str(exc)
                log.warning("instance %s could not be restarted: %s", ident, error)
            fault.mark(Checkpoint.RECOVERED, self._wall())
            await self._tell(fault, "done" if error is None else "failed")
        except asyncio.CancelledError:
            raise
        except Exception:  # the next start takes it up again: no recovered checkpoint
            log.exception("restart of instance %s stopped", ident)

    async def _tell(self, fault: Fault, step: str) -> None:
        now = self._clock()
        changes = owner_updates(self._alarms, fault, now, lambda _: {"recovery": step})
        await record_step(self._controller, self._publisher, fault, WHY, now, changes)
