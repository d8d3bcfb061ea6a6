"""The in-process event bus.

``publish`` hands each event to every subscription's queue without waiting,
in the order given; a subscriber reads its queue at its own pace. A
subscription that is closed receives nothing more. Nothing here is durable:
the store's event log is the record, the bus only carries news.
"""

import asyncio
from collections.abc import AsyncIterator, Sequence

from vigil.domain.events import ResourceEvent


class Subscription:
    """One consumer's queue of events; iterate it with ``async for``."""

    def __init__(self, bus: "InProcessBus") -> None:
        self._bus = bus
        self.queue: asyncio.Queue[ResourceEvent] = asyncio.Queue()

    def __aiter__(self) -> AsyncIterator[ResourceEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ResourceEvent]:
        while True:
            yield await self.queue.get()

    def drain(self) -> list[ResourceEvent]:
        """Everything queued now, without waiting."""
        events = []
        while not self.queue.empty():
            events.append(self.queue.get_nowait())
        return events

    def close(self) -> None:
        self._bus.unsubscribe(self)


class InProcessBus:
    """Fans published events out to every open subscription."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []

    def subscribe(self) -> Subscription:
        subscription = Subscription(self)
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    async def publish(self, events: Sequence[ResourceEvent]) -> None:
        for subscription in list(self._subscriptions):
            for event in events:
                subscription.queue.put_nowait(event)
