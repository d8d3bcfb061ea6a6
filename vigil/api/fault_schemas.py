"""Bodies of the fault-management API: southbound events, faults, alarms,
subscriptions and the delivery log.

The southbound event is Doctor's: ``{"time", "type", "details":
{"hostname", "status", "monitor", "monitor_event_id", "severity"?,
"cause"?, "related_to"?}}``, as Doctor's sample monitor sends it. Doctor's
requirements (05-implementation, "Fault event interface") name the monitor
``monitor_id`` and add ``source``, the reporter's display name, and make
``related_to`` an array of ids: those are taken too (``monitor`` defaults
to ``monitor_id``, then ``source``; an array ``related_to`` is kept joined
with commas). Vigil adds one optional detail, ``injected_at`` (Unix
seconds), for a fault injector that knows when it broke something (the
profiler's T00). A ``time`` without a zone is UTC.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vigil.api.storable import Moment, Number, StorableIn
from vigil.domain.alarms import AckState, AlarmKind, AlarmState, Lifecycle
from vigil.domain.callbacks import MAX_URL_LENGTH
from vigil.domain.deliveries import DeliveryState
from vigil.domain.faults import EventStatus, FaultState, Severity
from vigil.domain.maintenance import HOST_EVENT_TYPE, PROJECT_EVENT_TYPE
from vigil.domain.subscriptions import AuthType, PayloadFormat


class _In(StorableIn):
    """A request body: see :mod:`vigil.api.storable`."""


Name = Annotated[str, Field(min_length=1, max_length=255)]
RelatedId = Annotated[str, Field(max_length=255)]


class EventDetails(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "hostname": "compute-1",
                    "status": "down",
                    "monitor": "vigil-agent",
                    "monitor_event_id": "compute-1-1741944413-17",
                }
            ],
            # One of them names the monitor (a null names none).
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("monitor", "monitor_id", "source")
            ],
        }
    )

    hostname: Name = Field(description="The host the event is about (for a network.switch event, the switch).")
    status: EventStatus = Field(
        description="down (a failure) or up (a recovery); a type ending in .up is a recovery whatever this says."
    )
    monitor: Name | None = Field(
        None,
        description=(
            "The reporting monitor's name, e.g. vigil-agent. Required, unless monitor_id or source (the names "
            "Doctor's requirements give it) stands in for it."
        ),
    )
    monitor_id: Name | None = Field(
        None,
        description="Doctor's requirements: the ID of the monitor sending the event; the monitor if none is named.",
    )
    source: Name | None = Field(
        None,
        description=(
            "Doctor's requirements: the display name of the reporter; the monitor if neither monitor nor monitor_id "
            "is given."
        ),
    )
    monitor_event_id: Name = Field(
        description=("The monitor's own id of the event: a repeated (monitor, monitor_event_id, time) is a duplicate.")
    )
    severity: str | None = Field(
        None, max_length=64, description="The monitor's severity, recorded as given; Vigil's policy sets the fault's."
    )
    cause: str | None = Field(None, max_length=1024, description="What the monitor saw, in its words.")
    related_to: RelatedId | Annotated[list[RelatedId], Field(min_length=1, max_length=16)] | None = Field(
        None,
        description=(
            "What failed on the host, e.g. eth1: for a non-critical family, failures with different values "
            "count as distinct toward its threshold. Doctor's requirements make it an array of ids, also taken "
            "(one failure related to all of them)."
        ),
    )
    injected_at: Number | None = Field(
        None, description="Vigil extension: when the fault was injected (T00), in Unix seconds."
    )

    @model_validator(mode="after")
    def _a_monitor(self) -> "EventDetails":
        if self.monitor is None:
            self.monitor = self.monitor_id or self.source
        if self.monitor is None:
            raise ValueError("the event names no monitor: give monitor (or Doctor's monitor_id or source)")
        return self

    @property
    def reporter(self) -> str:
        """The monitor that reported the event (``monitor``, else ``monitor_id``, else ``source``)."""
        return self.monitor or self.monitor_id or self.source or ""

    @property
    def related(self) -> str | None:
        """``related_to`` as one string (an array's ids joined with commas)."""
        if isinstance(self.related_to, list):
            return ",".join(self.related_to)
        return self.related_to


class SouthboundEvent(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "time": "2026-03-14T09:26:53.589Z",
                    "type": "compute.host.down",
                    "details": {
                        "hostname": "compute-1",
                        "status": "down",
                        "monitor": "vigil-agent",
                        "monitor_event_id": "compute-1-1741944413-17",
                        "cause": "heartbeat lost",
                    },
                },
                {
                    "time": "2026-03-14T09:26:53",
                    "type": "compute.host.down",
                    "details": {
                        "hostname": "compute-1",
                        "source": "sample_monitor",
                        "cause": "link-down",
                        "severity": "critical",
                        "status": "down",
                        "monitor_id": "monitor-1",
                        "monitor_event_id": "123",
                    },
                },
                {
                    "time": "2026-03-14T09:31:02Z",
                    "type": "network.link.down",
                    "details": {
                        "hostname": "compute-2",
                        "status": "down",
                        "monitor": "vigil-agent",
                        "monitor_event_id": "compute-2-1741944600-3",
                        "related_to": "eth1",
                        "cause": "carrier lost",
                    },
                },
            ]
        }
    )

    time: Moment = Field(description="When the monitor detected it (the profiler's T01); UTC without a zone.")
    type: str = Field(
        min_length=3,
        max_length=128,
        examples=["compute.host.down"],
        description=(
            "<family>.down or <family>.up, for a family the server has a policy for (by default compute.host, "
            "network.switch, network.link and compute.process); any other is a 422 naming the known ones."
        ),
    )
    details: EventDetails = Field(description="What the event is about, its direction, and the monitor's ids.")


class EventOutcome(BaseModel):
    id: str = Field(description="Vigil's id of the event, as GET /v1/fault-events shows it.")
    type: str = Field(description="The event's type.")
    hostname: str = Field(description="The host or switch it named.")
    outcome: str = Field(
        description="What became of it: fault_opened, correlated, aggregated, duplicate, suppressed, fault_cleared, ..."
    )
    fault: str | None = Field(description="The fault it opened, joined or cleared, if any.")


class FaultOut(BaseModel):
    id: str = Field(description="The fault's id.")
    type: str = Field(description="The type of the event that opened it, e.g. compute.host.down.")
    resource_type: str = Field(description="host or switch.")
    resource_id: str = Field(description="The host's or switch's name.")
    severity: Severity = Field(description="Its severity.")
    state: FaultState = Field(description="ACTIVE or CLEARED.")
    opened_at: datetime = Field(description="When it opened.")
    cleared_at: datetime | None = Field(description="When it cleared, if it has.")
    events: list[str] = Field(description="Ids of the raw events that make it up.")
    hosts: list[str] = Field(description="The hosts it concerns.")
    instances: int = Field(description="How many instances it affected.")


class ProfileOut(BaseModel):
    fault: str = Field(description="The fault's id.")
    checkpoints: dict[str, float] = Field(description="Unix times in seconds.")
    ms_after_T01: dict[str, float] = Field(description="Each checkpoint in milliseconds after T01 (detection).")
    notification_ms: float | None = Field(description="T09 - T01: detection to the last consumer's receipt.")


class FaultEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str = Field(description="Vigil's id of the event.")
    time: datetime = Field(description="When the monitor detected it.")
    received_at: datetime = Field(description="When Vigil received it.")
    type: str = Field(description="Its type, e.g. compute.host.down.")
    hostname: str = Field(description="The host or switch it named.")
    status: EventStatus = Field(description="down or up.")
    monitor: str = Field(description="The monitor that reported it.")
    monitor_event_id: str = Field(description="The monitor's own id of it.")
    outcome: str = Field(
        description="What became of it: accepted, fault_opened, correlated, duplicate, unknown_host, ..."
    )
    fault: str | None = Field(description="The fault it went to, if any.")
    alarm: dict[str, str] = Field(
        description="The alarm as its monitor named and graded it (name, rawtext, severity: a Zabbix trigger's, a "
        "Prometheus alert's), what rule templates match; empty for Doctor's events."
    )


class AlarmOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str = Field(description="The alarm's id.")
    kind: AlarmKind = Field(description="What it is about: host.down, instance.down, server_group.degraded, ...")
    project: str | None = Field(description="The project it is for; none for an admin (infrastructure) alarm.")
    resource_type: str = Field(description="The type of the resource it is about.")
    resource_id: str = Field(description="The resource it is about.")
    resource_ids: list[str] = Field(description="The resources it affects.")
    severity: Severity = Field(description="Its severity.")
    state: AlarmState = Field(description="ACTIVE or CLEARED.")
    ack_state: AckState = Field(description="ACKNOWLEDGED once someone acknowledged it (PATCH), else UNACKNOWLEDGED.")
    fault: str = Field(description="The fault that raised it.")
    raised_at: datetime = Field(description="When it was raised.")
    changed_at: datetime = Field(description="When it last changed.")
    cleared_at: datetime | None = Field(description="When it cleared, if it has.")
    version: int = Field(description="Goes up with each update or clearing; deliveries name the version they carried.")
    reason: str = Field(description="What happened, in words.")
    details: dict[str, Any] = Field(description="More about it, by kind.")


class AlarmPatch(_In):
    """As ETSI SOL 003's alarm modification: only acknowledging is possible."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"ackState": "ACKNOWLEDGED"}]})

    ackState: Literal["ACKNOWLEDGED"] = Field(description="ACKNOWLEDGED, the one change an alarm takes.")


class MaintenanceEventType(StrEnum):
    """The event types of maintenance messages: a subscription names them to receive the messages."""

    SCHEDULED = PROJECT_EVENT_TYPE
    HOST = HOST_EVENT_TYPE


class FilterIn(_In):
    """Which alarms a subscription receives: every non-empty list must match; an empty one matches any."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "resource_ids": ["vnf-a-app-act", "vnf-a-app-stby"],
                    "event_types": ["instance.down"],
                    "severities": ["CRITICAL", "MAJOR"],
                }
            ]
        }
    )

    resource_ids: list[Name] = Field(
        default_factory=list,
        max_length=10_000,
        description=(
            "Alarms about these resources (the alarm's resource or one it affects). A member names only its "
            "project's instances, ports, server groups or the project itself; anything else is a 422."
        ),
    )
    resource_types: list[Name] = Field(
        default_factory=list,
        max_length=16,
        description="Alarms on these resource types: host, switch, instance, server_group or subscription.",
    )
    event_types: list[AlarmKind | MaintenanceEventType] = Field(
        default_factory=list,
        description=(
            "Alarm kinds, and the maintenance event types: maintenance.scheduled (a project's maintenance "
            "messages, Aodh format only) and maintenance.host (admins only). Maintenance messages reach "
            "only subscriptions that name their event type."
        ),
    )
    severities: list[Severity] = Field(
        default_factory=list,
        description="Alarms of these severities; an alarm's clearing is sent whatever its severity.",
    )
    lifecycles: list[Lifecycle] = Field(
        default_factory=list, description="These steps of an alarm's life: raised, updated, cleared."
    )


class BasicParams(_In):
    model_config = ConfigDict(json_schema_extra={"examples": [{"userName": "vigil", "password": "example-password"}]})

    userName: Name = Field(description="User name Vigil sends to the callbacks with HTTP Basic authentication.")
    password: Annotated[str, Field(min_length=1, max_length=255)] = Field(
        description="Its password: kept, and never shown back."
    )


class OAuth2Params(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "clientId": "vigil",
                    "clientPassword": "example-client-secret",
                    "tokenEndpoint": "https://vnfm.example.com/oauth2/token",
                }
            ]
        }
    )

    clientId: Name = Field(description="The OAuth 2.0 client id Vigil gets tokens with.")
    clientPassword: Annotated[str, Field(min_length=1, max_length=255)] = Field(
        description="The client's secret: kept, and never shown back."
    )
    tokenEndpoint: Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)] = Field(
        description="The token endpoint (client credentials grant); the callback policy applies to it as to callbacks."
    )


class AuthenticationIn(_In):
    """SOL 003's ``SubscriptionAuthentication``: how Vigil proves itself to the callback.

    One type: BASIC with ``paramsBasic``, or OAUTH2_CLIENT_CREDENTIALS with
    ``paramsOauth2ClientCredentials`` (Vigil gets a token from the endpoint
    and sends it as a Bearer token). Secrets are kept and never shown back."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"authType": ["BASIC"], "paramsBasic": {"userName": "vigil", "password": "example-password"}},
                {
                    "authType": ["OAUTH2_CLIENT_CREDENTIALS"],
                    "paramsOauth2ClientCredentials": {
                        "clientId": "vigil",
                        "clientPassword": "example-client-secret",
                        "tokenEndpoint": "https://vnfm.example.com/oauth2/token",
                    },
                },
            ],
            # The rule of _params below, for clients that build requests from the schema.
            "allOf": [
                {
                    "if": {"properties": {"authType": {"contains": {"const": kind}}}},
                    "then": {"required": [params], "properties": {params: {"type": "object"}}},  # not null
                }
                for kind, params in (
                    ("BASIC", "paramsBasic"),
                    ("OAUTH2_CLIENT_CREDENTIALS", "paramsOauth2ClientCredentials"),
                )
            ],
        }
    )

    authType: list[AuthType] = Field(
        min_length=1, max_length=1, description="Exactly one: BASIC or OAUTH2_CLIENT_CREDENTIALS."
    )
    paramsBasic: BasicParams | None = Field(None, description="User name and password; required with BASIC.")
    paramsOauth2ClientCredentials: OAuth2Params | None = Field(
        None, description="Client id, secret and token endpoint; required with OAUTH2_CLIENT_CREDENTIALS."
    )

    @model_validator(mode="after")
    def _params(self) -> "AuthenticationIn":
        wanted = self.authType[0]
        if wanted is AuthType.BASIC and self.paramsBasic is None:
            raise ValueError("BASIC needs paramsBasic")
        if wanted is AuthType.OAUTH2_CLIENT_CREDENTIALS and self.paramsOauth2ClientCredentials is None:
            raise ValueError("OAUTH2_CLIENT_CREDENTIALS needs paramsOauth2ClientCredentials")
        return self


class AuthenticationOut(BaseModel):
    """The authentication a subscription uses, without its secrets."""

    authType: list[AuthType] = Field(description="BASIC or OAUTH2_CLIENT_CREDENTIALS.")
    userName: str | None = Field(
        None, description="The user name (BASIC) or client id (OAuth 2.0); the secret is never shown."
    )
    tokenEndpoint: str | None = Field(None, description="The OAuth 2.0 token endpoint.")


CALLBACK_PATTERN = r"^[hH][tT][tT][pP][sS]?://[^\x00]*$"


class SubscriptionIn(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "vnf-a-vnfm",
                    "filter": {
                        "resource_ids": ["vnf-a-app-act", "vnf-a-app-stby"],
                        "event_types": ["instance.down", "server_group.degraded"],
                    },
                    "callbacks": ["https://vnfm.example.com/alarms"],
                    "format": "aodh",
                },
                {
                    "name": "vnf-a-sol003",
                    "filter": {"resource_types": ["instance"], "severities": ["CRITICAL"]},
                    "callbacks": ["https://vnfm.example.com/sol003/alarms"],
                    "format": "sol003",
                    "authentication": {
                        "authType": ["BASIC"],
                        "paramsBasic": {"userName": "vigil", "password": "example-password"},
                    },
                },
                {
                    "name": "vnf-a-maintenance",
                    "filter": {"event_types": ["maintenance.scheduled"]},
                    "callbacks": ["https://vnfm.example.com/maintenance"],
                },
            ]
        }
    )

    name: str = Field("", max_length=255, description="A name for the subscriber's own use.")
    filter: FilterIn = Field(
        default_factory=FilterIn,
        description="Which alarms (and maintenance messages) to receive; empty: all of the caller's alarms.",
    )
    callbacks: list[
        # The scheme's pattern is for the document only: the callback policy refuses the rest with its own words.
        Annotated[str, Field(min_length=8, max_length=MAX_URL_LENGTH, json_schema_extra={"pattern": CALLBACK_PATTERN})]
    ] = Field(
        min_length=1,
        max_length=10,
        description=(
            "http(s) URLs without credentials, reaching a globally routable address or one in "
            "notifier.allowed_callback_networks; at most notifier.max_callbacks_per_subscription of them."
        ),
    )
    format: PayloadFormat = Field(
        PayloadFormat.AODH,
        description=(
            "aodh: OpenStack Aodh's alarm notification (the default); sol003: ETSI SOL 003's alarm notifications, "
            "whose callbacks must each answer a GET with 204 when the subscription is made."
        ),
    )
    authentication: AuthenticationIn | None = Field(
        None, description="How Vigil authenticates to the callbacks (SOL 003's); none: no Authorization header."
    )


class SubscriptionOut(BaseModel):
    id: str = Field(description="The subscription's id.")
    name: str = Field(description="Its name.")
    project: str = Field(description="The project of the token that made it.")
    admin: bool = Field(description="Made by an admin: it hears every project's alarms.")
    filter: FilterIn = Field(description="Which alarms (and maintenance messages) it receives.")
    callbacks: list[str] = Field(description="The URLs notifications are sent to.")
    format: PayloadFormat = Field(description="aodh or sol003.")
    created_at: datetime = Field(description="When it was made.")
    authentication: AuthenticationOut | None = Field(
        None, description="How Vigil authenticates to the callbacks, without the secret."
    )


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str = Field(description="The delivery's id.")
    notification: str = Field(description="The notification's id: one per alarm change and subscription.")
    subscription: str = Field(description="The subscription it is for.")
    url: str = Field(description="The callback URL it goes to.")
    alarm: str = Field(description="The alarm it tells of.")
    alarm_version: int = Field(description="The alarm's version it carries.")
    lifecycle: Lifecycle = Field(description="raised, updated or cleared.")
    project: str | None = Field(description="The subscription's project; none for an admin's.")
    fault: str | None = Field(description="The fault behind the alarm, if any.")
    state: DeliveryState = Field(description="PENDING (being sent or retried), DELIVERED or FAILED (given up).")
    attempts: int = Field(description="How many times it was sent.")
    created_at: datetime = Field(description="When it was made.")
    next_attempt_at: datetime | None = Field(description="When it is tried next, while PENDING.")
    delivered_at: datetime | None = Field(description="When the callback took it.")
    last_status: int | None = Field(description="The HTTP status of the last attempt.")
    last_error: str | None = Field(description="What went wrong in the last attempt.")
    retry_since: datetime | None = Field(
        description="Start of the retry horizon (reset when it is sent again by an admin)."
    )


class RedeliveredOut(BaseModel):
    redelivered: int = Field(description="How many deliveries were sent again.")
    deliveries: list[str] = Field(description="Their ids.")
