"""Failed order verifications, counted per order and per sender across conversations.

The order-status form locks one conversation after three wrong phone numbers / e-mail
addresses (the ``contact_attempts`` slot), but a new sender id starts a new conversation: an
attacker who rotates sender ids could go on guessing the phone number on an order. This store
counts wrong answers **per order** and **per sender** in a sliding time window, whatever the
conversation, and locks verification when a count reaches its limit.

The client's IP address is not available to the action server: Rasa passes the action server
the tracker, whose ``latest_message.metadata`` holds only what the client itself sent (the REST
and socket channels copy the request's ``metadata`` object), so an address found there would
be the attacker's to choose. Locks are therefore per order and per sender id; a per-address
limit belongs in front of Rasa (the reverse proxy, or the REST channel's rate limit).

Stored in SQLite, ``KEFU_HOME/verify_attempts.db``: every action server replica that shares
``KEFU_HOME`` (one host, or a shared volume with working file locks) shares the counts and the
locks, because each check and each update runs in one ``BEGIN IMMEDIATE`` transaction. Replicas
on hosts without a shared ``KEFU_HOME`` (e.g. with a PostgreSQL tracker store) do not share
them: a store on the shared database is out of scope here.

Nothing personal is stored: an order is kept by its order number, a sender by its sender token
(``sender_`` and 16 hex digits, :meth:`PIIMasker.sender_token`), and the answers are never
stored at all, right or wrong.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from actions.sqlite import open_db
from components.errors import OrderStoreError
from components.paths import kefu_home
from components.services import get_services

logger = logging.getLogger(__name__)

# How the limits were chosen. A genuine customer mistypes or tries the phone, then the e-mail:
# the conversation lock already stops one conversation after 3 wrong answers, and 5 per order
# leaves such a customer a second conversation with 2 more tries before the order locks. An
# attacker who knows the masked number on a parcel label (``138****8000``, 10^4 candidates)
# gets 5 guesses per 15 minutes, 480 a day: about 10 days for half the candidates, and every
# lock writes an ``orders.verify_locked`` audit line long before that. The lock is short (15
# minutes, the window) because an attacker can also lock a customer out on purpose; the customer
# can still ask for a human (``utter_contact_locked`` says so). A sender checks several orders
# at most, so 10 wrong answers per sender id in the window (over any orders) lock that sender.

#: The sliding window in which wrong answers are counted, in seconds.
FAILURE_WINDOW_S = 15 * 60
#: Wrong answers for one order, from any conversations, that lock the order.
MAX_ORDER_FAILURES = 5
#: Wrong answers from one sender id, for any orders, that lock the sender.
MAX_SENDER_FAILURES = 10
#: How long a lock lasts, in seconds.
LOCK_S = 15 * 60

ORDER, SENDER = "order", "sender"

SCHEMA = """
CREATE TABLE IF NOT EXISTS verify_failures (
    scope TEXT NOT NULL,
    key   TEXT NOT NULL,
    at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS verify_failures_key ON verify_failures (scope, key, at);
CREATE TABLE IF NOT EXISTS verify_locks (
    scope TEXT NOT NULL,
    key   TEXT NOT NULL,
    until REAL NOT NULL,
    PRIMARY KEY (scope, key)
);
"""


@dataclass(frozen=True)
class Lock:
    """A verification lock.

    Attributes:
        scope: ``order`` (the order is locked for everyone) or ``sender`` (the sender id is
            locked for every order).
        until: When it ends, in seconds since the epoch.
    """

    scope: str
    until: float


class VerificationAttempts:
    """Counts failed order verifications and locks an order or a sender that failed too often.

    Args:
        db_path: The SQLite file (default: ``KEFU_HOME/verify_attempts.db``).
        clock: The current time in seconds since the epoch (tests pass their own).
    """

    def __init__(
        self, db_path: str | Path | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.db_path = Path(db_path or kefu_home() / "verify_attempts.db")
        self.clock = clock

    def locked(self, order_id: str, sender_id: str) -> Lock | None:
        """The lock that refuses verifying ``order_id`` for ``sender_id`` now, if any.

        Raises:
            OrderStoreError: when the database cannot be opened or read.
        """
        keys = self._keys(order_id, sender_id)
        with self._transaction() as conn:
            return self._active_lock(conn, keys, self.clock())

    def record_failure(self, order_id: str, sender_id: str) -> Lock | None:
        """Count a wrong answer; lock the order / the sender when it reaches the limit.

        An ``orders.verify_locked`` audit line is logged for each new lock (the order number,
        the sender token, the count, the window; never the answer nor the raw sender id).

        Returns:
            The lock now in force, if any.

        Raises:
            OrderStoreError: when the database cannot be written.
        """
        keys = self._keys(order_id, sender_id)
        now = self.clock()
        new_locks: list[tuple[str, int]] = []
        with self._transaction() as conn:
            conn.execute("DELETE FROM verify_failures WHERE at <= ?", (now - FAILURE_WINDOW_S,))
            conn.execute("DELETE FROM verify_locks WHERE until <= ?", (now,))
            conn.executemany(
                "INSERT INTO verify_failures VALUES (?, ?, ?)",
                [(scope, key, now) for scope, key in keys],
            )
            for (scope, key), limit in zip(
                keys, (MAX_ORDER_FAILURES, MAX_SENDER_FAILURES), strict=True
            ):
                failures = conn.execute(
                    "SELECT COUNT(*) FROM verify_failures WHERE scope = ? AND key = ?",
                    (scope, key),
                ).fetchone()[0]
                if failures < limit or self._active_lock(conn, [(scope, key)], now):
                    continue
                conn.execute(
                    "INSERT OR REPLACE INTO verify_locks VALUES (?, ?, ?)",
                    (scope, key, now + LOCK_S),
                )
                new_locks.append((scope, failures))
            lock = self._active_lock(conn, keys, now)
        for scope, failures in new_locks:  # committed: the audit trail of each new lock
            logger.warning(
                "orders.verify_locked scope=%s order=%s failures=%d window_s=%d lock_s=%d "
                "sender=%s",
                scope,
                order_id,
                failures,
                FAILURE_WINDOW_S,
                LOCK_S,
                keys[1][1],
            )
        return lock

    def record_success(self, order_id: str, sender_id: str) -> None:
        """Forget the order's and the sender's wrong answers (the right contact was given).

        Raises:
            OrderStoreError: when the database cannot be written.
        """
        keys = self._keys(order_id, sender_id)
        with self._transaction() as conn:
            conn.executemany("DELETE FROM verify_failures WHERE scope = ? AND key = ?", keys)

    @staticmethod
    def _keys(order_id: str, sender_id: str) -> list[tuple[str, str]]:
        """``[(order, order id), (sender, sender token)]``: what the counts are kept under."""
        return [(ORDER, order_id), (SENDER, get_services().pii.sender_token(sender_id))]

    @staticmethod
    def _active_lock(
        conn: sqlite3.Connection, keys: list[tuple[str, str]], now: float
    ) -> Lock | None:
        for scope, key in keys:
            row = conn.execute(
                "SELECT until FROM verify_locks WHERE scope = ? AND key = ? AND until > ?",
                (scope, key, now),
            ).fetchone()
            if row:
                return Lock(scope, row[0])
        return None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A connection in a ``BEGIN IMMEDIATE`` transaction: one writer at a time, replicas too.

        Committed when the block ends normally, rolled back otherwise.

        Raises:
            OrderStoreError: when the database cannot be opened, read or written.
        """
        conn = open_db(self.db_path, SCHEMA, OrderStoreError)
        try:
            conn.isolation_level = None  # explicit transactions
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise OrderStoreError(f"verification store failed: {type(exc).__name__}") from exc
        finally:
            conn.close()
