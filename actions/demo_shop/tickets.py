"""Human-handoff tickets, stored in SQLite for agents to pick up."""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import astuple, dataclass
from pathlib import Path

from actions.demo_shop.sqlite import open_db
from components.errors import TicketStoreError
from components.paths import kefu_home

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


@dataclass(frozen=True)
class Ticket:
    """A handoff request."""

    ticket_id: str
    sender_id: str
    reason: str
    last_intent: str | None
    order_id: str | None
    created_at: float
    status: str = "open"


class TicketStore:
    """Writes and reads handoff tickets.

    Only metadata is stored (intent, order number, reason) — never the customer's raw messages.
    """

    def __init__(self, db_path: str | Path | None = None) -> None:
        self.db_path = Path(db_path or kefu_home() / "tickets.db")

    def create(
        self, sender_id: str, reason: str, last_intent: str | None, order_id: str | None
    ) -> Ticket:
        """Record a new open ticket and return it.

        Raises:
            TicketStoreError: when the ticket cannot be written.
        """
        ticket = Ticket(
            ticket_id="T-" + uuid.uuid4().hex[:8].upper(),
            sender_id=sender_id,
            reason=reason,
            last_intent=last_intent,
            order_id=order_id,
            created_at=time.time(),
        )
        conn = open_db(self.db_path, SCHEMA, TicketStoreError)
        try:
            with conn:
                conn.execute("INSERT INTO tickets VALUES (?, ?, ?, ?, ?, ?, ?)", astuple(ticket))
        except sqlite3.Error as exc:
            raise TicketStoreError(f"ticket insert failed: {type(exc).__name__}") from exc
        finally:
            conn.close()
        return ticket

    def for_sender(self, sender_id: str) -> list[Ticket]:
        """All tickets of one conversation, oldest first."""
        conn = open_db(self.db_path, SCHEMA, TicketStoreError)
        try:
            rows = conn.execute(
                "SELECT * FROM tickets WHERE sender_id = ? ORDER BY created_at", (sender_id,)
            ).fetchall()
        finally:
            conn.close()
        return [Ticket(*row) for row in rows]
