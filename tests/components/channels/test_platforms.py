"""Slack and Telegram payloads: customers' messages out, everything else ignored or refused."""

from __future__ import annotations

import json

import pytest

from components.channels import platforms
from components.channels.validation import Rejected


def envelope(**event):
    base = {"type": "message", "channel_type": "im", "channel": "D1", "user": "U1", "ts": "1.1"}
    return {
        "type": "event_callback",
        "event_id": "Ev1",
        "authorizations": [{"user_id": "UBOT"}],
        "event": {**base, **event},
    }


def test_slack_direct_message():
    found = platforms.slack_event(envelope(text="hi <@UBOT>"), 100)
    assert found == platforms.Incoming(
        "hi <@UBOT>", "U1", "D1", "Ev1", thread="1.1", kind="message", mentioned=("UBOT",)
    )


def test_slack_thread_and_mention():
    found = platforms.slack_event(envelope(type="app_mention", thread_ts="0.5", text="x"), 100)
    assert found.kind == "mention" and found.thread == "0.5"


@pytest.mark.parametrize(
    "body",
    [
        envelope(text="x", bot_id="B1"),
        envelope(text="x", subtype="message_changed"),
        envelope(type="reaction_added"),
        {"type": "app_rate_limited"},
        {},
    ],
)
def test_slack_non_messages_are_ignored(body):
    assert isinstance(platforms.slack_event(body, 100), platforms.Ignored)


@pytest.mark.parametrize(
    "body, code",
    [
        ({"type": "event_callback", "event": []}, "invalid_event"),
        (envelope(text=5), "invalid_event"),
        (envelope(text="x", user=None), "invalid_event"),
        (envelope(text="x" * 101), "message_too_long"),
        ({"type": "url_verification", "challenge": 1}, "invalid_event"),
    ],
)
def test_slack_malformed_events_are_refused(body, code):
    with pytest.raises(Rejected) as refused:
        platforms.slack_event(body, 100)
    assert refused.value.code == code and refused.value.status in (400, 413)


def test_slack_challenge():
    assert platforms.slack_event({"type": "url_verification", "challenge": "c"}, 9).value == "c"


def test_slack_button_click():
    payload = {
        "user": {"id": "U1"},
        "channel": {"id": "D1"},
        "trigger_id": "t1",
        "message": {"ts": "2.2"},
        "actions": [{"type": "button", "value": "/request_human"}],
    }
    found = platforms.slack_interaction(json.dumps(payload), 100)
    assert (found.text, found.kind, found.thread, found.event_id) == (
        "/request_human",
        "button",
        "2.2",
        "interaction:t1",
    )
    payload["actions"] = [{"type": "button", "url": "https://example.com"}]  # a link button
    assert isinstance(platforms.slack_interaction(json.dumps(payload), 100), platforms.Ignored)


@pytest.mark.parametrize("payload", [None, "{", "[]", 5])
def test_slack_bad_interaction_payloads(payload):
    with pytest.raises(Rejected):
        platforms.slack_interaction(payload, 100)


def tg(**update):
    return {"update_id": 10, **update}


MESSAGE = {"message_id": 1, "chat": {"id": 5}, "from": {"id": 6, "is_bot": False}, "text": "hi"}


def test_telegram_message_edit_and_callback():
    assert platforms.telegram_update(tg(message=MESSAGE), 100) == platforms.Incoming(
        "hi", "6", "5", "10"
    )
    assert platforms.telegram_update(tg(edited_message=MESSAGE), 100).kind == "edited"
    query = {"id": "q1", "from": {"id": 6}, "message": MESSAGE, "data": "/affirm"}
    found = platforms.telegram_update(tg(callback_query=query), 100)
    assert (found.text, found.chat, found.callback_id, found.kind) == (
        "/affirm",
        "5",
        "q1",
        "callback",
    )


@pytest.mark.parametrize(
    "update",
    [
        tg(message={**MESSAGE, "text": None, "photo": []}),
        tg(message={**MESSAGE, "from": {"id": 6, "is_bot": True}}),
        tg(callback_query={"id": "q", "data": None}),
        tg(channel_post=MESSAGE),
    ],
)
def test_telegram_non_messages_are_ignored(update):
    assert isinstance(platforms.telegram_update(update, 100), platforms.Ignored)


@pytest.mark.parametrize(
    "update",
    [
        {"message": MESSAGE},
        {"update_id": "10", "message": MESSAGE},
        {"update_id": True, "message": MESSAGE},
        tg(message="x"),
        tg(message={**MESSAGE, "chat": {"id": "5"}}),
        tg(callback_query=[]),
        tg(message={**MESSAGE, "text": "y" * 101}),
    ],
)
def test_telegram_malformed_updates_are_refused(update):
    with pytest.raises(Rejected):
        platforms.telegram_update(update, 100)


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"\xff\xfe"])
def test_loads_object(body):
    with pytest.raises(Rejected) as refused:
        platforms.loads_object(body, "update")
    assert refused.value.status == 400
