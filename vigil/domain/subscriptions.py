"""Subscriptions: who wants to hear about which alarms, where, and in what shape.

Doctor asks for a publish/subscribe model in which only a resource's owner
(or an admin) may subscribe to it, with a filter and several endpoints. A
member's subscription sees only its own project's alarms; an admin's sees
every alarm, including the infrastructure ones. :func:`matches` is the whole
rule, pure, so it is tested without a network.

Maintenance messages (:class:`~vigil.domain.maintenance.MaintenanceMessage`)
follow their own rule, :func:`matches_message`: a subscription hears of them
only by naming their event type, so one made for faults never receives a
maintenance payload.
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NewType

from vigil.domain.alarms import Alarm, Lifecycle
from vigil.domain.faults import Severity
from vigil.domain.maintenance import HOST_EVENT_TYPE, PROJECT_EVENT_TYPE, MaintenanceMessage

SubscriptionId = NewType("SubscriptionId", str)


class PayloadFormat(StrEnum):
    AODH = "aodh"
    SOL003 = "sol003"


@dataclass(slots=True)
class SubscriptionFilter:
    """Every non-empty list must match; empty means any.

    ``event_types`` holds alarm kinds and the maintenance event types
    (``MESSAGE_EVENT_TYPES``); the latter are never implied by an empty list.
    """

    resource_ids: list[str] = field(default_factory=list)
    resource_types: list[str] = field(default_factory=list)
    event_types: list[str] = field(default_factory=list)
    severities: list[Severity] = field(default_factory=list)
    lifecycles: list[Lifecycle] = field(default_factory=list)


class AuthType(StrEnum):
    """ETSI SOL 013's authentication types for notifications (SOL 003 uses them)."""

    BASIC = "BASIC"
    OAUTH2_CLIENT_CREDENTIALS = "OAUTH2_CLIENT_CREDENTIALS"


@dataclass(slots=True)
class Authentication:
    """How Vigil authenticates to a subscriber's callback: SOL 003's ``SubscriptionAuthentication``.

    BASIC sends ``user``/``secret`` as HTTP Basic; OAUTH2_CLIENT_CREDENTIALS
    gets a token from ``token_endpoint`` with ``user`` (client id) and
    ``secret`` (client password) and sends it as a Bearer token. The secret
    is kept in the store and never shown back.
    """

    type: AuthType
    user: str
    secret: str
    token_endpoint: str | None = None


@dataclass(slots=True)
class Subscription:
    id: SubscriptionId
    project: str
    admin: bool
    callbacks: list[str]
    format: PayloadFormat
    created_at: datetime
    filter: SubscriptionFilter = field(default_factory=SubscriptionFilter)
    name: str = ""
    authentication: Authentication | None = None

    @property
    def ident(self) -> str:
        return self.id


def matches(subscription: Subscription, alarm: Alarm, lifecycle: Lifecycle) -> bool:
    """Whether ``subscription`` is to be told that ``alarm`` went through ``lifecycle``."""
    if not subscription.admin and alarm.project != subscription.project:
        return False
    f = subscription.filter
    if f.lifecycles and lifecycle not in f.lifecycles:
        return False
    if f.event_types and alarm.kind not in f.event_types:
        return False
    if f.severities and alarm.severity not in f.severities and lifecycle is not Lifecycle.CLEARED:
        return False
    if f.resource_types and alarm.resource_type not in f.resource_types:
        return False
    if f.resource_ids:
        wanted = set(f.resource_ids)
        if alarm.resource_id not in wanted and wanted.isdisjoint(alarm.resource_ids):
            return False
    return True


MESSAGE_EVENT_TYPES: frozenset[str] = frozenset({PROJECT_EVENT_TYPE, HOST_EVENT_TYPE})
"""The event types of maintenance messages, which a filter must name to receive them."""


def matches_message(subscription: Subscription, message: MaintenanceMessage) -> bool:
    """Whether ``subscription`` is to receive the maintenance ``message``.

    Only an Aodh-format subscription whose ``event_types`` names the
    message's event type (an empty filter is not enough). A project's
    message goes to that project's subscriptions and to admins'; a message
    of no project (a host's) to admins' only. The other filter fields are
    about alarms and do not apply.
    """
    if subscription.format is not PayloadFormat.AODH:
        return False
    if message.event_type not in subscription.filter.event_types:
        return False
    if subscription.admin:
        return True
    return message.project is not None and message.project == subscription.project


def visible_resources(subscription: Subscription, alarm: Alarm) -> list[str]:
    """The alarm's affected resources this subscription asked about (all, without an id filter)."""
    if not subscription.filter.resource_ids:
        return list(alarm.resource_ids)
    wanted = set(subscription.filter.resource_ids)
    return [r for r in alarm.resource_ids if r in wanted]
