"""Rasa adapter: a RabbitMQ event broker that does not lose events across a broker restart.

Set it as the masking broker's ``inner`` in ``endpoints.yml`` instead of ``type: pika`` (same
keys, plus ``max_backlog`` and ``close_timeout``)::

    event_broker:
      type: components.privacy.event_broker.MaskingEventBroker
      inner:
        type: components.stores.pika_broker.ReliablePikaEventBroker
        url: rabbitmq.internal
        port: 5672
        username: kefu
        password: ${KEFU_RABBITMQ_PASSWORD}
        queues: [kefu_events]
        max_backlog: 100000

Rasa's ``PikaEventBroker`` lost events when RabbitMQ restarted under load (210 of 2,478 user
events in ``benchmarks/load.py --variants faults``). It publishes each event once in its own
task; one that fails is kept and published again once, when the connection comes back; one
that fails again then (the channel is restored after that callback) waits for the next
reconnect. And its exchange is not durable: after a restart the robust channel declares it
again and binds the queue again, and what is published in between is *returned* by RabbitMQ as
unroutable and confirmed — aio-pika only logs that, so the event is gone.

This broker keeps every event in an ordered backlog until RabbitMQ has confirmed it (publisher
confirms, with returned messages raised as failures), sends one event at a time from one
sender task, and after a failure waits (backoff up to 2 s) and sends the same event again.
Events are therefore delivered in order and at least once: an event whose confirmation was
lost in the restart is sent again. Every message carries an AMQP ``message_id`` fixed when the
event was first published, so a consumer can drop such a repeat. The backlog lives in the
process: a replica that is killed while RabbitMQ is down loses what it had not sent (the
tracker store keeps every event; ``rasa export`` re-publishes a time range from it).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from rasa.core.brokers.pika import PikaEventBroker
from rasa.utils.endpoints import EndpointConfig

from components.errors import ConfigError

logger = logging.getLogger(__name__)

COMPONENT = "event_broker.reliable_pika"


@dataclass
class _Pending:
    """An event waiting for RabbitMQ's confirmation."""

    event: dict[str, Any]
    headers: dict[str, str] | None
    message_id: str


def _number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(name, value, f"a number from {low:g} to {high:g}", component=COMPONENT)
    return value


class ReliablePikaEventBroker(PikaEventBroker):
    """Rasa's pika broker with an ordered, confirmed, retried backlog.

    Args:
        host: RabbitMQ host (or an ``amqp(s)://`` URL), as for Rasa's ``pika`` broker.
        username: RabbitMQ user.
        password: RabbitMQ password.
        max_backlog: Events kept while RabbitMQ cannot be reached; beyond it the oldest are
            dropped (counted in the ``event_broker.backlog_full`` error log).
        close_timeout: Seconds ``close()`` waits for the backlog to be sent.
        **kwargs: Rasa's ``pika`` keys (``port``, ``queues``, ``exchange_name``,
            ``connection_attempts``, ``retry_delay_in_seconds``, ...).
            ``should_keep_unpublished_messages`` and ``raise_on_failure`` are ignored: every
            event is kept until confirmed and ``publish`` never raises.
    """

    def __init__(
        self,
        host: str,
        username: str,
        password: str,
        max_backlog: int = 100_000,
        close_timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        if isinstance(max_backlog, bool) or not isinstance(max_backlog, int) or max_backlog < 1:
            raise ConfigError("max_backlog", max_backlog, "an integer >= 1", component=COMPONENT)
        self.close_timeout = _number("close_timeout", close_timeout, 0, 600)
        kwargs.pop("should_keep_unpublished_messages", None)
        kwargs.pop("raise_on_failure", None)
        super().__init__(host, username, password, **kwargs)
        self.max_backlog = max_backlog
        self._backlog: deque[_Pending] = deque()
        self._wake = asyncio.Event()
        self._sender: asyncio.Task | None = None
        self._closing = False
        self.dropped = 0  # events dropped because the backlog was full

    @classmethod
    async def from_endpoint_config(
        cls, broker_config: EndpointConfig | None, event_loop: Any = None
    ) -> ReliablePikaEventBroker | None:
        """The broker for an ``event_broker`` block, connected, its sender running."""
        if broker_config is None:
            return None
        broker = cls(broker_config.url, **broker_config.kwargs, event_loop=event_loop)
        await broker.connect()
        return broker

    async def connect(self) -> None:
        """Connect, declare the exchange and queues (as Rasa does), start the sender."""
        self._connection = await self._connect()
        # returned (unroutable) messages raise instead of being confirmed and forgotten
        channel = await self._connection.channel(on_return_raises=True)
        self._exchange = await self._set_up_exchange(channel)
        logger.info("event_broker.connected queues=%d", len(self.queues))
        if self._sender is None or self._sender.done():
            self._sender = self._loop.create_task(self._send_backlog())

    @property
    def backlog(self) -> int:
        """Events not yet confirmed by RabbitMQ."""
        return len(self._backlog)

    def publish(self, event: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        """Queue ``event`` for sending (never raises, never blocks)."""
        if self._closing:
            logger.error("event_broker.closed_publish event=%s", event.get("event"))
            return
        self._backlog.append(_Pending(event, headers, uuid.uuid4().hex))
        if len(self._backlog) > self.max_backlog:
            self._backlog.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.error(
                    "event_broker.backlog_full max_backlog=%d dropped=%d",
                    self.max_backlog,
                    self.dropped,
                )
        self._wake.set()

    async def _send_one(self, pending: _Pending) -> None:
        if self._exchange is None:
            raise ConnectionError("not connected to RabbitMQ")
        message = self._message(pending.event, pending.headers)
        message.message_id = pending.message_id
        await asyncio.wait_for(self._exchange.publish(message, ""), timeout=10)

    async def _send_backlog(self) -> None:
        """The sender: the backlog's first event until confirmed, then the next."""
        delay, failures = 0.2, 0
        while True:
            if not self._backlog:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            pending = self._backlog[0]
            try:
                await self._send_one(pending)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if failures == 1 or failures % 20 == 0:
                    logger.warning(
                        "event_broker.publish_failed attempt=%d backlog=%d error=%s",
                        failures,
                        len(self._backlog),
                        type(exc).__name__,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if self._backlog and self._backlog[0] is pending:
                self._backlog.popleft()
            if failures:
                logger.info("event_broker.publishing_again after_failures=%d", failures)
            delay, failures = 0.2, 0

    async def close(self) -> None:
        """Send what is left (up to ``close_timeout`` seconds), then close the connection."""
        self._closing = True
        self._wake.set()
        deadline = time.monotonic() + self.close_timeout
        while self._backlog and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self._backlog:
            logger.error("event_broker.closed_unsent events=%d", len(self._backlog))
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        await super().close()
