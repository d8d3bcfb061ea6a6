"""Nova's compute services by host: the UUID that ``PUT /os-services/{uuid}`` (2.53) names a service by.

Vigil names hosts; Nova's service API at 2.53 names services by UUID. Both
the fault pusher (``forced_down``) and the driver (disable, enable, force
down or up) need the UUID of a host's ``nova-compute``, so they share one
directory: every service learnt in one call at start, so a fault's first
push needs no lookup first, and a host seen later (a compute added) looked
up by itself when first named. A service's UUID does not change while the
service exists, so what is learnt is kept.
"""

import logging

from vigil.vim.openstack.session import ApiError, OpenStackSession

log = logging.getLogger(__name__)

SERVICES_MICROVERSION = "2.53"  # services named by UUID, and forced_down and disabled_reason in one PUT


class ComputeServices:
    """The UUID of each host's ``nova-compute`` service, learnt from Nova and kept."""

    def __init__(self, session: OpenStackSession) -> None:
        self._session = session
        self._uuids: dict[str, str] = {}

    async def load(self) -> None:
        """Learn every compute service's UUID in one call; a failure is logged (each is looked up when needed)."""
        try:
            found = await self._session.get(
                "compute", "/os-services", microversion=SERVICES_MICROVERSION, binary="nova-compute"
            )
        except ApiError as exc:
            log.warning("could not list Nova's compute services: %s", exc)
            return
        self._uuids.update({str(s["host"]): str(s["id"]) for s in found["services"]})

    async def uuid(self, host: str) -> str:
        """The UUID of ``host``'s compute service; ApiError (404) when Nova has none there."""
        if host not in self._uuids:
            found = await self._session.get(
                "compute", "/os-services", microversion=SERVICES_MICROVERSION, binary="nova-compute", host=host
            )
            services = found["services"]
            if not services:
                raise ApiError(f"Nova has no nova-compute service on {host}", status=404, service="compute")
            self._uuids[host] = str(services[0]["id"])
        return self._uuids[host]


__all__ = ["SERVICES_MICROVERSION", "ComputeServices"]
