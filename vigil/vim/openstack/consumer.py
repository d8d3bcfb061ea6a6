"""The consumer of Nova's versioned notifications: RabbitMQ's queue to Vigil's callback, nothing lost.

Why it is built this way:

* ``aio_pika.connect_robust``: the connection, channel, queue and consumer
  come back by themselves after a broker restart or a dropped socket; the
  consumer does not need its own reconnect loop.
* The queue is Nova's: oslo.messaging declares ``versioned_notifications.info``
  (on the service's vhost, bound to exchange ``nova`` with that routing
  key) non-durable, not auto-delete, with no arguments, as seen with
  ``rabbitmqctl list_queues name durable auto_delete arguments``. The
  consumer declares it identically (``durable`` follows oslo's
  ``amqp_durable_queues``, off by default), so it does not conflict and can
  start before Nova has ever published; if the broker refuses (a deployment
  whose queue differs), it falls back to a passive declaration.
* A message is acked only after the callback returns, so a crash between
  receipt and the map's update redelivers it; the prefetch bounds how many
  are in flight unacknowledged.
* A malformed body, or a notification Vigil ignores, is acked (redelivery
  would not fix it) and counted; a callback that raises is counted and the
  message is requeued once, then dropped, so one poisonous change cannot
  wedge the queue.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aio_pika
import aiormq
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel, AbstractRobustConnection

from vigil.vim.openstack.notifications import Change, MalformedNotification, parse

QUEUE = "versioned_notifications.info"
EXCHANGE = "nova"
PREFETCH = 64

log = logging.getLogger(__name__)

Callback = Callable[[Change], Awaitable[object]]


@dataclass
class ConsumerStats:
    """What the consumer has seen: each message counts in received, then in exactly one of the others."""

    received: int = 0
    applied: int = 0
    ignored: int = 0
    malformed: int = 0
    failed: int = 0
    last_error: str | None = None
    last_received_at: float | None = None
    connected: bool = False  # consuming now (the client reconnects by itself after a broker restart)
    backlog_at_start: int | None = None  # messages already queued when consuming began: the start-up's catch-up


class NotificationConsumer:
    """Consumes Nova's versioned notifications from ``amqp_url`` and hands each parsed change to ``callback``."""

    def __init__(
        self,
        amqp_url: str,
        callback: Callback,
        *,
        queue: str = QUEUE,
        exchange: str = EXCHANGE,
        durable: bool = False,
        prefetch: int = PREFETCH,
        reconnect_interval_s: float = 1.0,
    ) -> None:
        self._url = amqp_url
        self._callback = callback
        self._queue_name = queue
        self._exchange = exchange
        self._durable = durable
        self._prefetch = prefetch
        self._reconnect_interval_s = reconnect_interval_s
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self.stats = ConsumerStats()

    def __repr__(self) -> str:  # the URL holds the broker's password
        return f"NotificationConsumer(queue={self._queue_name!r}, stats={self.stats!r})"

    async def start(self) -> None:
        """Connect, declare the queue as Nova does, and start consuming."""
        self._connection = connection = await aio_pika.connect_robust(
            self._url, reconnect_interval=self._reconnect_interval_s
        )
        connection.close_callbacks.add(self._lost)
        connection.reconnect_callbacks.add(self._back)
        try:
            self._queue = await self._declare()
            self.stats.backlog_at_start = self._queue.declaration_result.message_count
            self._tag = await self._queue.consume(self._on_message)
            self.stats.connected = True
        except BaseException:
            await self.aclose()
            raise

    def _lost(self, *_: object) -> None:
        self.stats.connected = False

    def _back(self, *_: object) -> None:
        self.stats.connected = True

    async def _declare(self) -> AbstractQueue:
        assert self._connection is not None
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        try:
            exchange = await channel.declare_exchange(
                self._exchange, aio_pika.ExchangeType.TOPIC, durable=self._durable, auto_delete=False
            )
            queue = await channel.declare_queue(self._queue_name, durable=self._durable, auto_delete=False)
            await queue.bind(exchange, routing_key=self._queue_name)
        except aiormq.exceptions.ChannelPreconditionFailed as e:
            log.warning("queue %s is declared differently (%s): consuming it as it is", self._queue_name, e)
            channel = await self._connection.channel()
            await channel.set_qos(prefetch_count=self._prefetch)
            queue = await channel.declare_queue(self._queue_name, passive=True)
        self._channel = channel  # type: ignore[assignment]
        return queue

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        stats = self.stats
        stats.received += 1
        stats.last_received_at = time.time()
        try:
            change = parse(message.body)
        except MalformedNotification as e:
            stats.malformed += 1
            stats.last_error = f"malformed: {e}"
            log.warning("malformed notification ignored: %s", e)
            await message.ack()
            return
        if change is None:
            stats.ignored += 1
            await message.ack()
            return
        try:
            await self._callback(change)
        except asyncio.CancelledError:
            raise  # not acked: the broker redelivers it to the next consumer
        except Exception as e:
            stats.failed += 1
            stats.last_error = f"{change.event_type}: {type(e).__name__}: {e}"
            log.exception("applying %s failed", change.event_type)
            await message.nack(requeue=not message.redelivered)
            return
        stats.applied += 1
        await message.ack()

    async def aclose(self) -> None:
        """Stop consuming and close: unacknowledged messages go back to the queue."""
        queue, tag, connection = self._queue, self._tag, self._connection
        self._queue = self._tag = self._connection = self._channel = None
        self.stats.connected = False
        if queue is not None and tag is not None:
            try:
                await queue.cancel(tag)
            except Exception as e:  # a closed channel has no consumer left to cancel
                log.debug("cancel on close: %s", e)
        if connection is not None:
            await connection.close()

    async def __aenter__(self) -> "NotificationConsumer":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
