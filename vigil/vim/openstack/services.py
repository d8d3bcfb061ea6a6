"""Nova's compute services by host: the calls that disable, enable and force a host's ``nova-compute``.

Vigil names hosts; Nova's service API at 2.53 names services by UUID. Both
the fault pusher (``forced_down``) and the driver (disable, enable, force
down or up) change a host's ``nova-compute``, so they share one directory:
every service's UUID learnt in one call at start, so a fault's first push
needs no lookup first, and a host seen later (a compute added) looked up by
itself when first named. A UUID changes only when the service is deleted and
registered again (a compute reinstalled): a 404 for a learnt UUID makes the
directory look the host up again, once.

A Nova that does not speak 2.53 (older than Pike, or behind a proxy that
caps microversions) answers it 406. The directory then uses the forms
before it, which name the service by host and binary: ``PUT
/os-services/force-down`` at **2.11** for ``forced_down``, and
``/disable-log-reason`` and ``/enable`` for the status; it remembers that
Nova's answer and uses them from then on.
"""

import logging
from typing import Any

from vigil.vim.openstack.session import ApiError, OpenStackSession

log = logging.getLogger(__name__)

SERVICES_MICROVERSION = "2.53"  # services named by UUID, and forced_down and disabled_reason in one PUT
FORCE_DOWN_MICROVERSION = "2.11"  # the first with forced_down, by host and binary (the form before 2.53)
BINARY = "nova-compute"
UNSUPPORTED_VERSION = 406  # Nova's answer to a microversion it does not have


class ComputeServices:
    """Changes to each host's ``nova-compute`` service, and the UUIDs they are sent to (learnt from Nova)."""

    def __init__(self, session: OpenStackSession) -> None:
        self._session = session
        self._uuids: dict[str, str] = {}
        self.before_2_53 = False  # set when Nova answered 2.53 with 406: the older forms from then on

    async def load(self) -> None:
        """Learn every compute service's UUID in one call; a failure is logged (each is looked up when needed)."""
        try:
            found = await self._session.get(
                "compute", "/os-services", microversion=SERVICES_MICROVERSION, binary=BINARY
            )
        except ApiError as exc:
            self._older(exc)
            log.warning("could not list Nova's compute services: %s", exc)
            return
        self._uuids.update({str(s["host"]): str(s["id"]) for s in found["services"]})

    async def uuid(self, host: str) -> str:
        """The UUID of ``host``'s compute service; ApiError (404) when Nova has none there."""
        if host not in self._uuids:
            found = await self._session.get(
                "compute", "/os-services", microversion=SERVICES_MICROVERSION, binary=BINARY, host=host
            )
            services = found["services"]
            if not services:
                raise ApiError(f"Nova has no {BINARY} service on {host}", status=404, service="compute")
            self._uuids[host] = str(services[0]["id"])
        return self._uuids[host]

    async def update(self, host: str, body: dict[str, Any]) -> None:
        """Set ``status`` (with ``disabled_reason``) and/or ``forced_down`` of ``host``'s compute service, in
        the 2.53 form, or in the forms before it on a Nova without 2.53. ApiError as Nova answered."""
        if not self.before_2_53:
            try:
                await self._by_uuid(host, body)
                return
            except ApiError as exc:
                if not self._older(exc):
                    raise
        await self._by_host(host, body)

    async def _by_uuid(self, host: str, body: dict[str, Any]) -> None:
        for attempt in (1, 2):
            uuid = await self.uuid(host)
            try:
                await self._session.request(
                    "compute", "PUT", f"/os-services/{uuid}", microversion=SERVICES_MICROVERSION, json=body
                )
                return
            except ApiError as exc:
                if exc.status != 404 or attempt == 2:
                    raise
                log.info("Nova has no compute service %s for %s any more: looking it up again", uuid, host)
                self._uuids.pop(host, None)  # registered again under a new UUID, or gone (the lookup says)

    async def _by_host(self, host: str, body: dict[str, Any]) -> None:
        named = {"host": host, "binary": BINARY}
        if "forced_down" in body:
            await self._session.request(
                "compute",
                "PUT",
                "/os-services/force-down",
                microversion=FORCE_DOWN_MICROVERSION,
                json={**named, "forced_down": bool(body["forced_down"])},
            )
        if body.get("status") == "enabled":
            await self._session.request("compute", "PUT", "/os-services/enable", json=named)
        elif body.get("status") == "disabled":
            reason = body.get("disabled_reason")
            if reason:
                await self._session.request(
                    "compute", "PUT", "/os-services/disable-log-reason", json={**named, "disabled_reason": reason}
                )
            else:
                await self._session.request("compute", "PUT", "/os-services/disable", json=named)

    def _older(self, exc: ApiError) -> bool:
        """Whether Nova refused 2.53 itself (406): then it is a Nova before it, and stays one."""
        if exc.status != UNSUPPORTED_VERSION:
            return False
        if not self.before_2_53:
            log.warning(
                "Nova does not take microversion %s (%s): using the forms before it", SERVICES_MICROVERSION, exc
            )
        self.before_2_53 = True
        return True


__all__ = ["SERVICES_MICROVERSION", "ComputeServices"]
