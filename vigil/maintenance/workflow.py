"""One maintenance session, run as one asyncio task through its states.

The default workflow is Fenix's, with Doctor's messages:

1. MAINTENANCE: every project with instances on the hosts is told and must
   ACK within the reply window (``reply_at``).
2. SCALE_IN, only when no host can be emptied onto the others: projects are
   asked to shrink, then the planner tries again.
3. PREPARE_MAINTENANCE, only when no host of the session is empty: the
   cheapest host is emptied (its projects ACK with an action per instance).
4. START_MAINTENANCE: the empty hosts are maintained.
5. PLANNED_MAINTENANCE: each host that still has instances is emptied onto
   hosts already maintained, then maintained, one host at a time.
6. MAINTENANCE_COMPLETE: projects are told (and ACK) that it is over.
7. MAINTENANCE_DONE.

Maintaining a host: disable it (going-to-maintenance, no new instances),
flag it in maintenance (the inspector suppresses fault actions on it), tell
admins IN_MAINTENANCE, run the session's actions, then clear the flag,
enable it and tell admins MAINTENANCE_COMPLETE.

Waiting is by futures and timers, never polling: a reply resolves the
future the session waits on; a reply window or a migration that runs too
long is an ``asyncio.timeout``. A NACK, a missed window, a failed or slow
migration or a failed action raises :class:`SessionFailed`; the session
then rolls every host it touched back to enabled, clears their maintenance
flags, tells admins MAINTENANCE_FAILED with the reason and ends in
MAINTENANCE_FAILED. Instances are never deleted by the workflow: a failed
migration leaves its instance where it ran.
"""

import asyncio
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from vigil.domain.errors import Conflict, DomainError
from vigil.domain.maintenance import (
    HOST_EVENT_TYPE,
    HOST_MAINTENANCE_TRANSITIONS,
    PROJECT_EVENT_TYPE,
    SESSION_TRANSITIONS,
    Constraints,
    HostMaintenanceState,
    HostMessage,
    InstanceAction,
    MaintenanceMessage,
    MaintenanceSession,
    ProjectProgress,
    ProjectState,
    Reply,
    ReplyKind,
    SessionState,
    parse_reply,
)
from vigil.domain.planner import (
    Layout,
    Move,
    NoRoom,
    evacuate,
    first_host_to_empty,
    maintenance_order,
    wave_pause,
    waves,
)
from vigil.domain.states import HostStatus, InstanceState
from vigil.maintenance.actions import ActionFailed, HostAction
from vigil.maintenance.layout import layout_of
from vigil.maintenance.ports import Clock, Cloud, Messenger, Records

log = logging.getLogger(__name__)

_MESSAGE_NAMESPACE = uuid.UUID("7d7e3f5a-2b8c-4f61-9e0a-5c4d3b2a1f09")
# The workflow's states in the order it goes through them (FAILED ends it from any).
_PHASES = [
    SessionState.MAINTENANCE,
    SessionState.SCALE_IN,
    SessionState.PREPARE_MAINTENANCE,
    SessionState.START_MAINTENANCE,
    SessionState.PLANNED_MAINTENANCE,
    SessionState.MAINTENANCE_COMPLETE,
    SessionState.MAINTENANCE_DONE,
    SessionState.MAINTENANCE_FAILED,
]
_MOVABLE = (InstanceState.ACTIVE, InstanceState.SHUTOFF)


class SessionFailed(DomainError):
    """Why a session cannot go on; it becomes the session's ``reason``."""


@dataclass(frozen=True, slots=True)
class WorkflowConfig:
    """``reply_window_s``: how long a project has to answer (``reply_at``).
    ``migration_timeout_s``: a migration running longer fails the session.
    ``reply_url_root``: the API's public root, for ``reply_url`` (empty: the
    root the session's creating request came to, given by the service)."""

    reply_window_s: float = 30.0
    migration_timeout_s: float = 600.0
    reply_url_root: str = ""


class Workflow:
    """Runs one session; :meth:`reply` hands it a project's answer."""

    def __init__(
        self,
        session: MaintenanceSession,
        *,
        cloud: Cloud,
        records: Records,
        messenger: Messenger,
        clock: Clock,
        config: WorkflowConfig,
        actions: Sequence[HostAction],
        constraints: Constraints,
    ) -> None:
        self.session = session
        self._cloud = cloud
        self._records = records
        self._messenger = messenger
        self._clock = clock
        self._config = config
        self._actions = list(actions)
        self._constraints = constraints
        self._waiting: dict[str, tuple[ProjectState, asyncio.Future[Reply]]] = {}
        self._steps = 0
        self._suspending = False  # a cancel that leaves the session as it stands, for the next start to resume
        self._resuming = False  # the first ask of a resumed run may be the one the restart cut off

    # -- replies from projects ---------------------------------------------------

    def expecting(self, project: str) -> ProjectState | None:
        """The message ``project`` is to answer now, if any."""
        waiting = self._waiting.get(project)
        return waiting[0] if waiting is not None and not waiting[1].done() else None

    def reply(self, project: str, reply: Reply) -> None:
        """Hand over a project's reply; Conflict if it answers something not asked."""
        expected = self.expecting(project)
        if expected is None:
            raise Conflict(f"session {self.session.id} is not waiting for a reply from project {project}")
        if reply.state is not expected:
            raise Conflict(f"project {project} is asked {expected}; a reply to {reply.state} does not answer it")
        self._record_reply(project, reply)
        self._waiting[project][1].set_result(reply)

    def instance_ids(self, project: str) -> list[str]:
        """The instances the session last told ``project`` about."""
        progress = self.session.projects.get(project)
        if progress is None:
            raise Conflict(f"project {project} has no instances in session {self.session.id}")
        return list(progress.instance_ids)

    def suspending(self) -> None:
        """The next cancel stops the run where it stands, rolling nothing back: Vigil is stopping (or handing over
        to another leader), and the next start resumes the session (:meth:`resume`)."""
        self._suspending = True

    async def resume(self) -> MaintenanceSession:
        """Take up a session that a stop, a crash or a takeover cut off, where it stood: the steps it had done
        are not done again (a host maintained stays so), an ask whose replies came is not asked again, and one
        still unanswered is waited for until its own window ends (the app managers send a reply the old leader
        could not take again); a migration the stop rolled back is made again. See the module."""
        self._resuming = True
        return await self.run()

    async def abandon(self, reason: str) -> None:
        """End a session that is not running (a restart cut it off): roll back and fail it."""
        await self._fail(reason)

    # -- the run -------------------------------------------------------------------

    async def run(self) -> MaintenanceSession:
        try:
            await self._sleep_until(self.session.maintenance_at)
            await self._run()
        except asyncio.CancelledError:
            if not self._suspending:
                await asyncio.shield(self._fail("cancelled by the admin"))
            raise
        except (SessionFailed, NoRoom, ActionFailed) as exc:
            await self._fail(str(exc))
        except DomainError as exc:
            await self._fail(f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a session never dies silently with hosts disabled
            log.exception("maintenance session %s failed", self.session.id)
            await self._fail(f"internal error: {exc!r}")
        return self.session

    async def _run(self) -> None:
        hosts = list(self.session.hosts)
        if self._before(SessionState.SCALE_IN):
            affected = self._instances_by_project(hosts)
            await self._ask(ProjectState.MAINTENANCE, affected, allowed=(), actions_at=self.session.maintenance_at)
        else:  # resumed past the first ask: the projects it asked are the session's
            affected = {p: list(progress.instance_ids) for p, progress in self.session.projects.items()}
        layout = self._layout()
        if self._before(SessionState.START_MAINTENANCE) and all(layout.on(h) for h in hosts):
            prepare = self._preparing() or await self._host_to_prepare(layout, hosts)
            await self._enter(SessionState.PREPARE_MAINTENANCE)
            await self._empty(prepare, ProjectState.PREPARE_MAINTENANCE)
        await self._enter(SessionState.START_MAINTENANCE)
        layout = self._layout()
        order = [h for h in maintenance_order(layout, hosts) if not self.session.host_progress[h].maintained]
        for host in order:
            if not layout.on(host):
                await self._maintain(host)  # moves no instance: the layout holds
        remaining = [h for h in order if not self.session.host_progress[h].maintained]
        if remaining:
            await self._enter(SessionState.PLANNED_MAINTENANCE)
        for host in remaining:
            await self._empty(host, ProjectState.PLANNED_MAINTENANCE)
            await self._maintain(host)
        await self._enter(SessionState.MAINTENANCE_COMPLETE)
        await self._ask(
            ProjectState.MAINTENANCE_COMPLETE, self._instances_by_project(hosts, every=affected), allowed=()
        )
        await self._enter(SessionState.MAINTENANCE_DONE)

    async def _host_to_prepare(self, layout: Layout, hosts: Sequence[str]) -> str:
        """The host to empty first; asks projects to scale in when none can be emptied."""
        try:
            host = first_host_to_empty(layout, hosts, targets=self._targets(exclude=()))
        except NoRoom:
            await self._enter(SessionState.SCALE_IN)
            await self._ask(ProjectState.SCALE_IN, self._instances_by_project(hosts), allowed=())
            layout = self._layout()
            try:
                host = first_host_to_empty(layout, hosts, targets=self._targets(exclude=()))
            except NoRoom as exc:
                raise SessionFailed(f"no host can be emptied even after scaling in: {exc}") from None
        if host is None:  # scaling in emptied a host
            return next(h for h in hosts if not layout.on(h))
        return host

    # -- hosts ------------------------------------------------------------------------

    async def _empty(self, host: str, state: ProjectState) -> None:
        """Ask the host's projects what to do with their instances, then move them."""
        await self._host_state(host, HostMaintenanceState.GOING_TO_MAINTENANCE)
        on_host = self._instances_by_project([host])
        # FEAT03 lead_time: the app managers hear of an action at least that long before it.
        lead = max((self._lead_time(i) for ids in on_host.values() for i in ids), default=0.0)
        actions_at = self._clock() + timedelta(seconds=lead)
        replies = await self._ask(state, on_host, allowed=tuple(InstanceAction), actions_at=actions_at, host=host)
        await self._sleep_until(actions_at)
        chosen: dict[str, InstanceAction] = {}
        for reply in replies.values():
            chosen.update(reply.instance_actions)
        layout = self._layout()
        actions = {inst.id: chosen.get(inst.id) or self._default_action(inst.id) for inst in layout.on(host)}
        for inst in layout.on(host):
            if actions[inst.id] is InstanceAction.OWN_ACTION:
                raise SessionFailed(f"instance {inst.id} is still on {host} after its project chose OWN_ACTION")
            live_state = self._cloud.map.instance(inst.id).state
            if live_state not in _MOVABLE:
                raise SessionFailed(f"instance {inst.id} on {host} is {live_state} and cannot be migrated")
        maintained = [h for h in self.session.hosts if self.session.host_progress[h].maintained]
        moves = evacuate(
            layout,
            host,
            preferred=self._targets(only=maintained),
            others=self._targets(exclude=[*self.session.hosts]) + self._targets(only=self._unmaintained(host)),
        )
        for wave in waves(layout, moves):
            await self._migrate_wave(wave, actions)
            pause = wave_pause(layout, wave)
            if pause > 0:
                await asyncio.sleep(pause)

    async def _migrate_wave(self, wave: Sequence[Move], actions: Mapping[str, InstanceAction]) -> None:
        results = await asyncio.gather(*(self._migrate(m, actions[m.instance]) for m in wave), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _migrate(self, move: Move, action: InstanceAction) -> None:
        live = action is InstanceAction.LIVE_MIGRATE
        try:
            migration = await self._cloud.migrate(move.instance, target=move.target, live=live)
        except DomainError as exc:
            raise SessionFailed(f"migration of {move.instance} to {move.target} refused: {exc}") from None
        timeout = self._config.migration_timeout_s
        try:
            async with asyncio.timeout(timeout):
                inst = await asyncio.shield(migration.done)
        except TimeoutError:
            raise SessionFailed(f"migration of {move.instance} to {move.target} ran past {timeout:g} s") from None
        if inst.host != move.target:
            raise SessionFailed(f"migration of {move.instance} from {move.source} to {move.target} failed")
        self.session.migrations += 1
        await self._save()
        await self._tell(inst.project, ProjectState.INSTANCE_ACTION_DONE, [inst.id], allowed=())

    async def _maintain(self, host: str) -> None:
        if self.session.host_progress[host].state is not HostMaintenanceState.IN_MAINTENANCE:  # else resumed there
            await self._host_state(host, HostMaintenanceState.GOING_TO_MAINTENANCE)
            left = self._cloud.map.instances_on(host)
            if left:
                raise SessionFailed(f"host {host} still runs {len(left)} instance(s) ({left[0].id}, ...)")
            reason = f"maintenance session {self.session.id}"
            await self._cloud.set_host_maintenance(host, True, reason=reason)
            await self._host_state(host, HostMaintenanceState.IN_MAINTENANCE)
            await self._tell_admins(HostMessage.IN_MAINTENANCE, host=host)
        for action in self._actions:  # a resumed session runs the actions of the host it stood at again
            await action.run(host, self.session.id)
        await self._release(host)
        self._set_host(host, maintained=True, ended_at=self._clock())
        await self._save()
        await self._tell_admins(HostMessage.MAINTENANCE_COMPLETE, host=host)

    async def _release(self, host: str) -> None:
        """The host back to enabled (as it was before the session) and out of maintenance."""
        progress = self.session.host_progress[host]
        live = self._cloud.map.host(host)
        if live.in_maintenance:
            await self._cloud.set_host_maintenance(host, False, reason=f"maintenance session {self.session.id} ended")
        if progress.was_enabled and live.status is HostStatus.MAINTENANCE:
            await self._cloud.set_host_enabled(host, True, reason=f"maintenance session {self.session.id} ended")
        await self._host_state(host, HostMaintenanceState.ENABLED)

    async def _host_state(self, host: str, state: HostMaintenanceState) -> None:
        progress = self.session.host_progress[host]
        if progress.state is state:
            return
        HOST_MAINTENANCE_TRANSITIONS.check(host, progress.state, state)
        if state is HostMaintenanceState.GOING_TO_MAINTENANCE:
            live = self._cloud.map.host(host)
            enabled = live.status is not HostStatus.MAINTENANCE
            self._set_host(host, was_enabled=enabled, started_at=self._clock())
            if enabled:
                await self._cloud.set_host_enabled(host, False, reason=f"maintenance session {self.session.id}")
        self._set_host(host, state=state)
        await self._save()

    def _set_host(self, host: str, **fields: object) -> None:
        # Progress objects are replaced, not changed in place: saved snapshots share them.
        self.session.host_progress[host] = replace(self.session.host_progress[host], **fields)  # type: ignore[arg-type]

    # -- failure ----------------------------------------------------------------------

    async def _fail(self, reason: str) -> None:
        log.warning("maintenance session %s failed: %s", self.session.id, reason)
        for _, future in self._waiting.values():
            if not future.done():
                future.cancel()
        for host, progress in self.session.host_progress.items():
            if progress.state is not HostMaintenanceState.ENABLED:
                try:
                    await self._release(host)
                except DomainError as exc:  # the host went away: nothing left to roll back there
                    log.error("could not roll host %s back: %s", host, exc)
        self.session.reason = reason
        await self._enter(SessionState.MAINTENANCE_FAILED)
        await self._tell_admins(HostMessage.MAINTENANCE_FAILED, reason=reason)
        for project, asked in list(self.session.projects.items()):
            instance_ids = [i for i in asked.instance_ids if self._exists(i)]
            await self._tell(project, ProjectState.MAINTENANCE_FAILED, instance_ids, allowed=(), reason=reason)

    # -- projects -----------------------------------------------------------------------

    async def _ask(
        self,
        state: ProjectState,
        projects: Mapping[str, list[str]],
        *,
        allowed: Iterable[InstanceAction],
        actions_at: datetime | None = None,
        host: str | None = None,
    ) -> dict[str, Reply]:
        """Send ``state`` to each project and wait for every ACK within the window.

        The first ask of a resumed run that the restart cut off (the same state, host and instances the project
        was last asked) is not sent again: a project that answered it has its reply, and the others are waited
        for until their own window ends."""
        if not projects:
            return {}
        resumed = self._resumed_asks(state, projects, host)
        self._resuming = False
        replies: dict[str, Reply] = {}
        loop = asyncio.get_running_loop()
        waits: dict[asyncio.Future[Reply], str] = {}
        for project in projects:
            answered = resumed.get(project)
            if answered is not None and answered.reply is not None:
                kind, _ = parse_reply(answered.reply)
                if kind is ReplyKind.NACK:
                    raise SessionFailed(f"project {project} answered {answered.reply}")
                actions = {i: InstanceAction(a) for i, a in answered.instance_actions.items()}
                replies[project] = Reply(kind, state, actions)
                continue
            future: asyncio.Future[Reply] = loop.create_future()
            self._waiting[project] = (state, future)
            waits[future] = project
        allowed = list(allowed)
        for project, instance_ids in projects.items():
            if project not in resumed:
                await self._tell(project, state, instance_ids, allowed=allowed, actions_at=actions_at, host=host)
        window = self._config.reply_window_s
        deadline = max(
            [self._clock() + timedelta(seconds=window)]
            + [p.asked_at + timedelta(seconds=window) for p in resumed.values() if p.asked_at is not None]
        )
        try:
            async with asyncio.timeout(max((deadline - self._clock()).total_seconds(), 0.0)):
                pending = set(waits)
                while pending:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for future in done:
                        reply = future.result()
                        project = waits[future]
                        if reply.kind is ReplyKind.NACK:
                            raise SessionFailed(f"project {project} answered {reply.text}")
                        replies[project] = reply
        except TimeoutError:
            silent = sorted(p for f, p in waits.items() if not f.done())
            raise SessionFailed(f"project(s) {', '.join(silent)} did not answer {state} within {window:g} s") from None
        finally:
            for project in projects:
                self._waiting.pop(project, None)
        return replies

    def _resumed_asks(
        self, state: ProjectState, projects: Mapping[str, list[str]], host: str | None
    ) -> dict[str, ProjectProgress]:
        """In a resumed run's first ask: the projects already asked this very question before the restart."""
        if not self._resuming:
            return {}
        found: dict[str, ProjectProgress] = {}
        for project, instance_ids in projects.items():
            progress = self.session.projects.get(project)
            if (
                progress is not None
                and progress.asked_at is not None
                and (progress.state, progress.host) == (state, host)
                and sorted(progress.instance_ids) == sorted(instance_ids)
            ):
                found[project] = progress
        return found

    async def _tell(
        self,
        project: str,
        state: ProjectState,
        instance_ids: list[str],
        *,
        allowed: Iterable[InstanceAction],
        actions_at: datetime | None = None,
        reason: str | None = None,
        host: str | None = None,
    ) -> None:
        now = self._clock()
        reply_at = now + timedelta(seconds=self._config.reply_window_s)
        if state.needs_reply:
            progress = ProjectProgress(
                project=project, state=state, instance_ids=list(instance_ids), asked_at=now, host=host
            )
            self.session.projects[project] = progress
            await self._save()
        root = self._config.reply_url_root.rstrip("/")
        payload: dict[str, object] = {
            "service": "vigil",
            "session_id": self.session.id,
            "project_id": project,
            "instance_ids": list(instance_ids),
            "allowed_actions": [str(a) for a in allowed],
            "state": str(state),
            "actions_at": _iso(actions_at or now),
            "reply_at": _iso(reply_at) if state.needs_reply else None,
            "reply_url": f"{root}/v1/maintenance/{self.session.id}/{project}",
            "metadata": dict(self.session.metadata),
        }
        if reason is not None:
            payload["reason"] = reason
        await self._send(PROJECT_EVENT_TYPE, project, payload, f"{state}/{'/'.join(instance_ids)}")

    async def _tell_admins(self, state: HostMessage, *, host: str | None = None, reason: str | None = None) -> None:
        payload: dict[str, object] = {"service": "vigil", "session_id": self.session.id, "state": str(state)}
        if host is not None:
            payload["host"] = host
        else:
            payload["hosts"] = list(self.session.hosts)
        if reason is not None:
            payload["reason"] = reason
        await self._send(HOST_EVENT_TYPE, None, payload, f"{state}/{host or ''}")

    async def _send(self, event_type: str, project: str | None, payload: dict[str, object], step: str) -> None:
        self._steps += 1
        ident = uuid.uuid5(_MESSAGE_NAMESPACE, f"{self.session.id}/{project}/{self._steps}/{step}")
        message = MaintenanceMessage(
            id=str(ident),
            event_type=event_type,
            session_id=self.session.id,
            project=project,
            payload=payload,
            created_at=self._clock(),
        )
        await self._messenger.send_message(message)

    def _record_reply(self, project: str, reply: Reply) -> None:
        progress = self.session.projects.get(project) or ProjectProgress(project=project)
        actions = {i: str(a) for i, a in reply.instance_actions.items()}
        self.session.projects[project] = replace(
            progress, reply=reply.text, replied_at=self._clock(), instance_actions=actions
        )

    # -- reading the cloud --------------------------------------------------------------

    def _instances_by_project(
        self, hosts: Iterable[str], *, every: Mapping[str, list[str]] | None = None
    ) -> dict[str, list[str]]:
        """Project → its instances on ``hosts``; ``every`` adds projects that had some before (with none left)."""
        found: dict[str, list[str]] = {p: [] for p in every or {}}
        for host in hosts:
            for inst in self._cloud.map.instances_on(host):
                found.setdefault(inst.project, []).append(inst.id)
        if every is not None:
            for project in found:
                found[project] = sorted(set(found[project]) | {i for i in every[project] if self._exists(i)})
        return found

    def _exists(self, instance_id: str) -> bool:
        try:
            self._cloud.map.instance(instance_id)
        except DomainError:
            return False
        return True

    def _layout(self) -> Layout:
        return layout_of(self._cloud.map, self._constraints)

    def _lead_time(self, instance_id: str) -> float:
        constraints = self._constraints.instances.get(instance_id)
        return constraints.lead_time if constraints else 0.0

    def _default_action(self, instance_id: str) -> InstanceAction:
        constraints = self._constraints.instances.get(instance_id)
        return constraints.migration_type if constraints else InstanceAction.MIGRATE

    def _targets(self, *, only: Iterable[str] | None = None, exclude: Iterable[str] = ()) -> list[str]:
        """Hosts that can take instances now (UP), among ``only`` or all, less ``exclude``."""
        excluded = set(exclude)
        names = list(only) if only is not None else [h.name for h in self._cloud.map.hosts()]
        return [n for n in names if n not in excluded and self._cloud.map.host(n).status is HostStatus.UP]

    def _unmaintained(self, but: str) -> list[str]:
        return [h for h in self.session.hosts if h != but and not self.session.host_progress[h].maintained]

    # -- state --------------------------------------------------------------------------

    def _before(self, state: SessionState) -> bool:
        """Whether the session has not yet got to ``state`` (a resumed run skips what it had done)."""
        return _PHASES.index(self.session.state) < _PHASES.index(state)

    def _preparing(self) -> str | None:
        """The host a resumed session was emptying to prepare, if it stood there."""
        if self.session.state is not SessionState.PREPARE_MAINTENANCE:
            return None
        going = HostMaintenanceState.GOING_TO_MAINTENANCE
        return next((h for h, p in self.session.host_progress.items() if p.state is going and not p.maintained), None)

    async def _enter(self, state: SessionState) -> None:
        if state is not SessionState.MAINTENANCE_FAILED and not self._before(state):
            return  # there already (a resumed run)
        SESSION_TRANSITIONS.check(self.session.id, self.session.state, state)
        self.session.state = state
        await self._save()

    async def _save(self) -> None:
        self.session.updated_at = self._clock()
        await self._records.save_records(self.session)

    async def _sleep_until(self, moment: datetime) -> None:
        delay = (moment - self._clock()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
