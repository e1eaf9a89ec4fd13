"""One open ticket per conversation and reason (issue: hardening, point 3, the ticket storm).

An outage queued 113 handoffs for 20 conversations (up to 8 for one); the restart created 113
tickets. A later handoff for the same conversation and reason now counts on the open ticket.
"""

from __future__ import annotations

import sqlite3

import pytest

from actions import actions as kefu_actions
from actions.tickets import TicketStore, import_queued_handoffs, set_tickets
from components.stores import handoff_queue
from tests.actions.trackers import make_tracker, run

#: An older tickets.db (before ``count`` / ``updated_at``).
LEGACY_SCHEMA = """
CREATE TABLE tickets (
    ticket_id   TEXT PRIMARY KEY,
    sender_id   TEXT NOT NULL,
    reason      TEXT NOT NULL,
    last_intent TEXT,
    order_id    TEXT,
    created_at  REAL NOT NULL,
    status      TEXT NOT NULL DEFAULT 'open'
);
"""


@pytest.fixture(autouse=True)
def fresh_tickets(kefu_home):
    previous = set_tickets(TicketStore())
    yield
    set_tickets(previous)


def queue(sender: str, times: int, reason: str = "action_failed") -> None:
    token = handoff_queue.sender_token(sender)
    for _ in range(times):
        handoff_queue.enqueue(handoff_queue.HandoffRecord(token, reason, "action_lookup_order"))


def open_tickets(kefu_home) -> list[tuple]:
    with sqlite3.connect(kefu_home / "tickets.db") as conn:
        return conn.execute(
            "SELECT sender_id, reason, count FROM tickets WHERE status = 'open'"
        ).fetchall()


def test_eight_queued_handoffs_of_one_conversation_make_one_ticket(kefu_home):
    queue("alice", 8)
    assert import_queued_handoffs() == 1
    [ticket] = TicketStore().for_sender("alice")
    assert ticket.count == 8 and ticket.reason == "action_failed"
    assert ticket.updated_at is not None and ticket.updated_at >= ticket.created_at
    assert handoff_queue.pending() == 0


def test_the_storm_of_113_handoffs_for_20_conversations_makes_20_tickets(kefu_home):
    per_conversation = [8, 8, 7, 7, 7, 6, 6, 6, 6, 6, 6, 5, 5, 5, 5, 5, 5, 4, 4, 2]
    assert sum(per_conversation) == 113 and len(per_conversation) == 20
    for n, times in enumerate(per_conversation):
        queue(f"customer-{n}", times)
    assert import_queued_handoffs() == 20
    rows = open_tickets(kefu_home)
    assert len(rows) == 20 and sum(count for _, _, count in rows) == 113
    # a second outage for the same conversations appends again: still 20 tickets
    for n in range(20):
        queue(f"customer-{n}", 1)
    assert import_queued_handoffs() == 0
    assert len(open_tickets(kefu_home)) == 20


def test_a_different_reason_is_a_different_ticket(kefu_home):
    queue("bob", 3)
    queue("bob", 2, reason="store_unavailable")
    assert import_queued_handoffs() == 2
    counts = {t.reason: t.count for t in TicketStore().for_sender("bob")}
    assert counts == {"action_failed": 3, "store_unavailable": 2}


def test_a_second_handoff_tells_the_existing_ticket_number():
    tracker = make_tracker("human please", "request_human", slots={"order_id": "KF100234"})
    first_messages, first_events = run(kefu_actions.ActionHandoff(), tracker)
    second_messages, second_events = run(kefu_actions.ActionHandoff(), tracker)
    ticket_id = first_events[0]["value"]
    assert second_events == first_events
    assert second_messages[0]["response"] == "utter_handoff"
    assert second_messages[0]["ticket_id"] == ticket_id
    [ticket] = TicketStore().for_sender("test-user")
    assert ticket.ticket_id == ticket_id and ticket.count == 2


def test_a_closed_ticket_is_not_reopened(kefu_home):
    store = TicketStore()
    first = store.create("carol", "request", "request_human", None)
    with sqlite3.connect(kefu_home / "tickets.db") as conn:
        conn.execute("UPDATE tickets SET status = 'closed' WHERE ticket_id = ?", (first.ticket_id,))
    second = store.create("carol", "request", "request_human", None)
    assert second.ticket_id != first.ticket_id and second.count == 1


def test_an_older_tickets_db_is_migrated_in_place(kefu_home):
    db = kefu_home / "tickets.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(LEGACY_SCHEMA)
        token = handoff_queue.sender_token("dave")
        conn.executemany(
            "INSERT INTO tickets VALUES (?, ?, 'action_failed', NULL, NULL, ?, 'open')",
            [(f"T-STORM{n}", token, float(n)) for n in range(1, 9)],  # a storm's leftovers
        )
        conn.execute(
            "INSERT INTO tickets VALUES ('T-OTHER', ?, 'request', NULL, NULL, 9.0, 'open')",
            (token,),
        )
    store = TicketStore()
    by_id = {t.ticket_id: t for t in store.for_sender("dave")}
    assert len(by_id) == 9  # nothing is deleted
    assert by_id["T-STORM1"].status == "open" and by_id["T-STORM1"].count == 8
    assert {by_id[f"T-STORM{n}"].status for n in range(2, 9)} == {"merged"}
    assert by_id["T-OTHER"].count == 1 and by_id["T-OTHER"].status == "open"
    # the next handoff appends to the oldest open ticket
    again = store.create("dave", "action_failed", None, None)
    assert again.ticket_id == "T-STORM1" and again.count == 9
    with sqlite3.connect(db) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(tickets)")}
    assert {"count", "updated_at"} <= columns
