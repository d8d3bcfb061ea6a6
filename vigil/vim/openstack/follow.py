"""Following Nova while Vigil runs: the notification consumer, the bus follower and the reconciliation loop.

One object for the wiring to start and stop, so ``vigil serve`` with the
OpenStack driver keeps its map true to Nova (:mod:`vigil.vim.openstack.sync`)
without knowing the parts:

* at start, one reconciliation first: what happened while Vigil was down
  is in Nova's inventory, and the notifications queued meanwhile are older
  than that read, so they are skipped as stale rather than replayed over it;
* the consumer of Nova's versioned notifications, connected in the
  background: a broker that is away at start is retried, not fatal, since
  the reconciliation keeps the map right meanwhile;
* Vigil's own committed changes, so older notifications are known stale;
* a reconciliation every ``reconcile_interval_s``.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from vigil.bus.memory import Subscription
from vigil.controller.transactions import Transactions
from vigil.vim.openstack.consumer import NotificationConsumer
from vigil.vim.openstack.pending import PendingPushes
from vigil.vim.openstack.session import OpenStackSession
from vigil.vim.openstack.sync import NovaSync

log = logging.getLogger(__name__)

CONNECT_RETRY_S = 2.0


@dataclass(frozen=True)
class FollowConfig:
    """Where Nova's notifications are (no URL: reconciliation only) and how often to reconcile."""

    notifications_url: str | None = None
    exchange: str = "nova"
    queue: str = "versioned_notifications.info"
    reconcile_interval_s: float = 60.0

    def __repr__(self) -> str:  # the URL holds the broker's password
        return f"FollowConfig(queue={self.queue!r}, reconcile_interval_s={self.reconcile_interval_s})"


class NovaFollower:
    """Starts and stops what keeps the map following Nova."""

    def __init__(
        self,
        transactions: Transactions,
        session: OpenStackSession,
        config: FollowConfig,
        feed: Subscription,
        clock: Callable[[], datetime],
        pending: PendingPushes | None = None,
    ) -> None:
        self.sync = NovaSync(transactions, session, clock, pending)
        self._config = config
        self._feed = feed
        self._tasks: list[asyncio.Task[None]] = []
        self.consumer: NotificationConsumer | None = None

    async def start(self) -> None:
        """Reconcile once (what the map holds is as of the read, so a notification queued before it is known
        stale), then consume and reconcile in the background."""
        self._tasks.append(asyncio.create_task(self.sync.follow(self._feed.queue), name="vigil.vim.openstack.fresh"))
        try:
            await self.sync.reconcile()
        except Exception:  # Nova away at start: the loop tries again; the map is the store's meanwhile
            log.exception("reconciliation with Nova at start failed")
        config = self._config
        if config.notifications_url is not None:
            self.consumer = NotificationConsumer(
                config.notifications_url, self.sync.apply, queue=config.queue, exchange=config.exchange
            )
            self._tasks.append(asyncio.create_task(self._consume(self.consumer), name="vigil.vim.openstack.consume"))
        self._tasks.append(
            asyncio.create_task(
                self.sync.run_reconciliation(config.reconcile_interval_s), name="vigil.vim.openstack.reconcile"
            )
        )

    def state(self) -> dict[str, Any]:
        """How well the map follows Nova, for ``GET /v1/vim``: the consumer's counters (none without a
        notifications URL) and the sync's."""
        notifications: dict[str, Any] | None = None
        if self.consumer is not None:
            notifications = asdict(self.consumer.stats)
            received = notifications["last_received_at"]
            notifications["last_received_at"] = None if received is None else datetime.fromtimestamp(received, UTC)
        return {
            "driver": "openstack",
            "notifications": notifications,
            "sync": asdict(self.sync.stats),
        }

    @staticmethod
    async def _consume(consumer: NotificationConsumer) -> None:
        """Connect, retrying until the broker answers; once connected the client reconnects by itself."""
        while True:
            try:
                await consumer.start()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the URL holds a password: only the error is logged
                log.warning("cannot consume Nova's notifications yet (%s); retrying", type(exc).__name__)
                await asyncio.sleep(CONNECT_RETRY_S)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.consumer is not None:
            await self.consumer.aclose()
        self._feed.close()
