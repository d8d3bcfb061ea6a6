"""Maintenance sessions and FEAT03 constraints, as the API uses them.

One :class:`~vigil.maintenance.workflow.Workflow` task runs per open
session. Sessions and constraints are records in the store: every state
change of a session is saved as it happens. A session that a stop, a
crash or a takeover (high availability) cut off is taken up where it stood
by :meth:`MaintenanceService.resume` (:meth:`Workflow.resume`): what it had
done is not done again, an unanswered ask is waited for until its own
window ends, and a migration the restart rolled back is made again. Only a
session that cannot be trusted (a host of it gone, its actions no longer
valid) ends in MAINTENANCE_FAILED ("interrupted by a restart") with its
hosts rolled back. A clean stop leaves running sessions as they stand.
"""

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from vigil.domain.errors import Conflict, DomainError, NotFound
from vigil.domain.maintenance import (
    Constraints,
    GroupConstraints,
    HostProgress,
    InstanceAction,
    InstanceConstraints,
    MaintenanceSession,
    Reply,
    SessionId,
    SessionState,
    parse_reply,
)
from vigil.maintenance.actions import BUILTIN, ActionFactory, HostAction, InvalidAction, build_actions
from vigil.maintenance.ports import Clock, Cloud, Messenger, Records
from vigil.maintenance.workflow import Workflow, WorkflowConfig

log = logging.getLogger(__name__)

WORKFLOWS = ("default",)


class InvalidReply(DomainError):
    """A project's reply that does not parse (HTTP 422)."""


class MaintenanceService:
    def __init__(
        self,
        *,
        cloud: Cloud,
        records: Records,
        messenger: Messenger,
        clock: Clock,
        config: WorkflowConfig | None = None,
        plugins: Mapping[str, ActionFactory] = BUILTIN,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._cloud = cloud
        self._records = records
        self._messenger = messenger
        self._clock = clock
        self.config = config or WorkflowConfig()
        self._plugins = plugins
        self._new_id = new_id
        self._sessions: dict[str, MaintenanceSession] = {}
        self._workflows: dict[str, Workflow] = {}
        self._tasks: dict[str, asyncio.Task[MaintenanceSession]] = {}
        self.constraints = Constraints()

    # -- start and stop ------------------------------------------------------------------

    def load(
        self,
        sessions: Iterable[MaintenanceSession],
        instances: Iterable[InstanceConstraints] = (),
        groups: Iterable[GroupConstraints] = (),
    ) -> None:
        """What the store holds, at start."""
        self._sessions.update((s.id, s) for s in sessions)
        self.constraints.instances.update((c.instance_id, c) for c in instances)
        self.constraints.groups.update((c.group_id, c) for c in groups)

    async def resume(self) -> list[MaintenanceSession]:
        """Take up the sessions a stop, a crash or a takeover cut off, where they stood
        (:meth:`Workflow.resume`); end one that cannot be trusted (a host of it is gone, its actions no longer
        build) in MAINTENANCE_FAILED, rolled back. Return the sessions found open."""
        interrupted = [s for s in self._sessions.values() if not s.state.final]
        for session in interrupted:
            gone = [h for h in session.hosts if h not in session.host_progress or not self._has_host(h)]
            try:
                actions = build_actions(session.actions, self._plugins)
            except InvalidAction as exc:
                await self._workflow(session).abandon(f"interrupted by a restart; its actions no longer build: {exc}")
                continue
            if gone:
                await self._workflow(session).abandon(f"interrupted by a restart; host(s) gone: {', '.join(gone)}")
                continue
            log.info("maintenance session %s resumed at %s", session.id, session.state)
            self._start(session, self._workflow(session, actions=actions).resume())
        return interrupted

    async def aclose(self) -> None:
        """Stop every session under way where it stands, rolling nothing back: the next start (or the next
        leader) resumes it."""
        for ident, task in list(self._tasks.items()):
            self._workflows[ident].suspending()
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def _has_host(self, name: str) -> bool:
        try:
            self._cloud.map.host(name)
        except NotFound:
            return False
        return True

    def _start(self, session: MaintenanceSession, work: Coroutine[Any, Any, MaintenanceSession]) -> None:
        task = asyncio.create_task(work, name=f"vigil.maintenance.{session.id}")
        self._tasks[session.id] = task
        task.add_done_callback(lambda _: self._ended(session.id))

    # -- sessions --------------------------------------------------------------------------

    async def create(
        self,
        *,
        hosts: Sequence[str],
        maintenance_at: datetime | None = None,
        workflow: str = "default",
        metadata: Mapping[str, str] | None = None,
        actions: Sequence[Mapping[str, Any]] = (),
        reply_url_root: str = "",
    ) -> MaintenanceSession:
        """Open a session and start its workflow; empty ``hosts`` means every compute host.

        ``reply_url_root`` (the root the admin's request came to) goes into the
        messages' ``reply_url`` unless the service is configured with one."""
        if workflow not in WORKFLOWS:
            raise InvalidAction(f"unknown workflow {workflow!r}; known: {', '.join(WORKFLOWS)}")
        host_actions = build_actions(actions, self._plugins)
        names = list(dict.fromkeys(hosts)) or [h.name for h in self._cloud.map.hosts()]
        for name in names:
            try:
                self._cloud.map.host(name)
            except NotFound:
                raise InvalidAction(f"host {name!r} does not exist") from None
        busy = {h for s in self._sessions.values() if not s.state.final for h in s.hosts} & set(names)
        if busy:
            raise Conflict(f"host(s) {', '.join(sorted(busy))} are in another open maintenance session")
        now = self._clock()
        session = MaintenanceSession(
            id=SessionId(self._new_id()),
            hosts=names,
            state=SessionState.MAINTENANCE,
            maintenance_at=maintenance_at or now,
            created_at=now,
            updated_at=now,
            workflow=workflow,
            metadata=dict(metadata or {}),
            actions=[dict(a) for a in actions],
            host_progress={h: HostProgress(name=h) for h in names},
        )
        await self._records.save_records(session)
        self._sessions[session.id] = session
        self._start(session, self._workflow(session, reply_url_root, host_actions).run())
        return session

    def _workflow(
        self, session: MaintenanceSession, reply_url_root: str = "", actions: Sequence[HostAction] = ()
    ) -> Workflow:
        """The session's workflow; one only rolled back (``abandon``) needs no actions."""
        config = self.config
        if not config.reply_url_root and reply_url_root:
            config = replace(config, reply_url_root=reply_url_root)
        flow = Workflow(
            session,
            cloud=self._cloud,
            records=self._records,
            messenger=self._messenger,
            clock=self._clock,
            config=config,
            actions=actions,
            constraints=self.constraints,
        )
        self._workflows[session.id] = flow
        return flow

    def _ended(self, ident: str) -> None:
        self._tasks.pop(ident, None)
        self._workflows.pop(ident, None)

    def sessions(self) -> list[MaintenanceSession]:
        return sorted(self._sessions.values(), key=lambda s: s.created_at)

    def get(self, ident: str) -> MaintenanceSession:
        try:
            return self._sessions[ident]
        except KeyError:
            raise NotFound("maintenance session", ident) from None

    async def wait(self, ident: str) -> MaintenanceSession:
        """The session once its workflow has ended."""
        session = self.get(ident)
        task = self._tasks.get(ident)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        return session

    async def cancel(self, ident: str) -> MaintenanceSession | None:
        """Cancel an open session (rolled back, MAINTENANCE_FAILED); forget a finished one (None)."""
        session = self.get(ident)
        task = self._tasks.get(ident)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return session
        if not session.state.final:  # loaded but not resumed: roll back the same way
            await self._workflow(session).abandon("cancelled by the admin")
            return session
        del self._sessions[ident]
        await self._records.delete_records(session)
        return None

    def detail(self, ident: str) -> dict[str, Any]:
        """Hosts with their state, projects with their instances and replies, percent done."""
        session = self.get(ident)
        instances: list[dict[str, Any]] = []
        for host in session.hosts:
            try:
                on_host = self._cloud.map.instances_on(host)
            except DomainError:
                continue
            for inst in on_host:
                instances.append(
                    {"instance_id": inst.id, "project_id": inst.project, "host": inst.host, "state": str(inst.state)}
                )
        return {
            "session_id": session.id,
            "state": str(session.state),
            "reason": session.reason,
            "percent_done": session.percent_done,
            "migrations": session.migrations,
            "hosts": [
                {
                    "host": p.name,
                    "state": str(p.state),
                    "maintained": p.maintained,
                    "started_at": p.started_at,
                    "ended_at": p.ended_at,
                }
                for p in session.host_progress.values()
            ],
            "projects": [
                {
                    "project_id": p.project,
                    "state": str(p.state) if p.state else None,
                    "reply": p.reply,
                    "replied_at": p.replied_at,
                    "instance_ids": list(p.instance_ids),
                }
                for p in session.projects.values()
            ],
            "instances": instances,
        }

    # -- projects ----------------------------------------------------------------------------

    def project_instances(self, ident: str, project: str) -> list[str]:
        """The instances the session last named to ``project`` (Fenix's GET of a project)."""
        session = self.get(ident)
        progress = session.projects.get(project)
        if progress is None:
            raise NotFound("project in maintenance session", project)
        return list(progress.instance_ids)

    def reply(self, ident: str, project: str, state: str, instance_actions: Mapping[str, str]) -> Reply:
        """A project's ``ACK_<STATE>`` / ``NACK_<STATE>`` with its instance actions."""
        session = self.get(ident)
        try:
            kind, asked = parse_reply(state)
        except ValueError as exc:
            raise InvalidReply(str(exc)) from None
        actions: dict[str, InstanceAction] = {}
        for instance_id, action in instance_actions.items():
            try:
                actions[instance_id] = InstanceAction(action)
            except ValueError:
                raise InvalidReply(
                    f"instance action for {instance_id} is one of {', '.join(InstanceAction)}, not {action!r}"
                ) from None
        flow = self._workflows.get(ident)
        if flow is None or session.state.final:
            raise Conflict(f"maintenance session {ident} is {session.state}; it takes no replies")
        known = set(session.projects[project].instance_ids) if project in session.projects else set()
        unknown = sorted(set(actions) - known)
        if unknown:
            raise InvalidReply(f"instance(s) {', '.join(unknown)} are not in what project {project} was asked about")
        reply = Reply(kind=kind, state=asked, instance_actions=actions)
        flow.reply(project, reply)
        return reply

    # -- constraints -------------------------------------------------------------------------

    async def put_instance_constraints(self, constraints: InstanceConstraints) -> InstanceConstraints:
        self._cloud.map.instance(constraints.instance_id)
        await self._records.save_records(constraints)
        self.constraints.instances[constraints.instance_id] = constraints
        return constraints

    def instance_constraints(self, instance_id: str) -> InstanceConstraints:
        try:
            return self.constraints.instances[instance_id]
        except KeyError:
            raise NotFound("instance constraints", instance_id) from None

    async def delete_instance_constraints(self, instance_id: str) -> None:
        constraints = self.instance_constraints(instance_id)
        await self._records.delete_records(constraints)
        del self.constraints.instances[instance_id]

    async def put_group_constraints(self, constraints: GroupConstraints) -> GroupConstraints:
        if constraints.max_impacted_members < 0 or constraints.max_instances_per_host < 0:
            raise InvalidAction("max_impacted_members and max_instances_per_host are >= 0 (0: no limit)")
        self._cloud.map.group(constraints.group_id)
        await self._records.save_records(constraints)
        self.constraints.groups[constraints.group_id] = constraints
        return constraints

    def group_constraints(self, group_id: str) -> GroupConstraints:
        try:
            return self.constraints.groups[group_id]
        except KeyError:
            raise NotFound("instance group constraints", group_id) from None

    async def delete_group_constraints(self, group_id: str) -> None:
        constraints = self.group_constraints(group_id)
        await self._records.delete_records(constraints)
        del self.constraints.groups[group_id]
