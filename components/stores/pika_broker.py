"""Rasa adapter: a RabbitMQ event broker that does not lose events across a broker restart.

Set it as the masking broker's ``inner`` in ``endpoints.yml`` instead of ``type: pika`` (same
keys, plus ``max_backlog``, ``window``, ``confirm_timeout``, ``close_timeout`` and
``reconnect_after``)::

    event_broker:
      type: components.stores.event_broker.MaskingEventBroker
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
task; one that fails is kept and published again once, when the connection comes back (a second
failure then waits for the next reconnect), as a new message that a consumer cannot tell from
the first (``tests/components/stores/test_pika_broker.py`` sees such a repeat). A message
RabbitMQ returns as unroutable (published while a restarted broker re-binds the queue) is only
logged by aio-pika.

This broker keeps every event in an ordered backlog until RabbitMQ has confirmed it (publisher
confirms, returned messages counted as failures). Each event is published at once on one channel
and its confirmation awaited in its own task (up to ``window`` unconfirmed): under the faults
benchmark's load RabbitMQ took 10-56 s to confirm a batch, and a sender that waited for
confirmations before sending more fell behind by thousands of events — which a replica killed
then lost. A failed send goes back into the backlog in order and is sent again after a pause
(backoff up to 2 s); after ``reconnect_after`` seconds of failures the connection is replaced
(aio-pika's robust connection retries every 5 s, but a failed channel restore ends its retries).
Events are delivered at least once, in order but for repeats: an event whose confirmation was
lost is sent again under the AMQP ``message_id`` fixed when it was first published, so a
consumer can drop the repeat. What was sent reaches the queue even if the replica dies before
the confirmation; what was not yet sent (RabbitMQ unreachable) lives in the process and is lost
with it (the tracker store keeps every event; ``rasa export`` re-publishes a time range).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from rasa.core.brokers.pika import PikaEventBroker
from rasa.utils.endpoints import EndpointConfig

from components.errors import check_int, check_number

logger = logging.getLogger(__name__)

COMPONENT = "event_broker.reliable_pika"


@dataclass(eq=False)
class _Pending:
    """An event waiting for RabbitMQ's confirmation."""

    event: dict[str, Any]
    headers: dict[str, str] | None
    message_id: str
    seq: int
    state: str = "unsent"  # unsent, sending, confirmed, dropped


class ReliablePikaEventBroker(PikaEventBroker):
    """Rasa's pika broker with an ordered, confirmed, retried backlog.

    Args:
        host: RabbitMQ host (or an ``amqp(s)://`` URL), as for Rasa's ``pika`` broker.
        username: RabbitMQ user.
        password: RabbitMQ password.
        max_backlog: Unconfirmed events kept; beyond it the oldest are dropped (counted in the
            ``event_broker.backlog_full`` error log).
        window: Events sent and not yet confirmed at most (RabbitMQ under load confirms
            after seconds: sending waits for nothing else).
        confirm_timeout: Seconds an event may wait for its confirmation before it is sent again
            (under the same message id).
        close_timeout: Seconds ``close()`` waits for the backlog to be confirmed.
        reconnect_after: Seconds of failed sends after which the connection is replaced by a
            fresh one.
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
        window: int = 5_000,
        confirm_timeout: float = 120.0,
        close_timeout: float = 10.0,
        reconnect_after: float = 30.0,
        **kwargs: Any,
    ) -> None:
        self.max_backlog = check_int("max_backlog", max_backlog, 1, component=COMPONENT)
        self.window = check_int("window", window, 1, component=COMPONENT)
        self.confirm_timeout = check_number(
            "confirm_timeout", confirm_timeout, 1, 3600, component=COMPONENT
        )
        self.close_timeout = check_number(
            "close_timeout", close_timeout, 0, 600, component=COMPONENT
        )
        self.reconnect_after = check_number(
            "reconnect_after", reconnect_after, 1, 600, component=COMPONENT
        )
        kwargs.pop("should_keep_unpublished_messages", None)
        kwargs.pop("raise_on_failure", None)
        super().__init__(host, username, password, **kwargs)
        self._backlog: deque[_Pending] = deque()  # not yet confirmed, in publish order
        self._unsent: deque[_Pending] = deque()  # to send, in publish order
        self._requeue: list[_Pending] = []  # failed sends, merged back before the next round
        self._sends: set[asyncio.Task] = set()
        self._seq = 0
        self._wake = asyncio.Event()
        self._sender: asyncio.Task | None = None
        self._closing = False
        self._failures, self._failing_since, self._last_error = 0, 0.0, ""
        self._reported = 0.0
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
        await self._open()
        if self._sender is None or self._sender.done():
            self._sender = self._loop.create_task(self._send_backlog())

    async def _open(self) -> None:
        self._connection = await self._connect()
        # returned (unroutable) messages raise instead of being confirmed and forgotten
        channel = await self._connection.channel(on_return_raises=True)
        self._exchange = await self._set_up_exchange(channel)
        logger.info("event_broker.connected queues=%d", len(self.queues))

    async def _reopen(self, failing_for: float) -> None:
        """Replace a connection that has not delivered for ``reconnect_after`` seconds.

        aio-pika's robust connection gives up reconnecting when restoring its channel raises
        something other than a connection error (e.g. while RabbitMQ is still starting).
        """
        logger.warning("event_broker.fresh_connection failing_for_s=%.0f", failing_for)
        old, self._exchange = self._connection, None
        if old is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.close(), timeout=5)
        try:
            await self._open()
        except Exception as exc:  # Rasa's _connect tried connection_attempts times
            logger.error("event_broker.reconnect_failed error=%s", type(exc).__name__)

    @property
    def backlog(self) -> int:
        """Events not yet confirmed by RabbitMQ."""
        return len(self._backlog)

    def publish(self, event: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        """Queue ``event`` for sending (never raises, never blocks)."""
        if self._closing:
            logger.error("event_broker.closed_publish event=%s", event.get("event"))
            return
        self._seq += 1
        pending = _Pending(event, headers, uuid.uuid4().hex, self._seq)
        self._backlog.append(pending)
        self._unsent.append(pending)
        if len(self._backlog) > self.max_backlog:
            self._backlog.popleft().state = "dropped"
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.error(
                    "event_broker.backlog_full max_backlog=%d dropped=%d",
                    self.max_backlog,
                    self.dropped,
                )
        self._wake.set()
        now = time.monotonic()
        if len(self._backlog) > 1000 and now - self._reported > 30:
            self._reported = now
            logger.warning(
                "event_broker.backlog_growing backlog=%d in_flight=%d",
                len(self._backlog),
                len(self._sends),
            )
        if self._sender is not None and self._sender.done():  # never expected: say so, go on
            died = None if self._sender.cancelled() else self._sender.exception()
            logger.error("event_broker.sender_restarted error=%s", type(died).__name__)
            self._sender = self._loop.create_task(self._send_backlog())

    async def _send_one(self, pending: _Pending) -> None:
        if self._exchange is None:
            raise ConnectionError("not connected to RabbitMQ")
        message = self._message(pending.event, pending.headers)
        message.message_id = pending.message_id
        await asyncio.wait_for(self._exchange.publish(message, ""), timeout=self.confirm_timeout)

    def _sent(self, pending: _Pending, task: asyncio.Task) -> None:
        """A send finished: confirmed (leaves the backlog in order) or failed (sent again)."""
        self._sends.discard(task)
        error = asyncio.CancelledError() if task.cancelled() else task.exception()
        if error is None:
            pending.state = "confirmed"
            while self._backlog and self._backlog[0].state == "confirmed":
                self._backlog.popleft()
            if self._failures:
                logger.info("event_broker.publishing_again after_failures=%d", self._failures)
            self._failures, self._failing_since = 0, 0.0
        else:
            if pending.state == "sending":  # not dropped meanwhile
                pending.state = "unsent"
                self._requeue.append(pending)
            self._failures += 1
            self._failing_since = self._failing_since or time.monotonic()
            self._last_error = type(error).__name__
        self._wake.set()

    async def _send_backlog(self) -> None:
        """The sender: sends what is unsent (up to ``window`` unconfirmed), in order.

        Each event is published as soon as it comes (RabbitMQ keeps the order of one channel)
        and its confirmation awaited in its own task, so slow confirmations never hold back
        sending. A failed send goes back in order; the sender pauses (backoff up to 2 s) and
        after ``reconnect_after`` seconds of failures replaces the connection.
        """
        delay = 0.2
        while True:
            if self._requeue:
                if self._failures == 1 or self._failures % 20 == 0:
                    logger.warning(
                        "event_broker.publish_failed attempt=%d backlog=%d error=%s",
                        self._failures,
                        len(self._backlog),
                        self._last_error,
                    )
                failing_for = time.monotonic() - self._failing_since
                if self._failing_since and failing_for >= self.reconnect_after:
                    await self._reopen(failing_for)
                    self._failing_since = time.monotonic()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                merged = sorted([*self._requeue, *self._unsent], key=lambda p: p.seq)
                self._unsent, self._requeue = deque(merged), []
            elif not self._failures:
                delay = 0.2
            while self._unsent and len(self._sends) < self.window:
                pending = self._unsent.popleft()
                if pending.state != "unsent":
                    continue
                pending.state = "sending"
                task = self._loop.create_task(self._send_one(pending))
                self._sends.add(task)
                task.add_done_callback(lambda t, p=pending: self._sent(p, t))
            if self._closing and not self._backlog:
                return
            self._wake.clear()
            if not self._requeue:
                await self._wake.wait()

    async def close(self) -> None:
        """Send what is left (up to ``close_timeout`` seconds), then close the connection."""
        self._closing = True
        self._wake.set()
        deadline = time.monotonic() + self.close_timeout
        while self._backlog and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self._backlog:
            logger.error("event_broker.closed_unsent events=%d", len(self._backlog))
        tasks = [*self._sends, *([self._sender] if self._sender else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await super().close()
