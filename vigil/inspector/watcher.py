"""What the inspector does when resources change under it (Vitrage's do/undo).

:func:`watch` follows the controller's resource events on the bus:

* an instance leaving ERROR, or deleted, may end its server group's
  degradation: the degraded groups are evaluated again
  (:meth:`~vigil.inspector.inspector.Inspector.reevaluate_groups`);
* a host leaving maintenance gets the failures it suppressed meanwhile, if
  still down, journaled again and applied
  (:meth:`~vigil.inspector.intake.Intake.reapply_suppressed`).

Each is stamped with the time of the resource event that caused it.
"""

import logging
from collections.abc import AsyncIterable

from vigil.domain.events import EventAction, ResourceEvent
from vigil.domain.model import ResourceType
from vigil.domain.states import InstanceState
from vigil.inspector.intake import Intake

log = logging.getLogger(__name__)


async def watch(events: AsyncIterable[ResourceEvent], intake: Intake) -> None:
    async for event in events:
        try:
            if event.resource_type is ResourceType.HOST:
                if event.changes.get("in_maintenance", (None, None)) == (True, False):
                    await intake.reapply_suppressed(event.resource_id, event.time)
            elif event.resource_type is ResourceType.INSTANCE and _may_end_degradation(event):
                await intake.inspector.reevaluate_groups(event.time)
        except Exception:  # one bad reaction must not stop the watcher
            log.exception("reacting to %s of %s failed", event.event_type, event.resource_id)


def _may_end_degradation(event: ResourceEvent) -> bool:
    leaving_error = event.changes.get("state", (None, None))[0] == InstanceState.ERROR
    return leaving_error or event.action is EventAction.DELETED
