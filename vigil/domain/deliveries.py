"""Deliveries: one notification on its way to one callback URL.

The notification id is stable (derived from the alarm, its version and the
subscription), so a consumer that receives the same notification twice,
after a retry or a restart, can tell. Each delivery keeps the rendered body,
so a retry sends exactly the same bytes. Deliveries are the notifier's
outbox: recorded PENDING in the same transaction as the alarm, resumed after
a restart, retried until delivered or refused (or given up after the retry
horizon, and then sent again when an admin asks: ``retry_since``), and kept
afterwards as the delivery log admins query.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NewType

from vigil.domain.alarms import AlarmId, Lifecycle
from vigil.domain.faults import FaultId
from vigil.domain.subscriptions import SubscriptionId

DeliveryId = NewType("DeliveryId", str)
NotificationId = NewType("NotificationId", str)

_NAMESPACE = uuid.UUID("0f6a3c1e-5d0b-4c8e-9a57-3c2b1d7e9f10")


class DeliveryState(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


def notification_id(alarm: str, version: int, subscription: str) -> NotificationId:
    """The same alarm version told to the same subscription has the same id."""
    return NotificationId(str(uuid.uuid5(_NAMESPACE, f"{alarm}/{version}/{subscription}")))


def delivery_id(notification: str, url: str) -> DeliveryId:
    return DeliveryId(str(uuid.uuid5(_NAMESPACE, f"{notification}->{url}")))


@dataclass(slots=True)
class Delivery:
    id: DeliveryId
    notification: NotificationId
    subscription: SubscriptionId
    url: str
    alarm: AlarmId
    alarm_version: int
    lifecycle: Lifecycle
    project: str | None
    fault: FaultId | None
    body: str
    state: DeliveryState
    created_at: datetime
    attempts: int = 0
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    retry_since: datetime | None = None  # when an admin asked to send it again (its retries' horizon starts there)

    @property
    def ident(self) -> str:
        return self.id
