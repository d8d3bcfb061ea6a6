"""Evacuation: a fenced host's instances rebuilt elsewhere, by their recovery policy.

It runs only after :class:`~vigil.recovery.fence_first.FenceFirst` has the
host's power read off (never before: a host that only lost its network
would otherwise come back with the same instances running). Which instances
move, and how, is their :class:`~vigil.domain.recovery.RecoveryPolicy`;
where they go is the maintenance planner's search
(:mod:`vigil.domain.planner`), on the same placement rules as the scheduler:
capacity in vCPUs, anti-affinity, affinity, ``max_instances_per_host``. It
never overcommits: an instance that fits nowhere stays ERROR, its owner is
told it was not recovered, and admins get ``host.recovery_failed``.

The targets are hosts that are up, enabled, not in maintenance and not
forced down; reserved hosts only by the methods that name them, enabled
when they are used (as Masakari does). The evacuations are sent together,
and the owners hear of them twice: when they start (``recovery:
evacuating`` with the instances) and as they end (``recovered`` and
``not_recovered`` lists, each batch of completions one update).
Checkpoints: ``recovery_started``, and ``recovered`` when the last one
ended.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from vigil.crashpoints import crash_point
from vigil.domain.alarms import Alarm, AlarmKind
from vigil.domain.errors import DomainError
from vigil.domain.faults import Checkpoint, Fault, Severity
from vigil.domain.maintenance import GroupConstraints
from vigil.domain.model import Host, Instance
from vigil.domain.planner import Layout, Move, NoRoom, PlanGroup, PlanInstance, evacuate_in_tiers, group_of
from vigil.domain.recovery import RecoveryAction, RecoveryPolicies
from vigil.domain.states import AdminState, InstanceState
from vigil.recovery.ports import Alarms, Controller, Publisher, RecoveryVim
from vigil.recovery.steps import host_alarm, owner_updates, record_step

log = logging.getLogger(__name__)

WHY = "recovery of a fenced host's instances"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Evacuator:
    def __init__(
        self,
        controller: Controller,
        vim: RecoveryVim,
        alarms: Alarms,
        publisher: Publisher,
        policies: RecoveryPolicies,
        *,
        constraints: Callable[[str], GroupConstraints | None] = lambda _group: None,
        concurrency: int = 32,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._controller = controller
        self._vim = vim
        self._alarms = alarms
        self._publisher = publisher
        self.policies = policies
        self._constraints = constraints  # a group's FEAT03 constraints, which the scheduler honours too
        self._gate = asyncio.Semaphore(concurrency)
        self._wall = wall
        self._clock = clock

    def chosen(self, host: str) -> list[Instance]:
        """The instances of ``host`` its fault left ERROR whose policy is to evacuate."""
        return [
            inst
            for inst in self._vim.map.instances_on(host)
            if inst.host == host
            and inst.state is InstanceState.ERROR
            and self.policies.of(inst.project, inst.group).action is RecoveryAction.EVACUATE
        ]

    async def recover(self, fault: Fault) -> None:
        """Evacuate the fenced host of ``fault`` (FenceFirst's hook, once the fence is confirmed)."""
        host = fault.resource_id
        chosen = self.chosen(host)
        if not chosen:
            if Checkpoint.RECOVERY_STARTED in fault.checkpoints:  # resumed: what was under way ended meanwhile
                fault.mark(Checkpoint.RECOVERED, self._wall())
                await self._tell(fault, {}, {})
            return
        fault.mark(Checkpoint.RECOVERY_STARTED, self._wall())
        moves, unplaced = self.plan(host, chosen)
        owners: dict[str, str] = {inst.id: inst.project for inst in chosen}
        await self._tell(fault, owners, {"recovery": "evacuating"}, evacuating=[m.instance for m in moves])
        await self._enable_reserved({m.target for m in moves})
        recovered: list[str] = []
        failed: dict[str, str] = dict(unplaced)
        pending = {asyncio.ensure_future(self._evacuate(move)): move for move in moves}
        first = True
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if first:
                crash_point("mid-recovery")  # the first ended; the rest may not have
                first = False
            for task in done:
                move = pending.pop(task)
                error = task.result()
                if error is None:
                    recovered.append(move.instance)
                else:
                    failed[move.instance] = error
            await self._tell(fault, owners, {}, recovered=recovered, failed=failed)
        fault.mark(Checkpoint.RECOVERED, self._wall())
        if failed:
            await self._recovery_failed(fault, failed)
        log.info("host %s: %d instances evacuated, %d not", host, len(recovered), len(failed))

    def plan(self, host: str, chosen: Sequence[Instance]) -> tuple[list[Move], dict[str, str]]:
        """Where each chosen instance goes, by its policy's method; those that fit nowhere, with why."""
        rmap = self._vim.map
        ordinary: list[str] = []
        reserved: list[str] = []
        capacity: dict[str, int] = {}
        for candidate in rmap.hosts():
            if candidate.name == host or not _usable(candidate, candidate.name in self.policies.reserved_hosts):
                continue
            capacity[candidate.name] = candidate.vcpus
            (reserved if candidate.name in self.policies.reserved_hosts else ordinary).append(candidate.name)
        instances: dict[str, PlanInstance] = {}
        groups: dict[str, PlanGroup] = {}
        moving = {inst.id for inst in chosen}
        for other in rmap.hosts():
            for inst in rmap.instances_on(other.name):
                if inst.host != other.name or (other.name == host and inst.id not in moving):
                    continue  # dead with their host, or counted where they run
                instances[inst.id] = PlanInstance(inst.id, other.name, inst.vcpus, inst.group, inst.migrating_to)
                if inst.group is not None and inst.group not in groups:
                    groups[inst.group] = group_of(rmap.group(inst.group), self._constraints(inst.group))
        layout = Layout(capacity, instances, groups)
        moves: list[Move] = []
        unplaced: dict[str, str] = {}
        by_method: dict[tuple[bool, ...], list[Instance]] = {}
        for inst in chosen:
            by_method.setdefault(self.policies.of(inst.project, inst.group).tiers, []).append(inst)
        for tiers, members in by_method.items():
            mine = {i.id for i in members}
            kept = {k: v for k, v in layout.instances.items() if v.host != host or k in mine}
            placed = self._place(
                Layout(layout.capacity, kept, layout.groups),
                host,
                [reserved if r else ordinary for r in tiers],
                unplaced,
            )
            moves.extend(placed)
            layout = layout.moved(placed)
        return moves, unplaced

    @staticmethod
    def _place(layout: Layout, host: str, tiers: list[list[str]], unplaced: dict[str, str]) -> list[Move]:
        """The planner's evacuation of ``host``; an instance that fits nowhere is left out and the rest planned
        again, so one that cannot move does not keep the others where they are."""
        while layout.on(host):
            try:
                return evacuate_in_tiers(layout, host, tiers)
            except NoRoom as no_room:
                stuck = no_room.instance or layout.on(host)[0].id
                unplaced[stuck] = str(no_room)
                layout = Layout(
                    layout.capacity, {k: v for k, v in layout.instances.items() if k != stuck}, layout.groups
                )
        return []

    async def _enable_reserved(self, targets: set[str]) -> None:
        for name in sorted(targets & self.policies.reserved_hosts):
            host = self._vim.map.host(name)
            if host.admin_state is AdminState.DISABLED:
                await self._vim.set_host_enabled(name, True, reason="reserved host taking a fenced host's instances")

    async def _evacuate(self, move: Move) -> str | None:
        """One evacuation to its end; the reason it failed, or None."""
        try:
            async with self._gate:
                operation = await self._vim.evacuate(move.instance, target=move.target)
            ended = await operation.done
        except (DomainError, OSError) as exc:
            return str(exc)
        return None if ended.state in (InstanceState.ACTIVE, InstanceState.SHUTOFF) else f"ended {ended.state}"

    async def _tell(
        self,
        fault: Fault,
        owners: dict[str, str],
        base: dict[str, Any],
        *,
        evacuating: Sequence[str] = (),
        recovered: Sequence[str] = (),
        failed: dict[str, str] | None = None,
    ) -> None:
        """Each owner's alarm of the fault updated with its own instances' recovery (no host named)."""

        def details(alarm: Alarm) -> dict[str, Any] | None:
            mine = {i for i, p in owners.items() if p == alarm.project}
            if not mine:
                return None
            shown = dict(base)
            if evacuating:
                shown["evacuating"] = sorted(mine & set(evacuating))
            if recovered or failed:
                shown["recovered"] = sorted(mine & set(recovered))
                shown["not_recovered"] = sorted(mine & set(failed or {}))
                if not mine - set(recovered) - set(failed or {}):
                    shown["recovery"] = "done" if not mine & set(failed or {}) else "partial"
            return shown

        now = self._clock()
        changes = owner_updates(self._alarms, fault, now, details)
        await record_step(self._controller, self._publisher, fault, WHY, now, changes)

    async def _recovery_failed(self, fault: Fault, failed: dict[str, str]) -> None:
        now = self._clock()
        change = host_alarm(
            self._alarms,
            fault,
            AlarmKind.HOST_RECOVERY_FAILED,
            Severity.MAJOR,
            f"{len(failed)} instances of fenced host {fault.resource_id} were not recovered",
            now,
            resource_ids=sorted(failed),
            details={"not_recovered": dict(sorted(failed.items()))},
        )
        await record_step(self._controller, self._publisher, fault, WHY, now, [change])


def _usable(host: Host, reserved: bool) -> bool:
    """Whether ``host`` may take instances now: up, not forced down, not in maintenance, and enabled (a reserved
    host is kept disabled until it is used)."""
    return (
        host.reachable
        and not host.forced_down
        and not host.in_maintenance
        and (reserved or host.admin_state is AdminState.ENABLED)
    )
