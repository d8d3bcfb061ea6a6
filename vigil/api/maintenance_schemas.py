"""Bodies of the maintenance API, in OpenStack Fenix's shapes.

A session is ``{"hosts", "state": "MAINTENANCE", "maintenance_at",
"workflow", "metadata", "actions"?}``; ``maintenance_at`` takes ISO 8601 or
Fenix's ``"2026-11-22 10:00:00"``, UTC when it has no zone. A project's
reply is ``{"state": "ACK_<STATE>" | "NACK_<STATE>", "instance_actions":
{id: "MIGRATE" | "LIVE_MIGRATE" | "OWN_ACTION"}}``. Constraints are ETSI
FEAT03's as Fenix stores them; the ids in a body, if given, must match the
path; ``instance_name`` and ``group_name`` are accepted, as Fenix's clients
send them, and not kept (the resource map has the names).
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vigil.api.storable import StorableIn
from vigil.domain.maintenance import InstanceAction

Seconds = Annotated[float, Field(ge=0, le=86_400 * 30)]


class _In(StorableIn):
    """A request body: see :mod:`vigil.api.storable`."""


class SessionIn(_In):
    hosts: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(default_factory=list, max_length=10_000)
    state: Literal["MAINTENANCE"] = "MAINTENANCE"
    maintenance_at: datetime | None = None
    workflow: str = "default"
    metadata: dict[str, str] = Field(default_factory=dict)
    actions: list[dict[str, Any]] = Field(default_factory=list, max_length=100)


class SessionCreated(BaseModel):
    session_id: str


class HostProgressOut(BaseModel):
    host: str
    state: str
    maintained: bool
    started_at: datetime | None
    ended_at: datetime | None


class ProjectProgressOut(BaseModel):
    project_id: str
    state: str | None
    reply: str | None
    replied_at: datetime | None
    instance_ids: list[str]


class SessionInstanceOut(BaseModel):
    instance_id: str
    project_id: str
    host: str | None
    state: str


class SessionOut(BaseModel):
    session_id: str
    state: str
    hosts: list[str]
    maintenance_at: datetime
    created_at: datetime
    updated_at: datetime
    workflow: str
    metadata: dict[str, str]
    actions: list[dict[str, Any]]
    reason: str | None
    migrations: int
    percent_done: int


class SessionDetailOut(BaseModel):
    session_id: str
    state: str
    reason: str | None
    percent_done: int
    migrations: int
    hosts: list[HostProgressOut]
    projects: list[ProjectProgressOut]
    instances: list[SessionInstanceOut]


class ProjectInstancesOut(BaseModel):
    instance_ids: list[str]


class ReplyIn(_In):
    state: Annotated[str, Field(min_length=1, max_length=64)]
    instance_actions: dict[str, InstanceAction] = Field(default_factory=dict, max_length=10_000)


class ReplyOut(BaseModel):
    session_id: str
    project_id: str
    state: str
    instance_actions: dict[str, InstanceAction]


class InstanceConstraintsIn(_In):
    instance_id: str | None = None
    project_id: str | None = None
    group_id: str | None = None
    instance_name: str | None = None
    max_interruption_time: Seconds = 0.0
    migration_type: InstanceAction = InstanceAction.MIGRATE
    resource_mitigation: bool = False
    lead_time: Seconds = 0.0


class InstanceConstraintsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    instance_id: str
    project_id: str
    group_id: str | None
    max_interruption_time: float
    migration_type: InstanceAction
    resource_mitigation: bool
    lead_time: float


class GroupConstraintsIn(_In):
    group_id: str | None = None
    project_id: str | None = None
    group_name: str | None = None
    anti_affinity_group: bool = False
    max_instances_per_host: Annotated[int, Field(ge=0)] = 0
    max_impacted_members: Annotated[int, Field(ge=0)] = 1
    recovery_time: Seconds = 0.0


class GroupConstraintsOut(BaseModel):
    group_id: str
    project_id: str
    anti_affinity_group: bool
    max_instances_per_host: int
    max_impacted_members: int
    recovery_time: float
