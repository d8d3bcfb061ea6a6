"""NFVI maintenance: sessions, their states, project replies and constraints.

This is Doctor's maintenance use case in the shape OpenStack Fenix gives it.
An admin opens a :class:`MaintenanceSession` over a set of hosts; the
workflow (``vigil.maintenance``) walks it through :class:`SessionState`,
asks each affected project's app manager through messages (the
:class:`ProjectState` values) and waits for ``ACK_<STATE>`` or
``NACK_<STATE>`` within a reply window. Each host goes
enabled → going-to-maintenance → in-maintenance → enabled
(:class:`HostMaintenanceState`).

Fenix keeps these as bare strings moved by polling threads; here every
state machine is an enum with an explicit :class:`TransitionTable`, so a
step the workflow does not allow raises instead of drifting.

Constraints follow ETSI GS NFV-IFA 0xx FEAT03 as Fenix exposes them: per
instance (:class:`InstanceConstraints`) and per instance group
(:class:`GroupConstraints`). They are what the planner must honour.
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NewType

from vigil.domain.states import TransitionTable

SessionId = NewType("SessionId", str)


class SessionState(StrEnum):
    """Where a maintenance session is (Fenix's default workflow)."""

    MAINTENANCE = "MAINTENANCE"
    SCALE_IN = "SCALE_IN"
    PREPARE_MAINTENANCE = "PREPARE_MAINTENANCE"
    START_MAINTENANCE = "START_MAINTENANCE"
    PLANNED_MAINTENANCE = "PLANNED_MAINTENANCE"
    MAINTENANCE_COMPLETE = "MAINTENANCE_COMPLETE"
    MAINTENANCE_DONE = "MAINTENANCE_DONE"
    MAINTENANCE_FAILED = "MAINTENANCE_FAILED"

    @property
    def final(self) -> bool:
        return self in (SessionState.MAINTENANCE_DONE, SessionState.MAINTENANCE_FAILED)


_S = SessionState
_FAILED = {_S.MAINTENANCE_FAILED}
SESSION_TRANSITIONS: TransitionTable[SessionState] = TransitionTable(
    "maintenance session",
    {
        # Scaling in is asked only when no host can be emptied without it;
        # preparing only when no host to maintain is empty already.
        _S.MAINTENANCE: {_S.SCALE_IN, _S.PREPARE_MAINTENANCE, _S.START_MAINTENANCE, *_FAILED},
        _S.SCALE_IN: {_S.PREPARE_MAINTENANCE, _S.START_MAINTENANCE, *_FAILED},
        _S.PREPARE_MAINTENANCE: {_S.START_MAINTENANCE, *_FAILED},
        # With every host empty from the start there is nothing to plan.
        _S.START_MAINTENANCE: {_S.PLANNED_MAINTENANCE, _S.MAINTENANCE_COMPLETE, *_FAILED},
        _S.PLANNED_MAINTENANCE: {_S.MAINTENANCE_COMPLETE, *_FAILED},
        _S.MAINTENANCE_COMPLETE: {_S.MAINTENANCE_DONE, *_FAILED},
        _S.MAINTENANCE_DONE: set(),
        _S.MAINTENANCE_FAILED: set(),
    },
)


class ProjectState(StrEnum):
    """The messages a project's app manager receives (``state`` of the payload)."""

    MAINTENANCE = "MAINTENANCE"
    SCALE_IN = "SCALE_IN"
    PREPARE_MAINTENANCE = "PREPARE_MAINTENANCE"
    PLANNED_MAINTENANCE = "PLANNED_MAINTENANCE"
    MAINTENANCE_COMPLETE = "MAINTENANCE_COMPLETE"
    INSTANCE_ACTION_DONE = "INSTANCE_ACTION_DONE"
    # Not among Fenix's messages: a session that failed tells the projects it
    # had asked (with ``reason``), so an app that scaled in can scale back out.
    MAINTENANCE_FAILED = "MAINTENANCE_FAILED"

    @property
    def needs_reply(self) -> bool:
        """INSTANCE_ACTION_DONE and MAINTENANCE_FAILED are information; every
        other message waits for ACK or NACK."""
        return self not in (ProjectState.INSTANCE_ACTION_DONE, ProjectState.MAINTENANCE_FAILED)


class HostMessage(StrEnum):
    """The messages admin subscribers receive: about one host (``host`` in the
    payload), or that a session failed and was rolled back (``hosts`` and
    ``reason``)."""

    IN_MAINTENANCE = "IN_MAINTENANCE"
    MAINTENANCE_COMPLETE = "MAINTENANCE_COMPLETE"
    MAINTENANCE_FAILED = "MAINTENANCE_FAILED"


class HostMaintenanceState(StrEnum):
    ENABLED = "enabled"
    GOING_TO_MAINTENANCE = "going-to-maintenance"
    IN_MAINTENANCE = "in-maintenance"


_H = HostMaintenanceState
HOST_MAINTENANCE_TRANSITIONS: TransitionTable[HostMaintenanceState] = TransitionTable(
    "maintained host",
    {
        # Back to enabled from any state: that is the rollback of a failed session.
        _H.ENABLED: {_H.GOING_TO_MAINTENANCE},
        _H.GOING_TO_MAINTENANCE: {_H.IN_MAINTENANCE, _H.ENABLED},
        _H.IN_MAINTENANCE: {_H.ENABLED},
    },
)


class InstanceAction(StrEnum):
    """What a project asks Vigil to do with an instance of a host to be emptied.

    OWN_ACTION: the app manager moves or removes the instance itself (by a
    scale-in, a delete, or its own migration) before the host is maintained.
    """

    MIGRATE = "MIGRATE"
    LIVE_MIGRATE = "LIVE_MIGRATE"
    OWN_ACTION = "OWN_ACTION"


ALL_ACTIONS: tuple[InstanceAction, ...] = tuple(InstanceAction)


class ReplyKind(StrEnum):
    ACK = "ACK"
    NACK = "NACK"


@dataclass(frozen=True, slots=True)
class Reply:
    """A project's answer to one message: ``ACK_<STATE>`` or ``NACK_<STATE>``."""

    kind: ReplyKind
    state: ProjectState
    instance_actions: dict[str, InstanceAction] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return f"{self.kind}_{self.state}"


def parse_reply(text: str) -> tuple[ReplyKind, ProjectState]:
    """``"ACK_PLANNED_MAINTENANCE"`` → (ACK, PLANNED_MAINTENANCE); ValueError otherwise."""
    kind, _, state = text.partition("_")
    try:
        return ReplyKind(kind), ProjectState(state)
    except ValueError:
        raise ValueError(
            f"a reply is ACK_<STATE> or NACK_<STATE> with STATE one of {', '.join(ProjectState)}, not {text!r}"
        ) from None


@dataclass(slots=True)
class InstanceConstraints:
    """FEAT03 constraints of one instance (Fenix's ``/v1/instance/{id}``).

    ``max_interruption_time`` (s): the longest break the instance tolerates;
    a migration expected to take longer is not used for it.
    ``lead_time`` (s): how long before an action the app manager wants to hear.
    """

    instance_id: str
    project: str
    group_id: str | None = None
    max_interruption_time: float = 0.0
    migration_type: InstanceAction = InstanceAction.MIGRATE
    resource_mitigation: bool = False
    lead_time: float = 0.0

    @property
    def ident(self) -> str:
        return self.instance_id


@dataclass(slots=True)
class GroupConstraints:
    """FEAT03 constraints of an instance group (Fenix's ``/v1/instance_group/{id}``).

    ``max_impacted_members``: how many members may be moved or down at once;
    ``recovery_time`` (s): the pause after one member's action before the next.
    """

    group_id: str
    project: str
    anti_affinity_group: bool = False
    max_instances_per_host: int = 0  # 0: no limit
    max_impacted_members: int = 1
    recovery_time: float = 0.0

    @property
    def ident(self) -> str:
        return self.group_id


@dataclass(slots=True)
class ProjectProgress:
    """What the session last asked a project (about which ``host``, None for the whole session, and when), and what
    it answered, with the instance actions it chose: what a resumed session needs to go on waiting or moving."""

    project: str
    state: ProjectState | None = None
    reply: str | None = None
    replied_at: datetime | None = None
    instance_ids: list[str] = field(default_factory=list)
    asked_at: datetime | None = None
    host: str | None = None
    instance_actions: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class HostProgress:
    name: str
    state: HostMaintenanceState = HostMaintenanceState.ENABLED
    maintained: bool = False
    was_enabled: bool = True
    started_at: datetime | None = None
    ended_at: datetime | None = None


@dataclass(slots=True)
class MaintenanceSession:
    """One admin request to maintain hosts, and how far it has got.

    ``reason`` says why a session failed (or was cancelled). ``migrations``
    counts the migrations the session ran; ``actions`` names the per-host
    maintenance actions with their parameters (``[{"plugin": "upgrade",
    "duration_s": 5}]``).
    """

    id: SessionId
    hosts: list[str]
    state: SessionState
    maintenance_at: datetime
    created_at: datetime
    updated_at: datetime
    workflow: str = "default"
    metadata: dict[str, str] = field(default_factory=dict)
    actions: list[dict[str, object]] = field(default_factory=list)
    reason: str | None = None
    migrations: int = 0
    host_progress: dict[str, HostProgress] = field(default_factory=dict)
    projects: dict[str, ProjectProgress] = field(default_factory=dict)

    @property
    def ident(self) -> str:
        return self.id

    @property
    def percent_done(self) -> int:
        """Hosts maintained out of all, as a whole percentage (100 once done)."""
        if self.state is SessionState.MAINTENANCE_DONE:
            return 100
        if not self.host_progress:
            return 0
        done = sum(1 for h in self.host_progress.values() if h.maintained)
        return done * 100 // len(self.host_progress)


PROJECT_EVENT_TYPE = "maintenance.scheduled"
"""The event type of project messages (Fenix's); a subscription names it in its
``event_types`` filter to receive them."""

HOST_EVENT_TYPE = "maintenance.host"
"""The event type of host messages, for admin subscriptions that name it."""


@dataclass(frozen=True, slots=True)
class MaintenanceMessage:
    """One message of a session: to a project's app manager (``project`` set,
    ``event_type`` PROJECT_EVENT_TYPE) or to admins about a host (``project``
    None, HOST_EVENT_TYPE).

    ``payload`` is Fenix's: for a project ``{session_id, project_id,
    instance_ids, allowed_actions, state, actions_at, reply_at, reply_url,
    metadata}``; for a host ``{session_id, host, state}``. ``id`` is stable
    per (session, recipient, step), so a receiver can drop a repeat.
    """

    id: str
    event_type: str
    session_id: SessionId
    project: str | None
    payload: dict[str, object]
    created_at: datetime


@dataclass(slots=True)
class Constraints:
    """FEAT03 constraints by instance and by group (the maintenance service keeps them; the planner and the
    scheduler honour them)."""

    instances: dict[str, InstanceConstraints] = field(default_factory=dict)
    groups: dict[str, GroupConstraints] = field(default_factory=dict)
