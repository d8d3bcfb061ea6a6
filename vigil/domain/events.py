"""Resource state-change events.

Every change the controller makes to a resource is recorded as one
:class:`ResourceEvent`: persisted with the change in the same transaction,
then published on the bus in ``seq`` order. The notifier and the inspector
consume them; an operator can read them back from the store.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from vigil.domain.ids import ProjectId
from vigil.domain.model import ResourceType


class EventAction(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class ResourceEvent:
    """One change of one resource.

    ``changes`` maps each changed field to ``(old, new)`` as JSON values;
    ``reason`` says why (the operation or fault that caused it).
    """

    seq: int
    time: datetime
    resource_type: ResourceType
    resource_id: str
    action: EventAction
    changes: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    project: ProjectId | None = None
    reason: str | None = None

    @property
    def event_type(self) -> str:
        """E.g. ``instance.updated``: what subscribers filter on."""
        return f"{self.resource_type}.{self.action}"
