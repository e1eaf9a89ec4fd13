from actions.tickets import TicketStore


def test_tickets_are_persisted_per_sender(kefu_home):
    store = TicketStore()
    first = store.create("alice", "request", "request_human", "KF100234")
    store.create("bob", "fallback", "nlu_fallback", None)
    again = TicketStore()  # a new process sees the same tickets
    tickets = again.for_sender("alice")
    assert [t.ticket_id for t in tickets] == [first.ticket_id]
    assert tickets[0].order_id == "KF100234" and tickets[0].status == "open"
    assert first.ticket_id.startswith("T-")


def test_tickets_store_the_sender_token_not_the_sender_id(kefu_home):
    import re
    import sqlite3

    from components.services import get_services

    phone, email = "13812345678", "li.lei@example.cn"
    store = TicketStore()
    first = store.create(phone, "request", "request_human", None)
    store.create(email, "fallback", "nlu_fallback", "KF100234")
    token = get_services().pii.sender_token(phone)  # the tracker store's token too
    assert first.sender_id == token and re.fullmatch(r"sender_[0-9a-f]{16}", token)
    raw = (kefu_home / "tickets.db").read_bytes()
    assert phone.encode() not in raw and email.encode() not in raw
    assert [t.ticket_id for t in TicketStore().for_sender(phone)] == [first.ticket_id]
    assert [t.ticket_id for t in store.for_sender(token)] == [first.ticket_id]
    assert [t.order_id for t in store.for_sender(email)] == ["KF100234"]
    with sqlite3.connect(kefu_home / "tickets.db") as conn:
        stored = {s for (s,) in conn.execute("SELECT sender_id FROM tickets")}
    assert stored == {token, get_services().pii.sender_token(email)}


def test_tickets_of_older_versions_are_rewritten_to_tokens(kefu_home):
    import sqlite3

    from tests.security.test_ticket_storm import LEGACY_SCHEMA as SCHEMA  # the first version

    db = kefu_home / "tickets.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(SCHEMA)
        conn.execute(
            "INSERT INTO tickets VALUES "
            "('T-OLD', '13812345678', 'request', NULL, NULL, 1.0, 'open')"
        )
        conn.execute(
            "INSERT INTO tickets VALUES "
            "('T-Q', 'sender_0123456789abcdef', 'action_failed', NULL, NULL, 2.0, 'open')"
        )
    store = TicketStore()
    assert [t.ticket_id for t in store.for_sender("13812345678")] == ["T-OLD"]
    assert b"13812345678" not in db.read_bytes()
    assert [t.ticket_id for t in store.for_sender("sender_0123456789abcdef")] == [
        "T-Q"
    ]  # kept as is
