"""Human-handoff tickets, stored in SQLite for agents to pick up (every assistant's handoff).

A ticket stores the conversation's sender token (``sender_`` and 16 hex digits, the one the
masking tracker store saves the conversation under, from the process's PII masker), never the
raw sender id, which may be the customer's phone number or e-mail address; with
``KEFU_VAULT_KEY`` set the vault reveals it to whoever holds the key, e.g. to call back.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import astuple, dataclass
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
    status      TEXT NOT NULL DEFAULT 'open'
);
"""


def _sender_token(sender_id: str) -> str:
    """The stored form of a sender id (a sender token, e.g. from the handoff queue, stays)."""
    return get_services().pii.sender_token(sender_id)


@dataclass(frozen=True)
class Ticket:
    """A handoff request; ``sender_id`` is the conversation's sender token."""

    ticket_id: str
    sender_id: str
    reason: str
    last_intent: str | None
    order_id: str | None
    created_at: float
    status: str = "open"


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
        """Connect; the first time, replace raw sender ids left by older versions by tokens.

        Raises:
            TicketStoreError: when the database cannot be opened or rewritten.
        """
        conn = open_db(self.db_path, SCHEMA, TicketStoreError)
        if self._migrated:
            return conn
        try:
            conn.execute("PRAGMA secure_delete = ON")  # the raw ids do not linger in free pages
            with conn:
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
        except sqlite3.Error as exc:
            conn.close()
            raise TicketStoreError(f"ticket migration failed: {type(exc).__name__}") from exc
        self._migrated = True
        return conn

    def create(
        self, sender_id: str, reason: str, last_intent: str | None, order_id: str | None
    ) -> Ticket:
        """Record a new open ticket (under the sender token of ``sender_id``) and return it.

        Raises:
            TicketStoreError: when the ticket cannot be written.
        """
        ticket = Ticket(
            ticket_id="T-" + uuid.uuid4().hex[:8].upper(),
            sender_id=_sender_token(sender_id),
            reason=reason,
            last_intent=last_intent,
            order_id=order_id,
            created_at=time.time(),
        )
        conn = self._open()
        try:
            with conn:
                conn.execute("INSERT INTO tickets VALUES (?, ?, ?, ?, ?, ?, ?)", astuple(ticket))
        except sqlite3.Error as exc:
            raise TicketStoreError(f"ticket insert failed: {type(exc).__name__}") from exc
        finally:
            conn.close()
        return ticket

    def for_sender(self, sender_id: str) -> list[Ticket]:
        """All tickets of one conversation (by sender id or its token), oldest first.

        Raises:
            TicketStoreError: when the database cannot be opened.
        """
        conn = self._open()
        try:
            rows = conn.execute(
                "SELECT * FROM tickets WHERE sender_id = ? ORDER BY created_at",
                (_sender_token(sender_id),),
            ).fetchall()
        finally:
            conn.close()
        return [Ticket(*row) for row in rows]


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
    starts. A record whose ticket cannot be written goes back to the queue.

    Returns:
        The number of tickets created.
    """
    from components.stores import handoff_queue

    records = handoff_queue.drain()
    created = 0
    for position, record in enumerate(records):
        try:
            tickets().create(
                sender_id=record.sender, reason=record.reason, last_intent=None, order_id=None
            )
        except Exception:
            for unsaved in records[position:]:
                handoff_queue.enqueue(unsaved)
            raise
        created += 1
    return created
