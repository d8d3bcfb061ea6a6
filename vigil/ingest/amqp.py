"""A monitor's AMQP queue to Vigil's southbound path: each message one batch, acknowledged once durable.

Zabbix in Enea's Doctor deployment (seed 004) pushes each trigger event as an
AMQP message to the queue Vitrage consumes, ``vitrage_notifications.info``
(oslo.messaging's notifier on topic ``vitrage_notifications``: exchange
``openstack``, routing key the queue's name). This consumer reads such a queue
and hands each body to ``handle`` (:meth:`vigil.monitor.ingest.Ingest.zabbix_message`).

* ``aio_pika.connect_robust``: the connection, channel, queue and consumer come
  back by themselves after a broker restart; until the first connection
  succeeds, :meth:`run` tries again every ``reconnect_interval_s``, so Vigil
  starts while the broker is away.
* The queue and exchange are declared as oslo.messaging declares them
  (``durable`` following its ``amqp_durable_queues``, off by default), so Vigil
  may start before the publisher; a broker that has them declared otherwise
  is consumed passively, as they are.
* A message is acknowledged only after ``handle`` returns, that is once its
  reports are durable (journaled and applied) or were ignored (not mapped).
* Bad input (:class:`~vigil.monitor.reports.BadInput`: a body that does not
  parse, a field out of range) and a batch the intake refuses (a
  :class:`~vigil.domain.errors.DomainError`: an unknown host, journaled as
  ``unknown_host``) are recorded by ``handle`` and rejected without requeue:
  sending them again would not change the answer. Any other failure (the
  store could not write) requeues the message after a backoff (0.5 s doubling
  to 30 s while failures follow one another), so nothing is lost to a passing
  outage; the stats count every case.

Messages are handled in the order they arrive (each one's ``handle`` starts
before the next's), so the intake journals a host's PROBLEM before its OK.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aio_pika
import aiormq
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from vigil.domain.errors import DomainError
from vigil.domain.retry import RetryPolicy
from vigil.monitor.reports import BadInput

log = logging.getLogger(__name__)

Handler = Callable[[bytes], Awaitable[object]]

RETRY = RetryPolicy(initial_s=0.5, max_delay_s=30.0, jitter=0)


@dataclass
class QueueStats:
    """What the consumer has seen: each message counts in ``received``, then in one of the others when done."""

    queue: str
    connected: bool = False
    backlog_at_start: int | None = None  # messages already queued when consuming began
    received: int = 0
    acked: int = 0  # handled: applied (durable) or ignored
    rejected: int = 0  # bad input or refused: not requeued
    requeued: int = 0  # failed for a reason of Vigil's own: back in the queue after a backoff
    last_error: str | None = None
    last_received_at: float | None = None


class QueueConsumer:
    """Consumes ``queue`` (bound to ``exchange``) at ``amqp_url`` and hands each message's body to ``handle``."""

    def __init__(
        self,
        amqp_url: str,
        handle: Handler,
        *,
        queue: str,
        exchange: str,
        durable: bool = False,
        prefetch: int = 64,
        reconnect_interval_s: float = 1.0,
        retry: RetryPolicy = RETRY,
    ) -> None:
        self._url = amqp_url
        self._handle = handle
        self._queue_name = queue
        self._exchange = exchange
        self._durable = durable
        self._prefetch = prefetch
        self._reconnect_interval_s = reconnect_interval_s
        self._retry = retry
        self._failures = 0  # consecutive failures of Vigil's own, for the backoff
        self._connection: AbstractRobustConnection | None = None
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self.stats = QueueStats(queue=queue)

    def __repr__(self) -> str:  # the URL holds the broker's password
        return f"QueueConsumer(queue={self._queue_name!r}, stats={self.stats!r})"

    async def run(self) -> None:
        """Connect and start consuming, trying again until the broker answers; returns once consuming."""
        while True:
            try:
                await self.start()
                log.info("consuming %s (%s messages queued)", self._queue_name, self.stats.backlog_at_start)
                return
            except (TimeoutError, OSError, aiormq.exceptions.AMQPError) as exc:
                self.stats.last_error = f"connecting: {type(exc).__name__}: {exc}"
                log.warning("cannot consume %s yet (%s); trying again", self._queue_name, exc)
                await asyncio.sleep(self._reconnect_interval_s)

    async def start(self) -> None:
        self._connection = connection = await aio_pika.connect_robust(
            self._url, reconnect_interval=self._reconnect_interval_s
        )
        connection.close_callbacks.add(self._lost)
        connection.reconnect_callbacks.add(self._back)
        try:
            self._queue = await self._declare(connection)
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

    async def _declare(self, connection: AbstractRobustConnection) -> AbstractQueue:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        try:
            exchange = await channel.declare_exchange(
                self._exchange, aio_pika.ExchangeType.TOPIC, durable=self._durable, auto_delete=False
            )
            queue = await channel.declare_queue(self._queue_name, durable=self._durable, auto_delete=False)
            await queue.bind(exchange, routing_key=self._queue_name)
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            log.warning("queue %s is declared differently (%s): consuming it as it is", self._queue_name, exc)
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self._prefetch)
            queue = await channel.declare_queue(self._queue_name, passive=True)
        return queue

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        stats = self.stats
        stats.received += 1
        stats.last_received_at = time.time()
        try:
            await self._handle(message.body)
        except asyncio.CancelledError:
            raise  # not acknowledged: the broker delivers it again
        except (BadInput, DomainError) as exc:
            stats.rejected += 1
            stats.last_error = f"rejected: {exc}"
            await message.reject(requeue=False)
            return
        except Exception as exc:
            self._failures += 1
            stats.requeued += 1
            stats.last_error = f"failed: {type(exc).__name__}: {exc}"
            log.exception("handling a message of %s failed; it goes back to the queue", self._queue_name)
            await asyncio.sleep(self._retry.base_delay(self._failures))
            await message.nack(requeue=True)
            return
        self._failures = 0
        stats.acked += 1
        await message.ack()

    async def aclose(self) -> None:
        """Stop consuming and close: unacknowledged messages go back to the queue."""
        queue, tag, connection = self._queue, self._tag, self._connection
        self._queue = self._tag = self._connection = None
        self.stats.connected = False
        if queue is not None and tag is not None:
            try:
                await queue.cancel(tag)
            except Exception as exc:  # a closed channel has no consumer left to cancel
                log.debug("cancel on close: %s", exc)
        if connection is not None:
            await connection.close()
