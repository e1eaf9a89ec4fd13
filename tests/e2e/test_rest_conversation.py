"""End to end: a real action server and a real `rasa run --enable-api`, driven over REST."""

from __future__ import annotations

import sqlite3

import pytest
import requests

from deployment import leak_audit

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_multi_turn_conversation(servers):
    sender = "e2e-customer"
    assert "Demo Shop" in servers.texts(sender, "hello") or servers.texts(sender, "hi")
    assert "order number" in servers.texts(sender, "where is my order?")
    ask = servers.texts(sender, "KF100234")
    assert "phone number or e-mail" in ask and "SF1402938475" not in ask  # nothing before
    status = servers.texts(sender, "13800138000")
    assert "KF100234" in status and "on its way" in status and "SF1402938475" in status

    refund = servers.texts(sender, "how long do refunds take?")
    assert "Approved refunds are issued within 3 working days" in refund
    assert "(refunds.md)" in refund

    fallback = servers.say(sender, "blorp zxqv wuzzle fnord")
    assert "human agent" in fallback[-1]["text"]
    assert fallback[-1]["buttons"][0]["payload"] == "/request_human"

    handoff = servers.texts(sender, "human please")
    assert "ticket T-" in handoff
    with sqlite3.connect(servers.home / "tickets.db") as conn:
        stored = leak_audit.stored_sender(sender)  # sender ids are kept as keyed tokens
        rows = conn.execute(
            "SELECT sender_id, status FROM tickets WHERE sender_id = ?", (stored,)
        ).fetchall()
    assert rows == [(stored, "open")] and stored != sender


def test_order_id_in_first_message_and_unknown_order(servers):
    sender = "e2e-direct"
    assert "phone number or e-mail" in servers.texts(sender, "where is order KF100555?")
    status = servers.texts(sender, "it's chen.jing@example.com")
    assert "out for delivery" in status and "JD Logistics" in status
    servers.texts(sender, "track my order")
    assert "could not find" in servers.texts(sender, "KF999999")


def test_an_order_is_not_revealed_without_its_phone_or_email(servers):
    sender = "e2e-guesser"
    servers.texts(sender, "where is order KF100234?")
    replies = [servers.texts(sender, guess) for guess in ("13900000000", "x@example.com", "123")]
    assert all("SF1402938475" not in r and "earbuds" not in r for r in replies)
    assert "does not match" in replies[0] and "could not verify" in replies[-1]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "refund " * 500,
        "😀😀😀🙏",
        "我的 order KF100042 到哪了？",
        "/restart_typo",
        "<script>alert(1)</script>",
    ],
    ids=["empty", "blank", "3.5k-chars", "emoji", "mixed-zh-en", "bad-intent", "html"],
)
def test_bad_input_gets_a_reply(servers, text):
    reply = servers.say("e2e-bad-input", text)
    assert reply and all(m.get("text") or m.get("buttons") for m in reply)


def test_tracker_store_holds_the_conversation(servers):
    servers.say("e2e-store", "hello")
    with sqlite3.connect(servers.home / "tracker.db") as conn:
        count = conn.execute(
            "SELECT COUNT(*) FROM events WHERE sender_id = ?",
            (leak_audit.stored_sender("e2e-store"),),
        ).fetchone()[0]
    assert count > 0


def test_blocked_message_gets_the_fixed_reply(servers):
    reply = servers.texts("e2e-blocked", "I will kill you")
    assert reply.startswith("I can't continue with that message")


def test_an_insult_gets_a_calm_reply_and_the_offer_of_a_human(servers):
    reply = servers.say("e2e-insult", "you are useless, f*ck")
    assert reply[0]["text"].startswith("I'm sorry this has been so frustrating")
    assert reply[-1]["buttons"][0]["payload"] == "/request_human"
    handoff = servers.texts("e2e-insult", "yes")
    assert "human agent will contact you" in handoff


def test_no_raw_personal_data_at_rest(servers):
    """Leak audit (reduced): 10 conversations seeded with personal data through real servers.

    Tracker store, event broker output, tickets, knowledge index and logs are searched for every
    seeded value; every token in the store must reveal a seeded value from the vault.
    """
    result = leak_audit.run(servers, leak_audit.conversations(10, seed=1))
    assert "events.jsonl" in result.files_scanned and "tracker.db" in result.files_scanned
    assert result.leaks == []
    assert result.tokens_found >= 10
    assert result.vault_round_trip == 1.0
    assert result.values_recoverable == result.values_sent == result.tokens_found


def test_servers_logged_no_tracebacks(servers):
    for name, log in servers.logs.items():
        assert "Traceback" not in log.read_text(), name


def test_a_long_conversation_keeps_its_custom_actions(servers):
    """Rasa sends the whole session to the action server on every custom action: a long
    conversation must not outgrow the action server's body limit (it did at ~18 turns)."""
    sender = "e2e-long"
    servers.texts(sender, "hello")
    events_url = f"{servers.rasa_url}/conversations/{sender}/tracker/events"
    for _ in range(4):  # ~150 KB of earlier conversation, added through Rasa's HTTP API
        earlier = [{"event": "bot", "text": "earlier reply " + "x" * 600} for _ in range(60)]
        added = requests.post(
            events_url, params={"token": servers.api_token}, json=earlier, timeout=60
        )
        assert added.status_code == 200, added.text
    turns = ["where is my order?", "KF100234", "13800138000", "how long do refunds take?"]
    replies = [servers.texts(sender, text) for text in turns]
    assert "SF1402938475" in replies[2] and "(refunds.md)" in replies[3]
    assert all("something went wrong" not in r for r in replies)
