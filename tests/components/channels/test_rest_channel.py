"""The guarded REST channel over HTTP (ASGI), registered as ``rasa run`` registers it."""

import json
import logging
import sqlite3
from pathlib import Path

import pytest
from rasa.core.run import create_http_input_channels

from components.channels.rest import GUARD_MARK, GuardedRestInput
from components.channels.silence import apology
from components.privacy.vault import Vault
from components.stores import handoff_queue

ROOT = Path(__file__).resolve().parents[3]
SORRY_HUMAN = apology("en", handoff=True)
SORRY_RETRY = apology("en", handoff=False)


def error_of(response) -> dict:
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["error"]


# ---------------------------------------------------------------- registration and happy path


def test_credentials_yml_registers_the_guarded_channel_at_the_rest_url():
    channels = create_http_input_channels(None, str(ROOT / "rasa_project/shop/credentials.yml"))
    rest = [c for c in channels if isinstance(c, GuardedRestInput)]
    assert len(rest) == 1 and rest[0].name() == "rest" and rest[0].url_prefix() == "rest"
    assert rest[0].options.max_message_chars == 4000
    assert "rest" not in {c.name() for c in channels if not isinstance(c, GuardedRestInput)}


def test_a_message_gets_the_bot_reply(server):
    response = server.say("alice", "hello", metadata={"page": "/cart"})
    assert response.status_code == 200
    assert response.json() == [{"recipient_id": "alice", "text": "Hello!"}]
    (message,) = server.agent.received
    assert (message.sender_id, message.text, message.input_channel) == ("alice", "hello", "rest")
    assert message.metadata == {"page": "/cart"}
    assert [e["event"] for e in server.events("alice")] == [
        "action", "user", "action", "bot", "action"]  # fmt: skip


def test_health_route(server):
    async def get():
        import httpx

        transport = httpx.ASGITransport(app=server.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kefu") as client:
            return await client.get("/webhooks/rest/")

    response = server.loop.run_until_complete(get())
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_json_sent_as_form_data_is_read(server):
    """``curl -d '{...}'`` sends JSON with a form Content-Type, as in the README."""
    body = json.dumps({"sender": "curl", "message": "hello"})
    headers = {"content-type": "application/x-www-form-urlencoded"}
    (response,) = server.post({"content": body, "headers": headers})
    assert response.status_code == 200 and response.json()[0]["text"] == "Hello!"


@pytest.mark.parametrize(
    "text",
    ["", "   ", "😀😀😀🙏", "我的 order KF100042 到哪了？", "/restart_typo",
     "<script>alert(1)</script>", "refund " * 500],
    ids=["empty", "blank", "emoji", "mixed-zh-en", "bad-intent", "html", "3500-chars"],
)  # fmt: skip
def test_what_the_e2e_tests_send_still_gets_a_reply(server, text):
    response = server.say("e2e-bad-input", text)
    assert response.status_code == 200 and response.json()[0]["text"] == "Hello!"
    assert server.agent.received[-1].text == text.strip()  # Rasa strips, as before


# ---------------------------------------------------------------- rejected requests


@pytest.mark.parametrize(
    ("request_kwargs", "status", "code"),
    [
        ({"content": b""}, 400, "invalid_json"),
        ({"content": b"not json"}, 400, "invalid_json"),
        ({"json": [{"sender": "eve", "message": "hi"}]}, 400, "invalid_json"),
        ({"json": {"message": "hi"}}, 400, "invalid_sender"),
        ({"json": {"sender": "", "message": "hi"}}, 400, "invalid_sender"),
        ({"json": {"sender": 7, "message": "hi"}}, 400, "invalid_sender"),
        ({"json": {"sender": "e" * 129, "message": "hi"}}, 400, "invalid_sender"),
        ({"json": {"sender": "eve"}}, 400, "invalid_message"),
        ({"json": {"sender": "eve", "message": None}}, 400, "invalid_message"),
        ({"json": {"sender": "eve", "message": 42}}, 400, "invalid_message"),
        ({"json": {"sender": "eve", "message": "hi", "metadata": "x"}}, 400, "invalid_metadata"),
        ({"json": {"sender": "eve", "message": "x" * 4001}}, 413, "message_too_long"),
        ({"json": {"sender": "eve", "message": "refund " * 1500}}, 413, "message_too_long"),
        ({"json": {"sender": "eve", "message": "x" * (20 * 1024 * 1024)}}, 413, "body_too_large"),
    ],
    ids=["empty", "not-json", "array", "no-sender", "empty-sender", "number-sender",
         "long-sender", "no-message", "null-message", "number-message", "bad-metadata",
         "4001-chars", "10k-chars", "20MB"],
)  # fmt: skip
def test_bad_requests_get_a_4xx_and_reach_nothing(server, request_kwargs, status, code):
    (response,) = server.post(dict(request_kwargs))
    assert response.status_code == status
    error = error_of(response)
    assert error["code"] == code and error["message"]
    assert server.agent.received == []
    for sender in ("eve", "default", "e" * 129):
        assert server.events(sender) == []


def test_the_too_long_message_says_the_limit(make_server):
    server = make_server(max_message_chars=100)
    response = server.say("eve", "x" * 101)
    assert response.status_code == 413
    assert "101 characters; the limit is 100" in error_of(response)["message"]
    assert server.say("eve", "x" * 100).status_code == 200


def test_an_oversize_body_without_content_length_is_cut_off(server):
    """A chunked body is read only up to the limit."""
    read = []

    async def chunks():
        for _ in range(2000):
            read.append(1)
            yield b"x" * 1024

    (response,) = server.post({"content": chunks()})
    assert response.status_code == 413 and error_of(response)["code"] == "body_too_large"
    assert server.agent.received == []


def test_streaming_requests_are_validated_too(server):
    (response,) = server.post({"json": {"sender": "eve"}, "params": {"stream": "true"}})
    assert response.status_code == 400 and error_of(response)["code"] == "invalid_message"
    assert server.agent.received == []


# ---------------------------------------------------------------- rate limiting


def test_a_sender_over_its_rate_gets_429_with_retry_after(make_server):
    server = make_server(rate_per_minute=30, burst=3)
    body = {"json": {"sender": "fast", "message": "hi"}}
    responses = server.post(*[dict(body) for _ in range(4)])
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    limited = responses[-1]
    assert limited.headers["retry-after"] == "2"
    error = error_of(limited)
    assert error["code"] == "rate_limited"
    assert "wait 2 s" in error["message"] and "30 per minute" in error["message"]
    assert len(server.agent.received) == 3
    assert server.say("other", "hi").status_code == 200  # per sender


def test_rate_limiting_can_be_turned_off(make_server):
    server = make_server(rate_per_minute=0, burst=1)
    body = {"json": {"sender": "load-test", "message": "hi"}}
    assert {r.status_code for r in server.post(*[dict(body) for _ in range(20)])} == {200}


# ---------------------------------------------------------------- the silence guard


def test_a_failed_custom_action_gets_an_apology_and_a_queued_handoff(server, kefu_home):
    server.agent.script = ["action_handoff"]  # the action server was down: no events
    response = server.say("carol", "human please")
    assert response.status_code == 200
    assert response.json() == [{"recipient_id": "carol", "text": SORRY_HUMAN}]

    (record,) = handoff_queue.drain(kefu_home / "handoff_queue.db")
    assert (record.reason, record.action, record.language, record.channel) == (
        "action_failed", "action_handoff", "en", "rest")  # fmt: skip
    assert "carol" not in record.sender
    assert server.events(record.sender)  # the id the tracker store keeps the conversation under

    bot = [e for e in server.events("carol") if e["event"] == "bot"]
    assert len(bot) == 1 and bot[0]["text"] == SORRY_HUMAN
    assert bot[0]["metadata"] == {GUARD_MARK: True}
    assert server.events("carol")[-1]["event"] == "bot"


def test_chinese_customers_get_a_chinese_apology(server, kefu_home):
    server.agent.script = ["action_handoff"]
    response = server.say("dong", "我要转人工")
    assert response.json()[0]["text"] == apology("zh", handoff=True)
    assert handoff_queue.drain(kefu_home / "handoff_queue.db")[0].language == "zh"


def test_the_queued_sender_is_recoverable_with_the_vault_key(make_server, kefu_home, monkeypatch):
    monkeypatch.setenv("KEFU_VAULT_KEY", "channel-test-vault-key-0123456789")
    server = make_server()
    server.agent.script = ["utter_checking", "bot:One moment.", "action_lookup_order"]
    server.say("wx-openid-42", "where is my order")  # a message came first: no apology
    assert handoff_queue.pending(kefu_home / "handoff_queue.db") == 0
    server.agent.script = ["action_lookup_order"]
    server.say("wx-openid-42", "KF100234")
    (record,) = handoff_queue.drain(kefu_home / "handoff_queue.db")
    assert record.action == "action_lookup_order"
    vault = Vault("channel-test-vault-key-0123456789", kefu_home / "vault.db")
    assert vault.reveal(record.sender) == "wx-openid-42"


@pytest.mark.parametrize("script", [[], ["utter_greet"], ["action_default_fallback"]])
def test_a_silent_turn_without_a_custom_action_gets_an_apology_only(server, kefu_home, script):
    server.agent.script = script
    response = server.say("erin", "hello")
    assert response.json() == [{"recipient_id": "erin", "text": SORRY_RETRY}]
    assert handoff_queue.pending(kefu_home / "handoff_queue.db") == 0


def test_a_restart_stays_silent(server):
    server.agent.script = ["action_restart", "restart"]
    response = server.say("frank", "/restart")
    assert response.status_code == 200 and response.json() == []


def test_when_rasa_raises_the_customer_still_gets_an_answer(server, kefu_home, caplog):
    server.agent.error = RuntimeError("lock store down: 13812345678 said hello")
    with caplog.at_level(logging.INFO):
        response = server.say("gina", "my phone is 13812345678")
    assert response.status_code == 200
    assert response.json() == [{"recipient_id": "gina", "text": SORRY_RETRY}]
    assert handoff_queue.pending(kefu_home / "handoff_queue.db") == 0
    assert server.events("gina") == []  # the turn was not saved: no lone apology either
    assert "channels.rest.turn_failed" in caplog.text and "RuntimeError" in caplog.text
    assert "13812345678" not in caplog.text and "gina" not in caplog.text


def test_an_unreachable_tracker_store_fails_the_turn_cleanly(server, kefu_home, caplog):
    from components.errors import StoreUnavailable

    server.agent.error = StoreUnavailable("retrieve", "OperationalError")
    with caplog.at_level(logging.INFO):
        response = server.say("hana", "hello")
    assert response.status_code == 200
    assert response.json() == [{"recipient_id": "hana", "text": SORRY_RETRY}]
    assert "channels.rest.store_unavailable" in caplog.text and "hana" not in caplog.text


def test_a_lock_store_that_cannot_be_reached_fails_the_turn_cleanly(server, kefu_home, caplog):
    from rasa.core.lock_store import LockError

    server.agent.error = LockError("redis unreachable")
    with caplog.at_level(logging.INFO):
        response = server.say("ivy", "hello")
    assert response.json() == [{"recipient_id": "ivy", "text": SORRY_RETRY}]
    assert "channels.rest.lock_unavailable" in caplog.text
    assert handoff_queue.pending(kefu_home / "handoff_queue.db") == 0


def test_a_queue_that_cannot_be_written_means_no_promise(server, kefu_home, monkeypatch):
    def broken(record, path=None):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(handoff_queue, "enqueue", broken)
    server.agent.script = ["action_handoff"]
    response = server.say("hana", "human please")
    assert response.json()[0]["text"] == SORRY_RETRY


def test_the_guard_can_be_turned_off(make_server, kefu_home):
    server = make_server(silence_guard=False)
    server.agent.script = ["action_handoff"]
    assert server.say("ivan", "human please").json() == []
    assert handoff_queue.pending(kefu_home / "handoff_queue.db") == 0


def test_handoffs_can_be_turned_off(make_server, kefu_home):
    server = make_server(handoff_on_failure=False)
    server.agent.script = ["action_handoff"]
    assert server.say("jo", "human please").json()[0]["text"] == SORRY_RETRY
    assert handoff_queue.pending(kefu_home / "handoff_queue.db") == 0


# ---------------------------------------------------------------- streaming


def lines(response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def test_streaming_reply(server):
    server.agent.script = ["utter_a", "bot:One.", "utter_b", "bot:Two."]
    body = {"json": {"sender": "kim", "message": "hi"}, "params": {"stream": "true"}}
    (response,) = server.post(body)
    assert response.status_code == 200
    assert [m["text"] for m in lines(response)] == ["One.", "Two."]


def test_streaming_silent_turn_gets_the_apology(server, kefu_home):
    server.agent.script = ["action_handoff"]
    body = {"json": {"sender": "lee", "message": "human please"}, "params": {"stream": "true"}}
    (response,) = server.post(body)
    assert lines(response) == [{"recipient_id": "lee", "text": SORRY_HUMAN}]
    assert handoff_queue.pending(kefu_home / "handoff_queue.db") == 1


def test_streaming_ends_when_rasa_raises(server):
    """Rasa's own stream waits forever for a turn that raised; this one apologises."""
    server.agent.error = RuntimeError("boom")
    body = {"json": {"sender": "max", "message": "hi"}, "params": {"stream": "true"}}
    (response,) = server.post(body)
    assert lines(response) == [{"recipient_id": "max", "text": SORRY_RETRY}]


# ---------------------------------------------------------------- internal failures


def test_an_internal_failure_is_a_json_500_without_user_text(server, monkeypatch, caplog):
    import components.channels.rest as rest

    def broken(body, options):
        raise ValueError(f"cannot parse {body!r}")

    monkeypatch.setattr(rest, "parse_request", broken)
    with caplog.at_level(logging.INFO):
        response = server.say("nina", "my card is 6222020202020202")
    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "internal_error" and "try again" in error["message"]
    assert "Traceback" not in response.text
    assert "channels.rest.internal_error error=ValueError" in caplog.text
    assert "6222020202020202" not in caplog.text
