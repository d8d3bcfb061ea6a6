"""The OpenStack driver: Vigil's VIM port sending each operation to Nova or Neutron, the map following Nova.

With ``vim.driver: openstack`` the cloud is Nova's: an admin's host disable,
a migration or a maintenance session must change Nova, not only Vigil's map.
:class:`OpenStackVim` meets :class:`vigil.controller.vim.Vim` (the API's
port) and :class:`vigil.maintenance.ports.Cloud` (the maintenance engine's)
by sending each operation to Nova or Neutron; the map then follows Nova
through the sync (:mod:`vigil.vim.openstack.sync`), which applies Nova's
notifications, so what the driver waits for is what everyone reads.

What is sent, and at which microversion (why that one):

* live migration: ``os-migrateLive`` at **2.30**, ``host`` (or null: Nova's
  scheduler chooses) and ``block_migration: "auto"`` (from 2.25: Nova
  chooses between shared storage and block migration, which an operator
  would otherwise have to know per host). 2.30 is the oldest microversion
  at which a named host is checked by the scheduler (placement, the server
  group's policy) instead of forced, since ``force`` is left out; and below
  2.34 Nova's API waits for the conductor's checks of the destination, so a
  host Nova will not take is refused at once (400, "No valid host was
  found") rather than found out after a 202;
* cold migration: ``migrate`` at **2.56** (the first that takes a ``host``),
  then, when Nova shows VERIFY_RESIZE, ``confirmResize``;
* evacuation: ``evacuate`` at **2.29** (``host`` checked by the scheduler
  unless forced, as for live migration; null: Nova chooses). Below 2.95,
  where an evacuated server comes back running, as Doctor's recovery wants;
* compute services: ``PUT /os-services/{uuid}`` at **2.53** (services named
  by UUID, looked up through :class:`~vigil.vim.openstack.services.ComputeServices`,
  shared with the fault pusher): ``status`` with ``disabled_reason``, or
  ``forced_down``; on a Nova without 2.53, the forms before it (``force-down``
  at 2.11, ``disable-log-reason``, ``enable``);
* ``os-resetState``, ``os-stop``, ``os-start``, ``DELETE /servers/{id}``
  (no microversion: their shape never changed);
* Neutron: ``PUT /v2.0/ports/{id}`` ``data_plane_status``.

How each ends:

* host and port settings and ``os-resetState`` are done when Nova answers;
  the driver then changes the map at once (through the embedded cloud's
  methods), so the API answers with the new state; the notification that
  follows agrees, and is older than that change, so the sync skips it;
* a migration puts the server MIGRATING in the map at once, stamped before
  the request left (every notification of the move is newer, so none is
  skipped), and returns an :class:`~vigil.controller.vim.Operation`; an
  evacuation returns one with the server as the map holds it;
* each ``done`` (and stop, start, delete, which wait) follows the server to
  its end: after each change the sync applies to it, and every ``check_s``
  without one, Nova's own view (``GET /servers/{id}``) is read. Nova
  decides failure (ERROR, or its task ended with the server still on its
  source: a refusal or a rollback), and success is Nova's end *and* the map
  showing it, so that whoever reads the map next (the maintenance planner)
  sees the server where Nova put it. If Nova still shows it ended a
  ``check_s`` after it first did and the map does not, the notification
  was lost or is late: the map takes Nova's read, by the sync's rules
  (:meth:`~vigil.vim.openstack.sync.NovaSync.observe`), rather than wait
  for the next reconciliation. ``timeout_s`` bounds it all.

Nova accepting an operation sets the server's task state before it
answers, so a server with no task state after the answer has ended
whatever was asked: that is what makes Nova's word on failure sound.

``boot`` is refused (409): on OpenStack a tenant boots through Nova with its
own credentials, so the server belongs to its project; Vigil's credentials
are scoped to Vigil's project, and the image is Glance's to choose, which
Vigil's API does not name. The map shows a server booted through Nova
within a second (the sync). Settings Nova does not have stay in Vigil's map,
through the embedded cloud: ``set_host_maintenance`` (the inspector's
suppression while a host is maintained), ``set_group_alarm_threshold`` and
``set_host_reachable``.

A refusal (4xx) becomes the domain error the API answers with Nova's
message (:mod:`vigil.vim.openstack.refusals`).
"""

import asyncio
import enum
import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from vigil.controller.cloud import EmbeddedCloud
from vigil.controller.ports import Clock
from vigil.controller.resource_map import ResourceMap
from vigil.controller.transactions import Transactions
from vigil.controller.vim import Operation
from vigil.domain.errors import Conflict, NotFound, VimFailed
from vigil.domain.model import Host, Instance, Port, ServerGroup
from vigil.domain.states import RESETTABLE_STATES, DataPlaneStatus, InstanceState
from vigil.vim.openstack.inventory import instance_state
from vigil.vim.openstack.refusals import refusal
from vigil.vim.openstack.services import ComputeServices
from vigil.vim.openstack.session import ApiError, OpenStackSession

log = logging.getLogger(__name__)

LIVE_MIGRATION_MICROVERSION = "2.30"
COLD_MIGRATION_MICROVERSION = "2.56"
EVACUATE_MICROVERSION = "2.29"
DISABLED_REASON_CHARS = 255  # Nova's column


class OperationFailed(Conflict):
    """Nova ended an operation without doing it (ERROR, a refusal after it was accepted, a rollback, the server
    deleted meanwhile), or it did not end within the driver's timeout."""


class BootThroughNova(Conflict):
    """Vigil does not boot servers on OpenStack (see the module's docstring)."""


class MapFollower(Protocol):
    """The sync, as the driver waits on it (:meth:`vigil.vim.openstack.sync.NovaSync.wait_until`)."""

    async def wait_until(self, condition: Callable[[], bool], timeout_s: float) -> bool: ...
    async def observe(self, ident: str, host: str | None, status: str, reason: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class DriverTimings:
    """``timeout_s``: an operation not ended by then fails. ``check_s``: Nova is asked directly after this long
    without a change from the sync. ``confirm_poll_s``: how often while a cold migration's server is on its new
    host and Nova is finishing it, a step the map cannot show (RESIZE and VERIFY_RESIZE are both MIGRATING)."""

    timeout_s: float = 600.0
    check_s: float = 5.0
    confirm_poll_s: float = 0.25


@dataclass(frozen=True, slots=True)
class Server:
    """Nova's view of a server, as far as following an operation needs it."""

    status: str
    task_state: str | None
    host: str | None
    fault: str | None

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> "Server":
        fault = body.get("fault")
        return cls(
            status=str(body.get("status", "")),
            task_state=body.get("OS-EXT-STS:task_state"),
            host=body.get("OS-EXT-SRV-ATTR:host"),
            fault=str(fault.get("message")) if isinstance(fault, Mapping) and fault.get("message") else None,
        )

    def __str__(self) -> str:
        return f"{self.status} on {self.host}" + (f", task {self.task_state}" if self.task_state else "")


class Step(enum.Enum):
    """What Nova's view says of an operation: still under way (look again after the next change, or soon), ended
    (done once the map shows it), or at VERIFY_RESIZE (confirm it)."""

    WAIT = "wait"
    WAIT_SOON = "wait soon"
    ENDED = "ended"
    CONFIRM = "confirm"


Judge = Callable[[Server | None], Step]  # raises OperationFailed for a failure
_GONE = object()
_MOVABLE = (InstanceState.ACTIVE, InstanceState.SHUTOFF)  # the states a migration leaves from, in Vigil's table
_SETTLED = (*_MOVABLE, InstanceState.ERROR)


class OpenStackVim:
    """The OpenStack VIM driver: operations to Nova and Neutron, Vigil's own settings to the embedded cloud."""

    def __init__(
        self,
        embedded: EmbeddedCloud,
        session: OpenStackSession,
        sync: MapFollower,
        services: ComputeServices,
        *,
        timings: DriverTimings = DriverTimings(),
    ) -> None:
        self._embedded = embedded
        self._session = session
        self._sync = sync
        self._services = services
        self.timings = timings
        self._tasks: set[asyncio.Task[Instance]] = set()

    @property
    def map(self) -> ResourceMap:
        return self._embedded.map

    @property
    def clock(self) -> Clock:
        return self._embedded.clock

    @property
    def transactions(self) -> Transactions:
        return self._embedded.transactions

    async def aclose(self) -> None:
        """Stop following the operations under way (Nova goes on with them; the sync keeps the map)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- instances -------------------------------------------------------------------------------------------

    async def boot(
        self,
        *,
        name: str,
        project: str,
        vcpus: int = 1,
        group: str | None = None,
        metadata: Mapping[str, str] | None = None,
        host: str | None = None,
        networks: Iterable[str] = ("data",),
    ) -> Operation:
        raise BootThroughNova(
            "this Vigil fronts OpenStack (vim.driver: openstack): boot servers through Nova with the project's own "
            "credentials, so they belong to the project (Vigil's credentials are its own project's, and the image "
            "is the project's to choose); Vigil's map shows them within a second"
        )

    async def delete(self, instance_id: str) -> None:
        """``DELETE /servers/{id}``; returns when Nova has deleted it and the map no longer has it."""
        inst = self.map.instance(instance_id)
        deadline = self._deadline()
        await self._nova("DELETE", f"/servers/{inst.id}", f"delete server {inst.id}", ident=inst.id)

        def judge(server: Server | None) -> Step:
            if server is None or server.status == "DELETED":
                return Step.ENDED
            if server.task_state is None:
                raise OperationFailed(f"Nova did not delete server {inst.id}: it is {server}{_fault(server)}")
            return Step.WAIT

        await self._follow(inst.id, f"the deletion of server {inst.id}", deadline, judge)

    async def migrate(self, instance_id: str, *, target: str | None = None, live: bool = False) -> Operation:
        """Live (``os-migrateLive``) or cold (``migrate``, then ``confirmResize``) migration; ``done`` resolves
        to the instance on its new host, in the state it left (ACTIVE, or SHUTOFF for a cold one)."""
        inst = self.map.instance(instance_id)
        if target is not None:
            self.map.host(target)  # a host Vigil does not know is a 404, as with the embedded cloud
        source, previous = inst.host, inst.state
        kind = "live-migrate" if live else "migrate"
        deadline = self._deadline()
        started = self.clock()
        if live:
            body: dict[str, Any] = {"os-migrateLive": {"host": target, "block_migration": "auto"}}
            microversion = LIVE_MIGRATION_MICROVERSION
        else:
            body = {"migrate": {"host": target} if target is not None else None}
            microversion = COLD_MIGRATION_MICROVERSION
        doing = f"{kind} server {inst.id}" + (f" to {target}" if target else "")
        await self._nova(
            "POST", f"/servers/{inst.id}/action", doing, ident=inst.id, microversion=microversion, json=body
        )
        # Stamped before the request left: every notification of this move is newer, so the sync applies it.
        changes = self.transactions.begin(kind, now=started)
        if self._current(inst) and inst.host == source and inst.state is previous and previous in _MOVABLE:
            changes.update(inst, state=InstanceState.MIGRATING, migrating_to=target)
            await self.transactions.commit(changes)
        judge = _moved_judge(source) if live else self._cold_judge(inst.id, source)
        return self._spawn(kind, inst, self._finish_move(inst.id, kind, deadline, judge))

    async def evacuate(self, instance_id: str, *, target: str | None = None) -> Operation:
        """Nova's ``evacuate`` off a host whose compute is down (Nova refuses otherwise, 400); ``target`` None
        lets Nova's scheduler choose. ``done`` resolves when the server runs on another host, rebuilt."""
        inst = self.map.instance(instance_id)
        if target is not None:
            self.map.host(target)
        source = inst.host
        deadline = self._deadline()
        body = {"evacuate": {"host": target} if target is not None else {}}
        doing = f"evacuate server {inst.id}" + (f" to {target}" if target else "")
        await self._nova(
            "POST", f"/servers/{inst.id}/action", doing, ident=inst.id, microversion=EVACUATE_MICROVERSION, json=body
        )
        return self._spawn("evacuate", inst, self._finish_move(inst.id, "evacuate", deadline, _moved_judge(source)))

    async def stop(self, instance_id: str) -> Instance:
        """``os-stop``; returns when Nova and the map show it SHUTOFF."""
        return await self._power(instance_id, "os-stop", "stop", "SHUTOFF")

    async def start(self, instance_id: str) -> Instance:
        """``os-start``; returns when Nova and the map show it ACTIVE."""
        return await self._power(instance_id, "os-start", "start", "ACTIVE")

    async def reset_state(self, instance_id: str, state: InstanceState, *, reason: str | None = None) -> Instance:
        """``os-resetState`` (ACTIVE or ERROR), then the map at once: Nova sets it before it answers."""
        inst = self.map.instance(instance_id)
        if state not in RESETTABLE_STATES:
            allowed = ", ".join(sorted(RESETTABLE_STATES))
            raise Conflict(f"reset-state sets only {allowed}, not {state}")
        body = {"os-resetState": {"state": state.lower()}}
        await self._nova(
            "POST", f"/servers/{inst.id}/action", f"reset server {inst.id} to {state}", ident=inst.id, json=body
        )
        if self._current(inst):
            changes = self.transactions.begin(reason or "reset-state")
            changes.update(inst, state=state, migrating_to=None)  # Nova's reset also ends the task under way
            await self.transactions.commit(changes)
        return inst

    # -- hosts and ports -------------------------------------------------------------------------------------

    async def set_host_enabled(self, host: str, enabled: bool, *, reason: str | None = None) -> Host:
        """The compute service enabled, or disabled with ``reason`` as its ``disabled_reason``; then the map."""
        self.map.host(host)
        body: dict[str, Any] = {"status": "enabled" if enabled else "disabled"}
        if not enabled and reason:
            body["disabled_reason"] = reason[:DISABLED_REASON_CHARS]
        await self._service(host, body, f"{'enable' if enabled else 'disable'} the compute service of {host}")
        return await self._embedded.set_host_enabled(host, enabled, reason=reason)

    async def set_host_forced_down(self, host: str, forced_down: bool, *, reason: str | None = None) -> Host:
        """The compute service forced down (Nova's ``host_status`` DOWN, evacuation allowed) or up; then the map.
        Nova refuses to force a host up while evacuation records remain on it (400), until its compute restarts."""
        self.map.host(host)
        doing = f"force the compute service of {host} {'down' if forced_down else 'up'}"
        await self._service(host, {"forced_down": forced_down}, doing)
        return await self._embedded.set_host_forced_down(host, forced_down, reason=reason)

    async def set_host_maintenance(self, host: str, in_maintenance: bool, *, reason: str | None = None) -> Host:
        """Vigil's own flag (the inspector suppresses fault actions on the host): the map only."""
        return await self._embedded.set_host_maintenance(host, in_maintenance, reason=reason)

    async def set_host_reachable(self, host: str, reachable: bool, *, reason: str | None = None) -> Host:
        """Liveness is Vigil's monitors' to say, never Nova's: the map only."""
        return await self._embedded.set_host_reachable(host, reachable, reason=reason)

    async def set_group_alarm_threshold(self, group: str, threshold: int) -> ServerGroup:
        """Vigil's own setting on a server group: the map only."""
        return await self._embedded.set_group_alarm_threshold(group, threshold)

    async def set_port_status(self, port_id: str, status: DataPlaneStatus, *, reason: str | None = None) -> Port:
        """Neutron's ``data_plane_status`` of the port, then the map."""
        self.map.port(port_id)
        body = {"port": {"data_plane_status": str(status)}}
        doing = f"set port {port_id}'s data_plane_status {status}"
        try:
            await self._session.request("network", "PUT", f"/v2.0/ports/{port_id}", json=body)
        except ApiError as exc:
            raise refusal(exc, doing, kind="port", ident=port_id) from exc
        return await self._embedded.set_port_status(port_id, status, reason=reason)

    # -- calls -----------------------------------------------------------------------------------------------

    async def _nova(
        self,
        method: str,
        path: str,
        doing: str,
        *,
        ident: str = "",
        microversion: str | None = None,
        json: Any = None,
    ) -> None:
        try:
            await self._session.request("compute", method, path, microversion=microversion, json=json)
        except ApiError as exc:
            raise refusal(exc, doing, kind="server", ident=ident) from exc

    async def _service(self, host: str, body: dict[str, Any], doing: str) -> None:
        try:
            await self._services.update(host, body)
        except ApiError as exc:
            raise refusal(exc, doing, kind="compute service", ident=host) from exc

    async def _server(self, ident: str) -> Server | None:
        """Nova's view of the server; None once it is gone."""
        try:
            found = await self._session.get("compute", f"/servers/{ident}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise refusal(exc, f"show server {ident}", kind="server", ident=ident) from exc
        return Server.of(found["server"])

    # -- following an operation to its end -----------------------------------------------------------------

    async def _power(self, instance_id: str, action: str, kind: str, status: str) -> Instance:
        inst = self.map.instance(instance_id)
        deadline = self._deadline()
        await self._nova(
            "POST", f"/servers/{inst.id}/action", f"{kind} server {inst.id}", ident=inst.id, json={action: None}
        )

        def judge(server: Server | None) -> Step:
            if server is None:
                raise OperationFailed(f"server {inst.id} was deleted before it could {kind}")
            if server.task_state is not None:
                return Step.WAIT
            if server.status != status:
                raise OperationFailed(f"Nova did not {kind} server {inst.id}: it is {server}{_fault(server)}")
            return Step.ENDED

        found = await self._follow(inst.id, f"{kind} of server {inst.id}", deadline, judge)
        assert found is not None  # ENDED with the server there, and the map agreeing
        return found

    async def _finish_move(self, ident: str, kind: str, deadline: float, judge: Judge) -> Instance:
        what = f"{kind} of server {ident}"
        try:
            found = await self._follow(ident, what, deadline, judge)
        except OperationFailed:
            await self._settle_provisional(ident)
            raise
        assert found is not None
        return found

    async def _follow(self, ident: str, what: str, deadline: float, judge: Judge) -> Instance | None:
        """Until Nova has ended the operation and the map shows the server as Nova does (None: gone from both).
        Nova is asked after each change the sync applies to the server, and every ``check_s`` without one. If
        Nova still shows it ended, and the map does not, a ``check_s`` after Nova first did, its notification
        was lost or is late: the map takes Nova's read (the sync's rules), rather than wait for the next
        reconciliation."""
        loop = asyncio.get_running_loop()
        ended_at: float | None = None  # when Nova was first seen to have ended it, the map not agreeing
        while True:
            view = self._view(ident)
            try:
                server = await self._server(ident)
            except VimFailed as exc:  # Nova away for a moment: the sync may still tell, and Nova is asked again
                log.warning("following %s: %s", what, exc)
                step, seen = Step.WAIT, "not answering"
            else:
                try:
                    step, seen = judge(server), "gone" if server is None else str(server)
                except OperationFailed as exc:
                    raise OperationFailed(f"{what}: {exc}") from None
                if step is Step.ENDED and self._agrees(ident, server):
                    return self._find(ident)
                if step is Step.ENDED and server is not None:
                    if ended_at is None:
                        ended_at = loop.time()
                    elif loop.time() - ended_at >= self.timings.check_s:
                        log.warning("%s ended in Nova with no notification saying so: the map takes Nova's read", what)
                        await self._sync.observe(ident, server.host, server.status, f"nova read: {what}")
                        ended_at = loop.time()  # at most once a check_s, whatever the map made of it
                if step is Step.CONFIRM:
                    await self._confirm(ident)
                    continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise OperationFailed(f"{what} did not end within {self.timings.timeout_s:g} s (Nova: {seen})")
            within = self.timings.confirm_poll_s if step is Step.WAIT_SOON else self.timings.check_s
            await self._changed(ident, view, min(within, remaining))

    async def _changed(self, ident: str, view: object, within_s: float) -> None:
        """Wait until the sync changes what the map says of the server, or ``within_s``."""
        await self._sync.wait_until(lambda: self._view(ident) != view, within_s)

    def _cold_judge(self, ident: str, source: str | None) -> Judge:
        confirmed = False

        def judge(server: Server | None) -> Step:
            nonlocal confirmed
            if server is not None and server.status == "VERIFY_RESIZE":
                if confirmed:
                    return Step.WAIT_SOON  # confirmed: Nova's compute is finishing it
                confirmed = True
                return Step.CONFIRM
            step = _moved_judge(source)(server)
            inst = self._find(ident)
            if step is Step.WAIT and inst is not None and inst.host != source:
                return Step.WAIT_SOON  # on the new host in the map: VERIFY_RESIZE is near, and the map cannot show it
            return step

        return judge

    async def _confirm(self, ident: str) -> None:
        try:
            await self._session.request("compute", "POST", f"/servers/{ident}/action", json={"confirmResize": None})
        except ApiError as exc:
            if exc.status != 409:  # 409: no longer VERIFY_RESIZE (confirmed meanwhile): Nova's view tells
                raise refusal(exc, f"confirm the migration of server {ident}", kind="server", ident=ident) from exc

    async def _settle_provisional(self, ident: str) -> None:
        """A failed migration: if the map still shows the MIGRATING this driver wrote (Nova's notifications of the
        failure were applied before it), put the server back as Nova shows it."""
        inst = self._find(ident)
        if inst is None or inst.state is not InstanceState.MIGRATING:
            return
        try:
            server = await self._server(ident)
        except VimFailed:
            return
        if server is None or server.task_state is not None or server.host != inst.host:
            return  # still under way, or moved: the sync's to tell
        state = instance_state(server.status)
        if state not in _SETTLED:
            return
        changes = self.transactions.begin("migration failed")
        changes.update(inst, state=state, migrating_to=None)
        await self.transactions.commit(changes)

    # -- the map ---------------------------------------------------------------------------------------------

    def _find(self, ident: str) -> Instance | None:
        try:
            return self.map.instance(ident)
        except NotFound:
            return None

    def _current(self, inst: Instance) -> bool:
        return self._find(inst.id) is inst

    def _view(self, ident: str) -> object:
        """What the map says of the server, to tell whether the sync changed it."""
        inst = self._find(ident)
        return _GONE if inst is None else (inst.host, inst.state, inst.migrating_to)

    def _agrees(self, ident: str, server: Server | None) -> bool:
        inst = self._find(ident)
        if server is None or server.status == "DELETED":
            return inst is None
        return (
            inst is not None
            and inst.host == server.host
            and inst.migrating_to is None
            and inst.state is instance_state(server.status)
        )

    # -- tasks -----------------------------------------------------------------------------------------------

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.timings.timeout_s

    def _spawn(self, kind: str, inst: Instance, work: Coroutine[Any, Any, Instance]) -> Operation:
        task = asyncio.create_task(work, name=f"vigil.vim.openstack.{kind}.{inst.id}")
        self._tasks.add(task)
        task.add_done_callback(self._ended)
        return Operation(instance=inst, done=task)

    def _ended(self, task: asyncio.Task[Instance]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("%s: %s", task.get_name(), exc)


def _moved_judge(source: str | None) -> Judge:
    """A move (live migration, evacuation) ends when Nova's task does, on another host; ERROR or an end on the
    source host is a failure."""

    def judge(server: Server | None) -> Step:
        if server is None:
            raise OperationFailed("the server was deleted during the move")
        if server.status == "ERROR":
            raise OperationFailed(f"Nova put the server in ERROR{_fault(server)}")
        if server.task_state is not None:
            return Step.WAIT
        if server.host == source:
            raise OperationFailed(
                f"Nova ended it with the server still on {source}, {server.status} (refused or rolled back: "
                "Nova's instance actions say why)"
            )
        return Step.ENDED

    return judge


def _fault(server: Server) -> str:
    return f": {server.fault}" if server.fault else ""


__all__ = [
    "COLD_MIGRATION_MICROVERSION",
    "EVACUATE_MICROVERSION",
    "LIVE_MIGRATION_MICROVERSION",
    "BootThroughNova",
    "DriverTimings",
    "OpenStackVim",
    "OperationFailed",
]
