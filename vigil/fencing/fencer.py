"""Fencing hosts through their fence agents: off, then a status that must read off.

An agent's ``off`` already waits for the power to go (``fence_ipmilan``
polls it), but its exit status is one program's word; the status asked
after it is the BMC's. Only that second answer confirms the fence, and only
a confirmed fence lets a host's instances be recovered (DESIGN.md, "Fencing
and recovery"). A host is fenced by one call at a time: a second fence of
the same host while one runs waits for it and takes its outcome, so a burst
of reports powers a BMC off once.
"""

import asyncio
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from vigil.domain.errors import NotLeader
from vigil.domain.fencing import FenceAction, FenceAnswer, FenceOutcome
from vigil.fencing.agents import FenceDevice, call_agent


class NoFenceDevice(LookupError):
    """The host has no fence device configured."""


class AgentFencer:
    """Fences the hosts of ``devices`` (by host name) with the agents found in ``search``."""

    def __init__(
        self, devices: Mapping[str, FenceDevice], search: Iterable[Path], *, acting: Callable[[], bool] | None = None
    ) -> None:
        self._devices = dict(devices)
        self._acting = acting  # with high availability: whether this process still leads (vigil.store.leader)
        self._search = list(search)
        self._running: dict[str, asyncio.Task[FenceOutcome]] = {}

    def configured(self, host: str) -> bool:
        return host in self._devices

    def devices(self) -> list[dict[str, object]]:
        """Every device as an operator may see it (no secret values)."""
        return [self._devices[host].described() for host in sorted(self._devices)]

    async def call(self, host: str, action: FenceAction) -> FenceAnswer:
        """One action of ``host``'s agent (``status`` and ``monitor`` to test a device; ``on`` to power a host
        back)."""
        device = self._devices.get(host)
        if device is None:
            raise NoFenceDevice(host)
        if self._acting is not None and not self._acting():
            raise NotLeader(f"not the leader: the {action} of {host} is the new leader's to do")
        return await call_agent(device, action, self._search)

    async def fence(self, host: str) -> FenceOutcome:
        """Power ``host`` off and read its power back; see :class:`FenceOutcome` for what confirms it."""
        if host not in self._devices:
            raise NoFenceDevice(host)
        running = self._running.get(host)
        if running is None:
            running = self._running[host] = asyncio.get_running_loop().create_task(
                self._fence(host), name=f"vigil.fencing.{host}"
            )
            running.add_done_callback(lambda _: self._running.pop(host, None))
        return await asyncio.shield(running)

    async def aclose(self) -> None:
        """Stop the fences under way, their agents killed (a waiter's own cancellation leaves a fence running for
        the others; this stops it for all)."""
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def _fence(self, host: str) -> FenceOutcome:
        off = await self.call(host, FenceAction.OFF)
        if not off.ok:
            return FenceOutcome(host, (off,))
        status = await self.call(host, FenceAction.STATUS)
        return FenceOutcome(host, (off, status))
