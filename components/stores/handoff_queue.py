"""A queue of handoffs the Rasa server could not turn into tickets itself.

When a custom action fails silently (the action server is down), the REST channel apologises
and records a handoff here, in ``KEFU_HOME/handoff_queue.db`` (SQLite). The action server calls
:func:`drain` at start-up and turns each record into a ticket. A record holds no raw personal
data: the sender is the conversation's sender token (:func:`sender_token`, the id the masking
tracker store keeps the conversation under; recoverable through the vault when ``KEFU_VAULT_KEY``
is set), plus the reason, the action, the time, the language and the channel.

:func:`drain` takes the records out in one transaction: a record is returned by exactly one
drain, even with several processes draining at once.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from components.paths import kefu_home
from components.services import get_services

FILE_NAME = "handoff_queue.db"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS handoffs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sender TEXT NOT NULL,
    reason TEXT NOT NULL,
    action TEXT NOT NULL,
    timestamp REAL NOT NULL,
    language TEXT NOT NULL,
    channel TEXT NOT NULL
)
"""
_COLUMNS = "sender, reason, action, timestamp, language, channel"


@dataclass(frozen=True)
class HandoffRecord:
    """One queued handoff (no ticket yet).

    Attributes:
        sender: The masked sender token, never the raw sender id.
        reason: Why, e.g. ``action_failed``.
        action: The custom action that failed.
        timestamp: When, in seconds since the epoch.
        language: The customer's language (``en`` or ``zh``).
        channel: The channel the customer wrote on.
        id: The queue's id for the record (None before it is queued).
    """

    sender: str
    reason: str
    action: str
    timestamp: float = field(default_factory=time.time)
    language: str = "en"
    channel: str = "rest"
    id: int | None = None


def sender_token(sender: str) -> str:
    """The masked form of a sender id: the token the masking tracker store stores it under.

    ``PIIMasker.sender_token`` of the process's services (``sender_`` and 16 hex digits; kept in
    the vault with ``KEFU_VAULT_KEY``), so a queued handoff becomes a ticket of the same
    conversation.
    """
    return get_services().pii.sender_token(sender)


def default_path() -> Path:
    """``KEFU_HOME/handoff_queue.db``."""
    return kefu_home() / FILE_NAME


@contextlib.contextmanager
def _connect(path: str | Path | None) -> Iterator[sqlite3.Connection]:
    target = Path(path) if path is not None else default_path()
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o600))  # owner-only, whatever the umask
    conn = sqlite3.connect(target, timeout=10, isolation_level=None)
    try:
        conn.execute(_SCHEMA)
        yield conn
    finally:
        conn.close()


def enqueue(record: HandoffRecord, path: str | Path | None = None) -> int:
    """Append ``record`` to the queue (default: :func:`default_path`).

    Returns:
        The record's id in the queue.

    Raises:
        sqlite3.Error: When the queue cannot be written.
    """
    with _connect(path) as conn:
        cursor = conn.execute(
            f"INSERT INTO handoffs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (
                record.sender,
                record.reason,
                record.action,
                record.timestamp,
                record.language,
                record.channel,
            ),
        )
        return int(cursor.lastrowid or 0)


def drain(path: str | Path | None = None) -> list[HandoffRecord]:
    """Take every queued record out of the queue, oldest first.

    Raises:
        sqlite3.Error: When the queue cannot be read; nothing is removed then.
    """
    target = Path(path) if path is not None else default_path()
    if not target.exists():
        return []
    with _connect(target) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = conn.execute(f"SELECT id, {_COLUMNS} FROM handoffs ORDER BY id").fetchall()
            if rows:
                conn.execute("DELETE FROM handoffs WHERE id <= ?", (rows[-1][0],))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return [
        HandoffRecord(
            sender=sender,
            reason=reason,
            action=action,
            timestamp=timestamp,
            language=language,
            channel=channel,
            id=record_id,
        )
        for record_id, sender, reason, action, timestamp, language, channel in rows
    ]


def pending(path: str | Path | None = None) -> int:
    """How many records wait in the queue (0 when it does not exist yet)."""
    target = Path(path) if path is not None else default_path()
    if not target.exists():
        return 0
    with _connect(target) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM handoffs").fetchone()[0])
