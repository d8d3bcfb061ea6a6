"""Which of the VIM's services the fault actions cannot reach now, and the admins' ``vim.unreachable`` alarm.

The pusher (``vigil.vim.openstack.push``) asks a service (``compute``,
``network``, and ``identity`` for every call's token) for many idempotent
calls at once. When one finds the service away (no answer, or a 5xx:
:attr:`ApiError.unreachable <vigil.vim.openstack.session.ApiError.unreachable>`),
an :class:`Outage` begins, as the notifier's outbox handles a consumer that
is away:

* the call that found it becomes the probe: it alone tries again, with the
  retry policy's backoff, for as long as the outage lasts (no attempt budget:
  the actions are durable facts of Vigil's map, and giving up would leave
  Nova saying the opposite of the alarm its consumers were sent);
* every other call to that service waits for the probe, rather than each
  retrying on its own, so a Nova coming back is not met by the whole backlog
  at once in a storm of retries;
* admins get ``vim.unreachable`` for the service (through :class:`VimAlarms`,
  the notifier: durable, notified to admin subscribers, listed by GET
  /v1/alarms), once per outage;
* the first answer (any HTTP answer below 500, a 404 too: the service is
  there) ends it: the waiting calls go, and the alarm is cleared.

A failure of a call that began before the service last answered (a timeout
that outlived the outage) does not begin a new one. An alarm a restart found
open is an outage whose probe is the first call to come; the pusher sends one
(:meth:`Outages.restore`), so the alarm is cleared even when the map holds
nothing left to push.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)


class VimAlarms(Protocol):
    """Where outages are told (the notifier: ``vigil.notifier.service.Notifier``)."""

    async def vim_unreachable(self, service: str, endpoint: str | None, error: str) -> None: ...
    async def vim_reachable(self, service: str) -> None: ...
    def vim_unreachable_services(self) -> list[str]: ...


@dataclass
class Outage:
    """A service away since ``since`` (monotonic); ``back`` is set when it answers; ``probe`` the call that
    alone tries it meanwhile (None: the next one to come)."""

    since: float
    probe: object | None = None
    back: asyncio.Event = field(default_factory=asyncio.Event)


class Outages:
    def __init__(
        self,
        alarms: VimAlarms | None = None,
        endpoint: Callable[[str], str | None] = lambda service: None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._alarms = alarms
        self._endpoint = endpoint
        self._monotonic = monotonic
        self._open: dict[str, Outage] = {}
        self._answered: dict[str, float] = {}  # service -> when the last call it answered began

    def __contains__(self, service: str) -> bool:
        return service in self._open

    def restore(self) -> list[str]:
        """The services whose alarm a restart found open: each an outage again, to be probed."""
        services = [] if self._alarms is None else self._alarms.vim_unreachable_services()
        for service in services:
            self._open.setdefault(service, Outage(self._monotonic()))
        return services

    async def wait(self, services: Iterable[str], call: object) -> None:
        """Return when none of ``services`` is away, or when ``call`` probes (or now takes over probing) one that
        is. A probe never waits: two calls probing two outages (Keystone's and Nova's) never wait for each other."""
        while True:
            away = [self._open[s] for s in services if s in self._open]
            if not away or any(o.probe is call for o in away):
                return
            unprobed = [o for o in away if o.probe is None]
            for outage in unprobed:
                outage.probe = call
            if unprobed:
                return
            await away[0].back.wait()

    async def failed(self, service: str, error: str, began: float, call: object) -> bool:
        """``call``, begun at ``began`` (monotonic), found ``service`` away. True: ``call`` probes an outage (back
        off, then try again); False: try again at once (it waits for the probe, or the outage was already over)."""
        if began < self._answered.get(service, float("-inf")):
            return False  # the service answered a later call: this failure is older than its return
        outage = self._open.get(service)
        if outage is None:
            self._open[service] = Outage(self._monotonic(), probe=call)
            log.warning("the VIM's %s API cannot be reached: %s", service, error)
            if self._alarms is not None:
                try:
                    await self._alarms.vim_unreachable(service, self._endpoint(service), error)
                except Exception:  # the pushes go on; the alarm is raised by the next outage
                    log.exception("could not raise vim.unreachable for %s", service)
            return True
        if outage.probe is None:
            outage.probe = call
        return any(o.probe is call for o in self._open.values())

    def release(self, call: object) -> None:
        """``call`` ended without an answer to go by (it was given up): another call takes its probes over."""
        for outage in self._open.values():
            if outage.probe is call:
                outage.probe = None
                outage.back.set()  # wakes the waiting calls: the first to look takes the probe over
                outage.back = asyncio.Event()

    async def answered(self, services: Iterable[str], began: float) -> None:
        """A call begun at ``began`` got an answer from ``services``: any outage of theirs is over."""
        for service in services:
            self._answered[service] = max(began, self._answered.get(service, float("-inf")))
            outage = self._open.pop(service, None)
            if outage is None:
                continue
            outage.back.set()
            log.warning("the VIM's %s API answers again (away %.1f s)", service, self._monotonic() - outage.since)
            if self._alarms is not None:
                try:
                    await self._alarms.vim_reachable(service)
                except Exception:  # the alarm stays raised; the next outage's end clears it
                    log.exception("could not clear vim.unreachable for %s", service)
