"""Human-handoff tickets, stored in SQLite for agents to pick up (every assistant's handoff).

A ticket stores the conversation's sender token (``sender_`` and 16 hex digits, the one the
masking tracker store saves the conversation under, from the process's PII masker), never the
raw sender id, which may be the customer's phone number or e-mail address; with
``KEFU_VAULT_KEY`` set the vault reveals it to whoever holds the key, e.g. to call back.

A conversation has at most one open ticket per reason: a later handoff for the same
conversation and reason is counted on it (``count``, ``updated_at``), so an outage that queued
many handoffs for one conversation (see :func:`import_queued_handoffs`) makes one ticket, not a
storm. A unique partial index enforces it for every process that writes the file. Databases of
older versions are migrated in place the first time a store opens them: the two columns are
added, and open duplicates of one conversation and reason are merged into the oldest (it counts
them; the others keep their rows, with status ``merged``).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import astuple, dataclass, replace
from pathlib import Path

from actions.process import PerProcess
from actions.sqlite import open_db
from components.errors import TicketStoreError
from components.paths import kefu_home
from components.services import get_services

SCHEMA = """
CREATE TABLE IF NOT EXISTS tickets (
    ticket_id   TEXT PRIMARY KEY,
    sender_id   TEXT NOT NULL,
    reason      TEXT NOT NULL,
    last_intent TEXT,
    order_id    TEXT,
    created_at  REAL NOT NULL,
    status      TEXT NOT NULL DEFAULT 'open',
    count       INTEGER NOT NULL DEFAULT 1,
    updated_at  REAL
);
"""
#: Columns added since the first version, with their definitions (added by the migration).
ADDED_COLUMNS = {"count": "INTEGER NOT NULL DEFAULT 1", "updated_at": "REAL"}
#: One open ticket per conversation and reason (created once older duplicates are merged).
ONE_OPEN_TICKET = (
    "CREATE UNIQUE INDEX IF NOT EXISTS tickets_one_open "
    "ON tickets (sender_id, reason) WHERE status = 'open'"
)
COLUMNS = (
    "ticket_id, sender_id, reason, last_intent, order_id, created_at, status, count, updated_at"
)


def _sender_token(sender_id: str) -> str:
    """The stored form of a sender id (a sender token, e.g. from the handoff queue, stays)."""
    return get_services().pii.sender_token(sender_id)


@dataclass(frozen=True)
class Ticket:
    """A handoff request; ``sender_id`` is the conversation's sender token.

    Attributes:
        count: How many handoffs of the conversation, for this reason, the ticket stands for.
        updated_at: When the last of them was counted (the creation time for the first).
    """

    ticket_id: str
    sender_id: str
    reason: str
    last_intent: str | None
    order_id: str | None
    created_at: float
    status: str = "open"
    count: int = 1
    updated_at: float | None = None


class TicketStore:
    """Writes and reads handoff tickets.

    Only metadata is stored (intent, order number, reason) — never the customer's raw messages,
    nor the raw sender id: its sender token. Tickets written before sender ids were masked are
    rewritten to tokens the first time a store opens the database.
    """

    def __init__(self, db_path: str | Path | None = None) -> None:
        self.db_path = Path(db_path or kefu_home() / "tickets.db")
        self._migrated = False

    def _open(self) -> sqlite3.Connection:
        """Connect; the first time, migrate a database of an older version in place.

        Raw sender ids left by older versions are replaced by tokens, the ``count`` and
        ``updated_at`` columns are added, open duplicates are merged and the index that keeps
        one open ticket per conversation and reason is created.

        Raises:
            TicketStoreError: when the database cannot be opened or migrated.
        """
        conn = open_db(self.db_path, SCHEMA, TicketStoreError)
        if self._migrated:
            return conn
        try:
            conn.execute("PRAGMA secure_delete = ON")  # the raw ids do not linger in free pages
            with conn:
                conn.execute("BEGIN IMMEDIATE")  # one process migrates, the others wait
                rows = conn.execute(
                    "SELECT DISTINCT sender_id FROM tickets WHERE sender_id NOT GLOB ?",
                    ("sender_" + "[0-9a-f]" * 16,),
                ).fetchall()
                for (raw,) in rows:
                    token = _sender_token(raw)
                    if token != raw:
                        conn.execute(
                            "UPDATE tickets SET sender_id = ? WHERE sender_id = ?", (token, raw)
                        )
                columns = {row[1] for row in conn.execute("PRAGMA table_info(tickets)")}
                for column, definition in ADDED_COLUMNS.items():
                    if column not in columns:
                        conn.execute(f"ALTER TABLE tickets ADD COLUMN {column} {definition}")
                conn.execute("UPDATE tickets SET updated_at = created_at WHERE updated_at IS NULL")
                _merge_open_duplicates(conn)
                conn.execute(ONE_OPEN_TICKET)
        except sqlite3.Error as exc:
            conn.close()
            raise TicketStoreError(f"ticket migration failed: {type(exc).__name__}") from exc
        self._migrated = True
        return conn

    def create(
        self,
        sender_id: str,
        reason: str,
        last_intent: str | None,
        order_id: str | None,
        count: int = 1,
    ) -> Ticket:
        """Open a ticket, or count on the conversation's open ticket with the same reason.

        See :meth:`open_or_count` (this returns only the ticket).

        Raises:
            TicketStoreError: when the ticket cannot be written.
        """
        return self.open_or_count(sender_id, reason, last_intent, order_id, count)[0]

    def open_or_count(
        self,
        sender_id: str,
        reason: str,
        last_intent: str | None,
        order_id: str | None,
        count: int = 1,
    ) -> tuple[Ticket, bool]:
        """Open a ticket, or count on the conversation's open ticket with the same reason.

        A conversation (the sender token of ``sender_id``) has at most one open ticket per
        reason: when it has one, ``count`` is added to it, ``updated_at`` set, and the intent
        and order number updated when given; the customer hears that ticket's number.

        Args:
            sender_id: The conversation's sender id (or its sender token).
            reason: Why, e.g. ``request``, ``fallback``, ``action_failed``.
            last_intent: The customer's latest intent, if known.
            order_id: The order the conversation is about, if any.
            count: How many handoffs this is (several queued ones at once).

        Returns:
            ``(ticket, created)``: the new ticket (``count`` as given) and True, or the existing
            one, counted on, and False.

        Raises:
            TicketStoreError: when the ticket cannot be written.
        """
        token = _sender_token(sender_id)
        now = time.time()
        conn = self._open()
        try:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                row = conn.execute(
                    f"SELECT {COLUMNS} FROM tickets "
                    "WHERE sender_id = ? AND reason = ? AND status = 'open'",
                    (token, reason),
                ).fetchone()
                if row is None:
                    ticket = Ticket(
                        ticket_id="T-" + uuid.uuid4().hex[:8].upper(),
                        sender_id=token,
                        reason=reason,
                        last_intent=last_intent,
                        order_id=order_id,
                        created_at=now,
                        count=count,
                        updated_at=now,
                    )
                    conn.execute(
                        f"INSERT INTO tickets ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        astuple(ticket),
                    )
                else:
                    found = Ticket(*row)
                    ticket = replace(
                        found,
                        last_intent=last_intent or found.last_intent,
                        order_id=order_id or found.order_id,
                        count=found.count + count,
                        updated_at=now,
                    )
                    conn.execute(
                        "UPDATE tickets SET last_intent = ?, order_id = ?, count = ?, "
                        "updated_at = ? WHERE ticket_id = ?",
                        (
                            ticket.last_intent,
                            ticket.order_id,
                            ticket.count,
                            ticket.updated_at,
                            ticket.ticket_id,
                        ),
                    )
        except sqlite3.Error as exc:
            raise TicketStoreError(f"ticket write failed: {type(exc).__name__}") from exc
        finally:
            conn.close()
        return ticket, row is None

    def for_sender(self, sender_id: str) -> list[Ticket]:
        """All tickets of one conversation (by sender id or its token), oldest first.

        Raises:
            TicketStoreError: when the database cannot be opened.
        """
        conn = self._open()
        try:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM tickets WHERE sender_id = ? ORDER BY created_at",
                (_sender_token(sender_id),),
            ).fetchall()
        finally:
            conn.close()
        return [Ticket(*row) for row in rows]


def _merge_open_duplicates(conn: sqlite3.Connection) -> None:
    """Merge the open tickets of one conversation and reason into the oldest (older versions).

    The oldest counts them all; the others keep their rows, with status ``merged``.
    """
    groups = conn.execute(
        "SELECT sender_id, reason, SUM(count), MAX(COALESCE(updated_at, created_at)) "
        "FROM tickets WHERE status = 'open' GROUP BY sender_id, reason HAVING COUNT(*) > 1"
    ).fetchall()
    for sender_id, reason, total, latest in groups:
        keep = conn.execute(
            "SELECT ticket_id FROM tickets WHERE sender_id = ? AND reason = ? AND status = 'open' "
            "ORDER BY created_at, ticket_id LIMIT 1",
            (sender_id, reason),
        ).fetchone()[0]
        conn.execute(
            "UPDATE tickets SET status = 'merged' "
            "WHERE sender_id = ? AND reason = ? AND status = 'open' AND ticket_id != ?",
            (sender_id, reason, keep),
        )
        conn.execute(
            "UPDATE tickets SET count = ?, updated_at = ? WHERE ticket_id = ?",
            (total, latest, keep),
        )


_TICKETS: PerProcess[TicketStore] = PerProcess(TicketStore)


def tickets() -> TicketStore:
    """The process's ticket store (created on first call, in ``KEFU_HOME``)."""
    return _TICKETS.get()


def set_tickets(value: TicketStore | None) -> TicketStore | None:
    """Install ``value`` as the process's ticket store (None: a fresh one on next use).

    Returns:
        The store it replaces.
    """
    return _TICKETS.set(value)


def import_queued_handoffs() -> int:
    """Turn handoffs the Rasa server queued while actions failed into tickets.

    The hardened REST channel (:mod:`components.channels.rest`) queues a handoff when a turn ended
    in a failed custom action (e.g. this server was down); the action server calls this when it
    starts. The records of one conversation and reason make one ticket that counts them (or
    are counted on the conversation's open ticket with that reason), not one ticket each.
    Records whose ticket cannot be written go back to the queue.

    Returns:
        The number of tickets created (records counted on an existing ticket are not).

    Raises:
        TicketStoreError: when a ticket cannot be written (the unsaved records are re-queued).
    """
    from components.stores import handoff_queue

    records = handoff_queue.drain()
    groups: dict[tuple[str, str], list[handoff_queue.HandoffRecord]] = {}
    for record in records:
        groups.setdefault((record.sender, record.reason), []).append(record)
    created = 0
    pending = list(groups.items())
    for position, ((sender, reason), group) in enumerate(pending):
        try:
            _, new = tickets().open_or_count(
                sender_id=sender, reason=reason, last_intent=None, order_id=None, count=len(group)
            )
        except Exception:
            for _, unsaved in pending[position:]:
                for record in unsaved:
                    handoff_queue.enqueue(record)
            raise
        created += int(new)
    return created
