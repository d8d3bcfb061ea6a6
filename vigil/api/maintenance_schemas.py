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

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, JsonValue

from vigil.api.storable import JSON_NUMBER, Flag, Moment, StorableIn
from vigil.domain.maintenance import InstanceAction, ProjectState, ReplyKind

Seconds = Annotated[float, Field(ge=0, le=86_400 * 30), JSON_NUMBER]


class _In(StorableIn):
    """A request body: see :mod:`vigil.api.storable`."""


class ActionIn(_In):
    """One per-host action of a session: the name the server's configuration gives it, and its parameters beside
    it (strings or numbers, as the action declares them). ``plugin`` is read as ``action`` for older clients.

    The parameters' types are the action's to check (:func:`vigil.maintenance.actions.build_actions`), which names
    the parameter and what it expects; the document states what any action may take."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{"action": "upgrade", "duration_s": 30}],
            "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "number"}]},
        },
    )
    __pydantic_extra__: dict[str, JsonValue] = Field(init=False)

    action: str = Field(
        min_length=1,
        max_length=255,
        validation_alias=AliasChoices("action", "plugin"),
        description="The action's name in maintenance.actions.",
    )


class SessionIn(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "hosts": ["compute-1", "compute-2"],
                    "state": "MAINTENANCE",
                    "maintenance_at": "2026-11-22T10:00:00Z",
                    "workflow": "default",
                    "metadata": {"reason": "firmware upgrade", "ticket": "CHG-1042"},
                    "actions": [{"action": "upgrade", "duration_s": 30}],
                }
            ]
        }
    )

    hosts: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(
        default_factory=list, max_length=10_000, description="The compute hosts to maintain; empty: every one."
    )
    state: Literal["MAINTENANCE"] = Field("MAINTENANCE", description="Fenix's request state: MAINTENANCE only.")
    maintenance_at: Moment | None = Field(
        None,
        description='When to start: ISO 8601 or Fenix\'s "2026-11-22 10:00:00", UTC when without a zone; none: now.',
    )
    workflow: str = Field("default", description="The workflow to run: default (Fenix's) is the only one.")
    metadata: dict[str, str] = Field(
        default_factory=dict, description="Free key-value data, passed on in the messages to the projects."
    )
    actions: list[ActionIn] = Field(
        default_factory=list,
        max_length=100,
        description=(
            "Per-host actions, run in order on each host once it is empty: each names an action the server "
            'configures (maintenance.actions) under "action", with its parameters beside it.'
        ),
    )


class SessionCreated(BaseModel):
    session_id: str = Field(description="The new session's id.")


class HostProgressOut(BaseModel):
    host: str = Field(description="The host's name.")
    state: str = Field(description="enabled, going-to-maintenance or in-maintenance.")
    maintained: bool = Field(description="Whether its maintenance is done.")
    started_at: datetime | None = Field(description="When its maintenance started.")
    ended_at: datetime | None = Field(description="When its maintenance ended.")


class ProjectProgressOut(BaseModel):
    project_id: str = Field(description="The project's id.")
    state: str | None = Field(description="What it was last asked (the state of the last message).")
    reply: str | None = Field(description="Its last reply, e.g. ACK_MAINTENANCE.")
    replied_at: datetime | None = Field(description="When it replied.")
    instance_ids: list[str] = Field(description="The instances the last message named.")


class SessionInstanceOut(BaseModel):
    instance_id: str = Field(description="The instance's id.")
    project_id: str = Field(description="Its project.")
    host: str | None = Field(description="The host it runs on now.")
    state: str = Field(description="Its state.")


class SessionOut(BaseModel):
    session_id: str = Field(description="The session's id.")
    state: str = Field(
        description="MAINTENANCE, SCALE_IN, PREPARE_MAINTENANCE, ... MAINTENANCE_DONE or MAINTENANCE_FAILED."
    )
    hosts: list[str] = Field(description="The hosts it maintains.")
    maintenance_at: datetime = Field(description="When it starts (or started).")
    created_at: datetime = Field(description="When it was made.")
    updated_at: datetime = Field(description="When its state last changed.")
    workflow: str = Field(description="Its workflow.")
    metadata: dict[str, str] = Field(description="The metadata it was given.")
    actions: list[dict[str, Any]] = Field(description="The per-host actions it runs, with their parameters.")
    reason: str | None = Field(description="Why it failed or was cancelled.")
    migrations: int = Field(description="How many migrations it ran.")
    percent_done: int = Field(description="Hosts maintained out of all, in percent (100 once done).")


class SessionDetailOut(BaseModel):
    session_id: str = Field(description="The session's id.")
    state: str = Field(description="Its state.")
    reason: str | None = Field(description="Why it failed or was cancelled.")
    percent_done: int = Field(description="Hosts maintained out of all, in percent (100 once done).")
    migrations: int = Field(description="How many migrations it ran.")
    hosts: list[HostProgressOut] = Field(description="Each host's progress.")
    projects: list[ProjectProgressOut] = Field(
        description="Each project involved: what it was last asked and its reply."
    )
    instances: list[SessionInstanceOut] = Field(description="The instances now on the session's hosts.")


class ProjectInstancesOut(BaseModel):
    instance_ids: list[str] = Field(description="The project's instances the session last named to it.")


REPLY_STATES: list[JsonValue] = [f"{kind}_{state}" for state in ProjectState for kind in ReplyKind]


class ReplyIn(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"state": "ACK_MAINTENANCE"},
                {
                    "state": "ACK_PLANNED_MAINTENANCE",
                    "instance_actions": {"vnf-a-app-stby": "MIGRATE", "vnf-a-app-act": "LIVE_MIGRATE"},
                },
            ]
        }
    )

    state: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        json_schema_extra={"enum": REPLY_STATES},
        description=(
            "ACK_<STATE> or NACK_<STATE>, STATE the one of the message answered (e.g. ACK_PLANNED_MAINTENANCE); "
            "a NACK fails the session."
        ),
    )
    instance_actions: dict[str, InstanceAction] = Field(
        default_factory=dict,
        max_length=10_000,
        description=(
            "For the instances the message named, by id: MIGRATE, LIVE_MIGRATE, or OWN_ACTION (the app manager "
            "moves or removes it itself). Unnamed ones get their constraints' migration_type (default MIGRATE)."
        ),
    )


class ReplyOut(BaseModel):
    session_id: str = Field(description="The session's id.")
    project_id: str = Field(description="The project's id.")
    state: str = Field(description="The reply as taken, e.g. ACK_PLANNED_MAINTENANCE.")
    instance_actions: dict[str, InstanceAction] = Field(description="The actions it chose, by instance id.")


class InstanceConstraintsIn(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "instance_id": "vnf-a-app-act",
                    "project_id": "vnf-a",
                    "group_id": "vnf-a-ha",
                    "instance_name": "app-act",
                    "max_interruption_time": 1.0,
                    "migration_type": "LIVE_MIGRATE",
                    "resource_mitigation": True,
                    "lead_time": 60.0,
                }
            ]
        }
    )

    instance_id: str | None = Field(None, description="If given, the path's instance id.")
    project_id: str | None = Field(None, description="If given, the instance's project.")
    group_id: str | None = Field(None, description="If given, the instance's server group (the group is always its).")
    instance_name: str | None = Field(None, description="Accepted, as Fenix's clients send it, and not kept.")
    max_interruption_time: Seconds = Field(
        0.0, description="FEAT03: the longest interruption the instance tolerates, in seconds (kept and shown)."
    )
    migration_type: InstanceAction = Field(
        InstanceAction.MIGRATE,
        description="How the instance leaves a host when its project's reply names no action for it.",
    )
    resource_mitigation: Flag = Field(False, description="FEAT03's resource mitigation flag (kept and shown).")
    lead_time: Seconds = Field(
        0.0, description="Seconds before an action on the instance that its app manager is to hear of it."
    )


class InstanceConstraintsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    instance_id: str = Field(description="The instance's id.")
    project_id: str = Field(description="Its project.")
    group_id: str | None = Field(description="Its server group, if any.")
    max_interruption_time: float = Field(description="The longest interruption it tolerates, in seconds.")
    migration_type: InstanceAction = Field(
        description="How it leaves a host when its project's reply names no action for it."
    )
    resource_mitigation: bool = Field(description="FEAT03's resource mitigation flag.")
    lead_time: float = Field(description="Seconds before an action on it that its app manager is to hear of it.")


class GroupConstraintsIn(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "group_id": "vnf-a-ha",
                    "project_id": "vnf-a",
                    "group_name": "app-ha",
                    "anti_affinity_group": True,
                    "max_instances_per_host": 1,
                    "max_impacted_members": 1,
                    "recovery_time": 30.0,
                }
            ]
        }
    )

    group_id: str | None = Field(None, description="If given, the path's group id.")
    project_id: str | None = Field(None, description="If given, the group's project.")
    group_name: str | None = Field(None, description="Accepted, as Fenix's clients send it, and not kept.")
    anti_affinity_group: Flag = Field(
        False, description="Members must stay on different hosts, whatever the server group's own policy."
    )
    max_instances_per_host: Annotated[int, Field(ge=0), JSON_NUMBER] = Field(
        0, description="At most this many members on one host when instances are moved; 0: no limit."
    )
    max_impacted_members: Annotated[int, Field(ge=0), JSON_NUMBER] = Field(
        1, description="At most this many members moved at once; 0: no limit."
    )
    recovery_time: Seconds = Field(
        0.0, description="Seconds to wait after a wave of moves that touched the group before the next."
    )


class GroupConstraintsOut(BaseModel):
    group_id: str = Field(description="The group's id.")
    project_id: str = Field(description="Its project.")
    anti_affinity_group: bool = Field(description="Members must stay on different hosts.")
    max_instances_per_host: int = Field(description="At most this many members on one host; 0: no limit.")
    max_impacted_members: int = Field(description="At most this many members moved at once; 0: no limit.")
    recovery_time: float = Field(
        description="Seconds to wait after a wave of moves that touched the group before the next."
    )
