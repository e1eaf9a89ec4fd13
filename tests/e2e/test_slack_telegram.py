"""Slack and Telegram against a real `rasa run`: signed payloads in, captured API calls out.

The servers' Slack and Telegram channels call a local fake of each platform's API
(:mod:`tests.e2e.platform_api`); the tests post the JSON the platforms post and assert what the
customer would receive.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from urllib.parse import urlencode

import pytest
import requests

from deployment.servers import SLACK_SIGNING_SECRET, TELEGRAM_SECRET

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def slack_post(servers, body: bytes, content_type: str, secret=SLACK_SIGNING_SECRET, **headers):
    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
    return requests.post(
        f"{servers.rasa_url}/webhooks/slack/webhook",
        data=body,
        headers={
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": f"v0={digest.hexdigest()}",
            **headers,
        },
        timeout=10,
    )


def slack_event(text: str, user: str, channel: str = "D0KEFU", ts: str | None = None, **extra):
    ts = ts or f"{time.time():.6f}"
    event = {
        "type": "message",
        "channel_type": "im",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": ts,
        **extra,
    }
    body = {
        "type": "event_callback",
        "event_id": f"Ev{uuid.uuid4().hex[:10]}",
        "team_id": "T0KEFU",
        "authorizations": [{"user_id": "UBOT"}],
        "event": event,
    }
    return body


def post_event(servers, body: dict, **headers):
    return slack_post(servers, json.dumps(body).encode(), "application/json", **headers)


def slack_replies(platform_api, channel: str, count: int) -> list[dict]:
    return platform_api.wait_for("slack", "chat.postMessage", count, channel=channel)


def test_slack_url_verification(servers):
    body = {"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7"}
    reply = post_event(servers, body)
    assert reply.status_code == 200 and reply.json()["challenge"] == body["challenge"]


def test_slack_order_lookup_in_a_thread(servers, platform_api):
    channel, user = "D0ORDER", "U0ORDER"
    for n, text in enumerate(["where is my order?", "KF100234", "13800138000"], start=1):
        reply = post_event(servers, slack_event(text, user, channel, ts=f"1700000100.00000{n}"))
        assert reply.status_code == 200
        slack_replies(platform_api, channel, n)
    sent = slack_replies(platform_api, channel, 3)
    status = " ".join(m["text"] for m in sent)
    assert "KF100234" in status and "SF1402938475" in status
    # replies go to the thread of the customer's message
    assert sent[0]["thread_ts"] == "1700000100.000001"


def test_slack_buttons_are_blocks_and_a_click_is_a_message(servers, platform_api):
    channel, user = "D0BUTTON", "U0BUTTON"
    post_event(servers, slack_event("blorp zxqv wuzzle fnord", user, channel))
    offer = platform_api.wait_for("slack", "chat.postMessage", 1, channel=channel)
    with_blocks = [m for m in offer if m.get("blocks")]
    deadline = time.monotonic() + 30
    while not with_blocks and time.monotonic() < deadline:
        time.sleep(0.3)
        with_blocks = [
            m
            for m in platform_api.sent("slack", "chat.postMessage", channel=channel)
            if m.get("blocks")
        ]
    blocks = with_blocks[0]["blocks"]
    buttons = blocks[1]["elements"]
    assert blocks[1]["type"] == "actions" and buttons[0]["value"] == "/request_human"
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "channel": {"id": channel},
        "trigger_id": uuid.uuid4().hex,
        "message": {"ts": "1700000200.000001"},
        "actions": [{"type": "button", "value": buttons[0]["value"], "action_ts": "1"}],
    }
    before = len(platform_api.sent("slack", "chat.postMessage", channel=channel))
    form = urlencode({"payload": json.dumps(payload)}).encode()
    assert slack_post(servers, form, "application/x-www-form-urlencoded").status_code == 200
    after = platform_api.wait_for("slack", "chat.postMessage", before + 1, channel=channel)
    assert any("ticket T-" in (m.get("text") or "") for m in after[before:])


def test_slack_retries_are_not_processed_twice(servers, platform_api):
    channel, user = "D0RETRY", "U0RETRY"
    body = slack_event("hello", user, channel)
    first = post_event(servers, body)
    assert first.status_code == 200
    slack_replies(platform_api, channel, 1)
    for n in (1, 2):
        retry = post_event(
            servers, body, **{"X-Slack-Retry-Num": str(n), "X-Slack-Retry-Reason": "http_timeout"}
        )
        assert retry.status_code == 200 and retry.headers.get("X-Slack-No-Retry") == "1"
    time.sleep(3)
    assert len(platform_api.sent("slack", "chat.postMessage", channel=channel)) == 1


def test_slack_is_acknowledged_before_a_slow_turn_ends(servers, platform_api):
    """Slack retries after 3 s: the 200 must come at once, the reply later."""
    channel = "D0SLOW"
    started = time.monotonic()
    reply = post_event(servers, slack_event("how long do refunds take?", "U0SLOW", channel))
    assert reply.status_code == 200 and time.monotonic() - started < 1.5
    sent = slack_replies(platform_api, channel, 1)
    assert "refund" in " ".join(m["text"] for m in sent).lower()


@pytest.mark.parametrize(
    "secret, age", [("wrong-secret", 0), (SLACK_SIGNING_SECRET, 600)], ids=["forged", "replayed"]
)
def test_slack_refuses_unsigned_requests(servers, platform_api, secret, age):
    body = json.dumps(slack_event("hello", "U0FORGED", "D0FORGED")).encode()
    stamp = str(int(time.time()) - age)
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
    reply = requests.post(
        f"{servers.rasa_url}/webhooks/slack/webhook",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": f"v0={digest.hexdigest()}",
        },
        timeout=10,
    )
    assert reply.status_code == 401 and reply.json()["error"]["code"] == "invalid_signature"
    time.sleep(1)
    assert platform_api.sent("slack", "chat.postMessage", channel="D0FORGED") == []


# ---------------------------------------------------------------------------------- Telegram
_update_ids = iter(range(900_000, 10**9))


def telegram_post(servers, update: dict, secret=TELEGRAM_SECRET):
    return requests.post(
        f"{servers.rasa_url}/webhooks/telegram/webhook",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": secret},
        timeout=10,
    )


def telegram_message(chat: int, text: str, key: str = "message") -> dict:
    message = {
        "message_id": next(_update_ids),
        "date": int(time.time()),
        "chat": {"id": chat, "type": "private"},
        "from": {"id": chat, "is_bot": False, "first_name": "Wei"},
        "text": text,
    }
    return {"update_id": next(_update_ids), key: message}


def telegram_replies(platform_api, chat: int, count: int) -> list[dict]:
    return platform_api.wait_for("telegram", "sendMessage", count, chat_id=chat)


def test_telegram_registers_its_webhook_with_the_secret(servers, platform_api):
    calls = platform_api.wait_for("telegram", "setWebhook", 1)
    assert calls[0]["secret_token"] == TELEGRAM_SECRET
    assert calls[0]["url"].endswith("/webhooks/telegram/webhook")


def test_telegram_order_lookup(servers, platform_api):
    chat = 7001
    for n, text in enumerate(["where is my order?", "KF100234", "13800138000"], start=1):
        assert telegram_post(servers, telegram_message(chat, text)).status_code == 200
        telegram_replies(platform_api, chat, n)
    status = " ".join(m["text"] for m in telegram_replies(platform_api, chat, 3))
    assert "KF100234" in status and "SF1402938475" in status


def test_telegram_buttons_and_callback_queries(servers, platform_api):
    chat = 7002
    telegram_post(servers, telegram_message(chat, "blorp zxqv wuzzle fnord"))
    deadline = time.monotonic() + 60
    keyboard = None
    while keyboard is None and time.monotonic() < deadline:
        for sent in platform_api.sent("telegram", "sendMessage", chat_id=chat):
            if sent.get("reply_markup"):
                keyboard = json.loads(sent["reply_markup"])["inline_keyboard"][0]
        time.sleep(0.3)
    assert keyboard and keyboard[0]["callback_data"] == "/request_human"
    before = len(platform_api.sent("telegram", "sendMessage", chat_id=chat))
    query = {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": "cbq-7002",
            "from": {"id": chat, "is_bot": False, "first_name": "Wei"},
            "message": {"message_id": 1, "date": 0, "chat": {"id": chat, "type": "private"}},
            "chat_instance": "1",
            "data": keyboard[0]["callback_data"],
        },
    }
    assert telegram_post(servers, query).status_code == 200
    after = telegram_replies(platform_api, chat, before + 1)
    assert any("ticket T-" in m["text"] for m in after[before:])
    assert platform_api.sent("telegram", "answerCallbackQuery", callback_query_id="cbq-7002")


def test_telegram_edited_message_is_answered_and_redelivery_ignored(servers, platform_api):
    chat = 7003
    first = telegram_message(chat, "hello")
    telegram_post(servers, first)
    telegram_replies(platform_api, chat, 1)
    assert telegram_post(servers, first).json() == {"duplicate": True}  # re-delivered update
    edited = telegram_message(chat, "how long do refunds take?", key="edited_message")
    assert telegram_post(servers, edited).status_code == 200
    replies = telegram_replies(platform_api, chat, 2)
    assert "refund" in " ".join(m["text"] for m in replies[1:]).lower()
    time.sleep(2)
    assert len(platform_api.sent("telegram", "sendMessage", chat_id=chat)) == len(replies)


def test_telegram_refuses_updates_without_the_secret(servers, platform_api):
    reply = telegram_post(servers, telegram_message(7004, "hello"), secret="forged")
    assert reply.status_code == 401
    time.sleep(1)
    assert platform_api.sent("telegram", "sendMessage", chat_id=7004) == []
