"""Bodies of the fault-management API: southbound events, faults, alarms,
subscriptions and the delivery log.

The southbound event is Doctor's: ``{"time", "type", "details":
{"hostname", "status", "monitor", "monitor_event_id", "severity"?,
"cause"?, "related_to"?}}``. Vigil adds one optional detail,
``injected_at`` (Unix seconds), for a fault injector that knows when it
broke something (the profiler's T00). A ``time`` without a zone is UTC.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vigil.api.storable import StorableIn
from vigil.domain.alarms import AckState, AlarmKind, AlarmState, Lifecycle
from vigil.domain.callbacks import MAX_URL_LENGTH
from vigil.domain.deliveries import DeliveryState
from vigil.domain.faults import EventStatus, FaultState, Severity
from vigil.domain.maintenance import HOST_EVENT_TYPE, PROJECT_EVENT_TYPE
from vigil.domain.subscriptions import AuthType, PayloadFormat


class _In(StorableIn):
    """A request body: see :mod:`vigil.api.storable`."""


Name = Annotated[str, Field(min_length=1, max_length=255)]


class EventDetails(_In):
    hostname: Name
    status: EventStatus
    monitor: Name
    monitor_event_id: Name
    severity: str | None = Field(None, max_length=64)
    cause: str | None = Field(None, max_length=1024)
    related_to: str | None = Field(None, max_length=255)
    injected_at: float | None = Field(None, description="Vigil extension: when the fault was injected (T00).")


class SouthboundEvent(_In):
    time: datetime
    type: str = Field(min_length=3, max_length=128, examples=["compute.host.down"])
    details: EventDetails


class EventOutcome(BaseModel):
    id: str
    type: str
    hostname: str
    outcome: str
    fault: str | None


class FaultOut(BaseModel):
    id: str
    type: str
    resource_type: str
    resource_id: str
    severity: Severity
    state: FaultState
    opened_at: datetime
    cleared_at: datetime | None
    events: list[str]
    hosts: list[str]
    instances: int


class ProfileOut(BaseModel):
    fault: str
    checkpoints: dict[str, float] = Field(description="Unix times in seconds.")
    ms_after_T01: dict[str, float]
    notification_ms: float | None = Field(description="T09 - T01: detection to the last consumer's receipt.")


class FaultEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    time: datetime
    received_at: datetime
    type: str
    hostname: str
    status: EventStatus
    monitor: str
    monitor_event_id: str
    outcome: str
    fault: str | None


class AlarmOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    kind: AlarmKind
    project: str | None
    resource_type: str
    resource_id: str
    resource_ids: list[str]
    severity: Severity
    state: AlarmState
    ack_state: AckState
    fault: str
    raised_at: datetime
    changed_at: datetime
    cleared_at: datetime | None
    version: int
    reason: str
    details: dict[str, Any]


class AlarmPatch(_In):
    """As ETSI SOL 003's alarm modification: only acknowledging is possible."""

    ackState: Literal["ACKNOWLEDGED"]


class MaintenanceEventType(StrEnum):
    """The event types of maintenance messages: a subscription names them to receive the messages."""

    SCHEDULED = PROJECT_EVENT_TYPE
    HOST = HOST_EVENT_TYPE


class FilterIn(_In):
    resource_ids: list[Name] = Field(default_factory=list, max_length=10_000)
    resource_types: list[Name] = Field(default_factory=list, max_length=16)
    event_types: list[AlarmKind | MaintenanceEventType] = Field(
        default_factory=list,
        description=(
            "Alarm kinds, and the maintenance event types: maintenance.scheduled (a project's maintenance "
            "messages, Aodh format only) and maintenance.host (admins only). Maintenance messages reach "
            "only subscriptions that name their event type."
        ),
    )
    severities: list[Severity] = Field(default_factory=list)
    lifecycles: list[Lifecycle] = Field(default_factory=list)


class BasicParams(_In):
    userName: Name
    password: Annotated[str, Field(min_length=1, max_length=255)]


class OAuth2Params(_In):
    clientId: Name
    clientPassword: Annotated[str, Field(min_length=1, max_length=255)]
    tokenEndpoint: Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)]


class AuthenticationIn(_In):
    """SOL 003's ``SubscriptionAuthentication``: how Vigil proves itself to the callback.

    One type: BASIC with ``paramsBasic``, or OAUTH2_CLIENT_CREDENTIALS with
    ``paramsOauth2ClientCredentials`` (Vigil gets a token from the endpoint
    and sends it as a Bearer token). Secrets are kept and never shown back."""

    authType: list[AuthType] = Field(min_length=1, max_length=1)
    paramsBasic: BasicParams | None = None
    paramsOauth2ClientCredentials: OAuth2Params | None = None

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

    authType: list[AuthType]
    userName: str | None = None
    tokenEndpoint: str | None = None


class SubscriptionIn(_In):
    name: str = Field("", max_length=255)
    filter: FilterIn = Field(default_factory=FilterIn)
    callbacks: list[Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)]] = Field(
        min_length=1,
        max_length=10,
        description=(
            "http(s) URLs without credentials, reaching a globally routable address or one in "
            "notifier.allowed_callback_networks; at most notifier.max_callbacks_per_subscription of them."
        ),
    )
    format: PayloadFormat = PayloadFormat.AODH
    authentication: AuthenticationIn | None = None


class SubscriptionOut(BaseModel):
    id: str
    name: str
    project: str
    admin: bool
    filter: FilterIn
    callbacks: list[str]
    format: PayloadFormat
    created_at: datetime
    authentication: AuthenticationOut | None = None


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    notification: str
    subscription: str
    url: str
    alarm: str
    alarm_version: int
    lifecycle: Lifecycle
    project: str | None
    fault: str | None
    state: DeliveryState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None
    retry_since: datetime | None


class RedeliveredOut(BaseModel):
    redelivered: int
    deliveries: list[str]
