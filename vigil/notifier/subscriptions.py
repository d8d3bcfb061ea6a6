"""The subscription registry: which subscriptions hear of an alarm.

Tenant subscriptions are indexed by project and admin ones kept apart, so
matching an alarm costs the subscriptions of its project plus the admins',
not every subscription (a rack failure raises one alarm per project: with
200 projects a full scan would be 40,000 checks).
"""

from collections.abc import Iterable

from vigil.domain.alarms import Alarm, Lifecycle
from vigil.domain.errors import NotFound
from vigil.domain.maintenance import MaintenanceMessage
from vigil.domain.subscriptions import Subscription, SubscriptionId, matches, matches_message


class SubscriptionRegistry:
    def __init__(self) -> None:
        self._all: dict[SubscriptionId, Subscription] = {}
        self._by_project: dict[str, dict[SubscriptionId, Subscription]] = {}
        self._admin: dict[SubscriptionId, Subscription] = {}

    def load(self, subscriptions: Iterable[Subscription]) -> None:
        for subscription in subscriptions:
            self.add(subscription)

    def add(self, subscription: Subscription) -> None:
        self._all[subscription.id] = subscription
        if subscription.admin:
            self._admin[subscription.id] = subscription
        else:
            self._by_project.setdefault(subscription.project, {})[subscription.id] = subscription

    def remove(self, ident: str) -> Subscription:
        subscription = self.get(ident)
        del self._all[subscription.id]
        self._admin.pop(subscription.id, None)
        self._by_project.get(subscription.project, {}).pop(subscription.id, None)
        return subscription

    def get(self, ident: str) -> Subscription:
        try:
            return self._all[SubscriptionId(ident)]
        except KeyError:
            raise NotFound("subscription", ident) from None

    def of_project(self, project: str | None = None) -> list[Subscription]:
        """All subscriptions, or those ``project`` created."""
        return [s for s in self._all.values() if project is None or s.project == project]

    def matching(self, alarm: Alarm, lifecycle: Lifecycle) -> list[Subscription]:
        return [s for s in self._candidates(alarm.project) if matches(s, alarm, lifecycle)]

    def matching_message(self, message: MaintenanceMessage) -> list[Subscription]:
        """The subscriptions to receive a maintenance message (``matches_message``)."""
        return [s for s in self._candidates(message.project) if matches_message(s, message)]

    def _candidates(self, project: str | None) -> list[Subscription]:
        """The admins' subscriptions and ``project``'s: the only ones that may match."""
        candidates = list(self._admin.values())
        if project is not None:
            candidates.extend(self._by_project.get(project, {}).values())
        return candidates

    def __len__(self) -> int:
        return len(self._all)
