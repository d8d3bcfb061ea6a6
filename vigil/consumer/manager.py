"""The sample VNF manager: an ACT/STBY pair plus non-redundant instances.

Doctor's consumer, steps 0, 9 and 10:

0. :meth:`VnfManager.start` adopts the project's instances (the pair by
   their ``role`` metadata, ``ACT`` and ``STBY``; every other instance as
   non-redundant), boots what is missing through the API (the pair goes
   into the project's anti-affinity server group, so one host failure
   takes at most one of them), and makes one subscription to its
   instances' ``instance.down`` alarms.
9. :meth:`VnfManager.receive` runs inside the webhook request, before the
   answer: a notification it has not seen (deduplicated by notification
   id) that names its active instance switches the standby to active at
   once. Switching is the manager's own role flip, recorded with its time;
   an ``on_switchover`` hook then tells the application (the testbed's
   workload moves its service address to the new active).
10. Then, in a task of its own, it recreates each failed instance: delete
    it, boot a new one in the same group (the failed active comes back as
    the new standby), wait until it is ACTIVE, and move the subscription
    to the new set of instances. With ``recreate=False`` it leaves them to
    the cloud instead (a project whose recovery policy is ``evacuate``:
    Vigil fences the host, then rebuilds them elsewhere, same ids), and
    only switches over.

:meth:`VnfManager.state` shows roles, the notifications received (with
their receive times), switchovers and recreations, for tests and the demo.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from vigil.consumer.client import ApiError, VigilClient
from vigil.consumer.notifications import Notification

log = logging.getLogger(__name__)

ROLE_KEY = "role"


class Role(StrEnum):
    ACT = "ACT"
    STBY = "STBY"
    SINGLE = "single"  # a non-redundant instance


class Health(StrEnum):
    OK = "OK"
    FAILED = "FAILED"
    RECREATING = "RECREATING"


@dataclass(slots=True)
class Member:
    id: str
    name: str
    role: Role
    vcpus: int = 1
    group: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    health: Health = Health.OK


@dataclass(frozen=True, slots=True)
class Switchover:
    """Step 9: the standby became active."""

    at: float  # Unix time of the flip
    received_at: float  # of the notification that caused it
    notification: str
    failed: str  # the active instance that went down
    new_act: str


@dataclass(slots=True)
class Recreation:
    """Step 10: a failed instance replaced by a new one."""

    failed: str
    name: str
    role: Role
    started_at: float
    replacement: str | None = None
    active_at: float | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class VnfSpec:
    """What the manager boots when the project has none of it yet."""

    name: str = "vnf"
    pair_vcpus: int = 1
    workers: int = 1
    worker_vcpus: int = 1


class VnfManager:
    # The alarm kinds (and, for the app manager, message types) it subscribes to.
    event_types: tuple[str, ...] = ("instance.down",)

    def __init__(
        self,
        client: VigilClient,
        *,
        project: str | None = None,
        payload_format: str = "aodh",
        spec: VnfSpec | None = None,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[str], None] | None = None,
        on_switchover: Callable[[Switchover], None] | None = None,
        boot_timeout_s: float = 30.0,
        recreate: bool = True,
    ) -> None:
        self.client = client
        self.recreate = recreate  # False: the cloud recovers failed instances (recovery policy evacuate)
        self.project = project
        self.payload_format = payload_format
        self.spec = spec or VnfSpec()
        self._clock = clock
        self._on_event = on_event
        self._on_switchover = on_switchover
        self._boot_timeout_s = boot_timeout_s
        self.members: dict[str, Member] = {}
        self.notifications: list[Notification] = []
        self.duplicates = 0
        self.switchovers: list[Switchover] = []
        self.recreations: list[Recreation] = []
        self.subscription: dict[str, Any] | None = None
        self.callback: str | None = None
        self._seen: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscribing = asyncio.Lock()
        self._changed = asyncio.Event()

    # -- step 0 --------------------------------------------------------------

    async def start(self, callback: str) -> None:
        """Adopt or create the instances, then subscribe ``callback`` to them."""
        self.callback = callback
        await self._adopt()
        await self._create_missing()
        await self._subscribe()
        self._say(f"managing {len(self.members)} instances of {self.project}: {self._roles_line()}")

    async def _adopt(self) -> None:
        found = [i for i in await self.client.instances(self.project) if i["state"] != "DELETED"]
        projects = {i["project"] for i in found}
        if self.project is None:
            if len(projects) > 1:
                raise ApiError(400, f"the token sees several projects ({', '.join(sorted(projects))}): give one")
            self.project = projects.pop() if projects else None
        if self.project is None:
            raise ApiError(400, "the token sees no instances: give the project to create them in")
        for inst in found:
            role_name = inst["metadata"].get(ROLE_KEY)
            role = Role(role_name) if role_name in (Role.ACT, Role.STBY) else Role.SINGLE
            self.members[inst["id"]] = Member(
                id=inst["id"],
                name=inst["name"],
                role=role,
                vcpus=inst["vcpus"],
                group=inst["group"],
                metadata=dict(inst["metadata"]),
                health=Health.FAILED if inst["state"] == "ERROR" else Health.OK,
            )

    async def _create_missing(self) -> None:
        have = {m.role for m in self.members.values()}
        missing = [r for r in (Role.ACT, Role.STBY) if r not in have]
        booted: list[dict[str, Any]] = []
        if missing:
            group = next((m.group for m in self.members.values() if m.role is not Role.SINGLE and m.group), None)
            group = group or await self._anti_affinity_group()
            for role in missing:
                name = f"{self.spec.name}-{role.lower()}"
                booted.append(await self._boot(name, role, self.spec.pair_vcpus, group))
        if Role.SINGLE not in have:
            for n in range(self.spec.workers):
                name = f"{self.spec.name}-worker-{n + 1}"
                booted.append(await self._boot(name, Role.SINGLE, self.spec.worker_vcpus, None))
        for inst in booted:
            await self.client.wait_state(inst["id"], "ACTIVE", timeout_s=self._boot_timeout_s)

    async def _anti_affinity_group(self) -> str:
        for group in await self.client.server_groups():
            if group["project"] == self.project and group["policy"] == "anti-affinity":
                return str(group["id"])
        raise ApiError(409, f"project {self.project} has no anti-affinity server group for the ACT/STBY pair")

    async def _boot(
        self, name: str, role: Role, vcpus: int, group: str | None, metadata: dict[str, str] | None = None
    ) -> dict[str, Any]:
        meta = dict(metadata or {})
        if role is not Role.SINGLE or ROLE_KEY not in meta:
            meta[ROLE_KEY] = "worker" if role is Role.SINGLE else str(role)
        inst = await self.client.boot(name, project=self.project, vcpus=vcpus, group=group, metadata=meta)
        self.members[inst["id"]] = Member(inst["id"], name, role, vcpus, group, meta)
        return inst

    async def _subscribe(self) -> None:
        """One subscription to the current instances; a new one replaces the old."""
        if self.callback is None:
            return
        async with self._subscribing:
            old = self.subscription
            self.subscription = await self.client.subscribe(
                self.callback,
                name=f"sample VNFM of {self.project}",
                resource_ids=sorted(self.members),
                event_types=list(self.event_types),
                payload_format=self.payload_format,
            )
            if old is not None:
                await self.client.unsubscribe(old["id"])

    async def unsubscribe(self) -> None:
        async with self._subscribing:
            if self.subscription is not None:
                await self.client.unsubscribe(self.subscription["id"])
                self.subscription = None

    # -- step 9: in the webhook request ----------------------------------------

    def receive(self, note: Notification) -> bool:
        """Act on a notification; False for one already seen (same id)."""
        if note.id in self._seen:
            self.duplicates += 1
            return False
        self._seen.add(note.id)
        self.notifications.append(note)
        if note.cleared:
            self._say(f"alarm {note.alarm_id} cleared")
            self._changed.set()
            return True
        failed = [self.members[i] for i in note.resource_ids if i in self.members]
        failed = [m for m in failed if m.health is Health.OK]
        for member in failed:
            member.health = Health.FAILED
        if any(m.role is Role.ACT for m in failed):
            self._switch_over(note, next(m for m in failed if m.role is Role.ACT))
        if failed and self.recreate:
            self._spawn(self._recreate_all(failed), f"vigil.consumer.recreate.{note.id}")
        elif failed:
            self._say(f"{len(failed)} failed instances left to the cloud's recovery")
        self._changed.set()
        return True

    def _switch_over(self, note: Notification, act: Member) -> None:
        standby = self._healthy_standby()
        if standby is None:
            self._say(f"active {act.name} is down and no standby is healthy: waiting for the recreation")
            return
        switchover = self._flip(act, standby, note.received_at, note.id)
        self._say(
            f"switched over: {standby.name} is ACT ({(switchover.at - note.received_at) * 1000:.3f} ms after receipt), "
            f"{act.name} failed"
        )

    def _healthy_standby(self) -> Member | None:
        return next((m for m in self.members.values() if m.role is Role.STBY and m.health is Health.OK), None)

    def _flip(self, act: Member, standby: Member, received_at: float, cause: str) -> Switchover:
        """Make ``standby`` the active one and tell the application (the hook)."""
        standby.role, act.role = Role.ACT, Role.STBY
        at = self._clock()
        switchover = Switchover(at, received_at, cause, act.id, standby.id)
        self.switchovers.append(switchover)
        if self._on_switchover is not None:  # e.g. move the service address to the new active
            try:
                self._on_switchover(switchover)
            except Exception:
                log.exception("the switchover hook failed")
        return switchover

    # -- step 10: in a task --------------------------------------------------

    def _spawn(self, work: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _recreate_all(self, failed: list[Member]) -> None:
        results = await asyncio.gather(*(self._recreate(m) for m in failed), return_exceptions=True)
        if any(r is True for r in results):
            try:
                await self._subscribe()
            except (ApiError, OSError) as exc:
                log.warning("could not move the subscription to the new instances: %s", exc)
        self._changed.set()

    async def _recreate(self, member: Member) -> bool:
        member.health = Health.RECREATING
        record = Recreation(member.id, member.name, member.role, self._clock())
        self.recreations.append(record)
        try:
            await self.client.delete(member.id)
            self.members.pop(member.id, None)
            inst = await self._boot(member.name, member.role, member.vcpus, member.group, member.metadata)
            record.replacement = inst["id"]
            await self.client.wait_state(inst["id"], "ACTIVE", timeout_s=self._boot_timeout_s)
        except (ApiError, OSError, TimeoutError) as exc:
            record.error = str(exc)
            self._say(f"could not recreate {member.name}: {exc}")
            return False
        finally:
            self._changed.set()
        record.active_at = self._clock()
        role = "non-redundant" if member.role is Role.SINGLE else f"as {member.role}"
        self._say(f"recreated {member.name}: {inst['id']} ({role})")
        return True

    # -- looking at it ---------------------------------------------------------

    @property
    def act(self) -> Member | None:
        return next((m for m in self.members.values() if m.role is Role.ACT), None)

    @property
    def stby(self) -> Member | None:
        return next((m for m in self.members.values() if m.role is Role.STBY), None)

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    async def wait_for(self, predicate: Callable[["VnfManager"], bool], timeout_s: float = 10.0) -> None:
        """Wait until ``predicate(self)`` holds; TimeoutError after ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()

    async def settle(self, timeout_s: float = 30.0) -> None:
        """Wait until no recreation is under way."""
        async with asyncio.timeout(timeout_s):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def state(self) -> dict[str, Any]:
        def member(m: Member) -> dict[str, Any]:
            return {"id": m.id, "name": m.name, "role": m.role, "health": m.health, "group": m.group}

        act, stby = self.act, self.stby
        return {
            "project": self.project,
            "format": self.payload_format,
            "subscription": self.subscription["id"] if self.subscription else None,
            "act": act.id if act else None,
            "stby": stby.id if stby else None,
            "members": [member(m) for m in self.members.values()],
            "notifications": [n.summary() for n in self.notifications],
            "duplicates": self.duplicates,
            "switchovers": [asdict(s) for s in self.switchovers],
            "recreations": [asdict(r) for r in self.recreations],
        }

    def _roles_line(self) -> str:
        act, stby = self.act, self.stby
        singles = sum(1 for m in self.members.values() if m.role is Role.SINGLE)
        return f"ACT {act.name if act else '-'}, STBY {stby.name if stby else '-'}, {singles} non-redundant"

    def _say(self, line: str) -> None:
        log.info("%s", line)
        if self._on_event is not None:
            with contextlib.suppress(Exception):
                self._on_event(line)
