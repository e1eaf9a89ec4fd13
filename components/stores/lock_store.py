"""Rasa adapter: a Redis lock store that is safe with several replicas and waits out a restart.

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

Rasa's ``RedisLockStore`` is also not safe with more than one ``rasa run``: it reads a
conversation's ticket lock, changes it in Python and writes it back, in separate steps. Two
replicas issuing a ticket at the same moment both get the same number and both "hold" the lock
(the turn saved second is lost: the SQL store skips as many events as it already holds), and a
replica finishing its turn deletes the lock right after another one queued a ticket in it (that
turn fails with ``LockError``: the customer gets the apology, nothing is stored). The topology
test lost 2 of 6 concurrent turns in one CI run this way; Rasa Pro sells a
``ConcurrentRedisLockStore`` for it. Here every change of a ticket lock (issue, expire, finish
and delete) is one optimistic Redis transaction (``WATCH``/``MULTI``/``EXEC``), run again when
another process changed the lock in between: ticket numbers are unique and a lock is deleted
only when no ticket is left in it.
The stored form stays Rasa's (``TicketLock`` JSON under the same keys).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

from components.errors import check_number

logger = logging.getLogger(__name__)

T = TypeVar("T")


class RetryingRedisLockStore(RedisLockStore):
    """Rasa's Redis lock store with atomic ticket changes, waiting for an unreachable Redis.

    Args:
        endpoint_config: The ``lock_store`` block (Rasa's ``redis`` keys and ``retry_seconds``).
    """

    def __init__(self, endpoint_config: EndpointConfig) -> None:
        kwargs = dict(endpoint_config.kwargs)
        retry = kwargs.pop("retry_seconds", 10.0)
        check_number("lock_store.retry_seconds", retry, 0, 50, "a number of seconds from 0 to 50")
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

    def _decode(self, raw: bytes | None) -> TicketLock | None:
        return TicketLock.from_dict(json.loads(raw)) if raw else None

    def _change(
        self,
        conversation_id: str,
        change: Callable[[TicketLock | None], tuple[T, TicketLock | None, bool]],
    ) -> T:
        """Apply ``change`` to the stored lock in one optimistic transaction.

        ``change`` gets the stored lock (or None) and returns (result, lock to store or None to
        delete, whether to write at all). When another process changes the key between the read
        and the write, the transaction fails and ``change`` runs again on the new value.
        """
        key = self.key_prefix + conversation_id

        def attempt(pipe: Any) -> T:
            result, lock, write = change(self._decode(pipe.get(key)))
            pipe.multi()
            if write:
                if lock is None or not lock.tickets:
                    pipe.delete(key)
                else:
                    pipe.set(key, lock.dumps())
            return result

        return self.red.transaction(attempt, key, value_from_callable=True)

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """Issue the next ticket for ``conversation_id``, unique across processes."""

        def issue(lock: TicketLock | None) -> tuple[int, TicketLock, bool]:
            lock = lock or TicketLock(conversation_id)
            return lock.issue_ticket(lock_lifetime), lock, True

        try:
            return self._change(conversation_id, issue)
        except Exception as exc:  # as Rasa's: the channel turns LockError into an apology
            raise LockError(f"Error while acquiring lock. Error:\n{exc}") from exc

    def update_lock(self, conversation_id: str) -> None:
        """Remove the lock's expired tickets (a crashed holder's), atomically."""

        def expire(lock: TicketLock | None) -> tuple[None, TicketLock | None, bool]:
            if lock is None:
                return None, None, False
            before = len(lock.tickets)
            lock.remove_expired_tickets()
            return None, lock, len(lock.tickets) != before

        self._change(conversation_id, expire)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        """Remove ticket ``ticket_number``; delete the lock when no ticket is left."""

        def finish(lock: TicketLock | None) -> tuple[None, TicketLock | None, bool]:
            if lock is None:
                return None, None, False
            lock.remove_ticket_for(ticket_number)
            return None, lock, True

        self._change(conversation_id, finish)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Finish ``ticket_number`` and delete the lock if nobody waits, in one transaction.

        Rasa's ``cleanup`` checks for waiting tickets and deletes in separate steps, so a ticket
        issued by another replica in between was deleted with the lock. Redis being away at this
        point (the turn itself has run and been saved) is logged, not raised: Rasa failed such a
        finished turn (the customer got the apology for a turn that was stored); the ticket
        expires with its lifetime.
        """
        import redis.exceptions

        try:
            self.finish_serving(conversation_id, ticket_number)
        except redis.exceptions.RedisError as exc:
            logger.error("lock_store.cleanup_failed error=%s", type(exc).__name__)
