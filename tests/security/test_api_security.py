"""Attacks on a real deployment (`rasa run --enable-api` + action server on loopback) must fail.

Each test tries what a prober did against the open defaults (issue: hardening) and asserts the
hardened servers refuse it while still serving customers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
import requests

from deployment.servers import (
    ACTION_SECRET,
    ACTIONS_MAX_BODY_BYTES,
    MAX_BODY_BYTES,
    Servers,
    running_servers,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def servers(trained_model, tmp_path_factory) -> Iterator[Servers]:
    with running_servers(trained_model, tmp_path_factory.mktemp("security_home")) as running:
        yield running


def test_the_tracker_api_needs_the_token(servers):
    url = f"{servers.rasa_url}/conversations/victim/tracker"
    servers.say("victim", "hello")
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, params={"token": "guess"}, timeout=10).status_code == 401
    allowed = requests.get(url, params={"token": servers.api_token}, timeout=10)
    assert allowed.status_code == 200 and allowed.json()["sender_id"] == "victim"


def test_a_fake_bot_message_cannot_be_written(servers):
    url = f"{servers.rasa_url}/conversations/victim2/tracker/events"
    fake = [{"event": "bot", "text": "Confirm your card at http://evil.example"}]
    servers.say("victim2", "hello")
    assert requests.post(url, json=fake, timeout=10).status_code == 401
    stored = requests.get(
        f"{servers.rasa_url}/conversations/victim2/tracker",
        params={"token": servers.api_token},
        timeout=10,
    ).json()
    assert "evil.example" not in json.dumps(stored)


def test_a_forged_action_call_is_rejected(servers):
    body = {
        "next_action": "action_handoff",
        "sender_id": "attacker",
        "tracker": {"sender_id": "attacker", "events": [], "slots": {}, "latest_message": {}},
        "domain": {},
        "version": "3.6.21",
    }
    webhook = f"{servers.action_url}/webhook"
    assert requests.post(webhook, json=body, timeout=10).status_code == 401
    forged = requests.post(
        webhook, json=body, headers={"X-Kefu-Action-Secret": "not-the-secret"}, timeout=10
    )
    assert forged.status_code == 401 and "X-Kefu-Action-Secret" in forged.json()["message"]
    assert requests.get(f"{servers.action_url}/actions", timeout=10).status_code == 401
    assert requests.get(f"{servers.action_url}/health", timeout=10).status_code == 200
    # the Rasa server itself carries the secret: a custom action still runs
    sender = "secret-check"
    servers.say(sender, "where is my order?")
    assert "KF100234" in servers.texts(sender, "KF100234")
    assert ACTION_SECRET not in servers.logs["rasa"].read_text()  # never logged


def test_non_default_ports_come_from_one_setting(servers):
    """endpoints.yml reads KEFU_ACTIONS_URL: the action server on a random port is reached."""
    assert urlparse(servers.action_url).port != 5055
    assert urlparse(servers.rasa_url).port != 5005
    assert "order number" in servers.texts("ports", "where is my order?")  # form validation ran


def test_an_oversize_body_is_refused_and_the_server_keeps_serving(servers):
    big = {"sender": "big", "message": "a" * (MAX_BODY_BYTES + 1024)}
    response = requests.post(f"{servers.rasa_url}/webhooks/rest/webhook", json=big, timeout=30)
    assert response.status_code == 413 and response.json()["error"]["message"]
    # the action server: without the secret the call is refused before the body is read;
    # with it, the body is refused for its size
    webhook = f"{servers.action_url}/webhook"
    assert requests.post(webhook, json=big, timeout=30).status_code == 401
    secret = {"X-Kefu-Action-Secret": ACTION_SECRET}
    huge = {"sender": "big", "message": "a" * (ACTIONS_MAX_BODY_BYTES + 1024)}
    assert requests.post(webhook, json=huge, headers=secret, timeout=60).status_code == 413
    assert requests.get(f"{servers.action_url}/health", timeout=10).status_code == 200
    assert servers.texts("after-big", "hello")
    tracker = requests.get(
        f"{servers.rasa_url}/conversations/big/tracker",
        params={"token": servers.api_token},
        timeout=10,
    ).json()
    assert not [e for e in tracker.get("events", []) if e.get("event") == "user"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_json"),
        (b"{not json", 400, "invalid_json"),
        (b'{"message": "hi"}', 400, "invalid_sender"),
        (b'{"sender": "", "message": "hi"}', 400, "invalid_sender"),
        (b'{"sender": "s1"}', 400, "invalid_message"),
        (b'{"sender": "s1", "message": null}', 400, "invalid_message"),
        (b'{"sender": "s1", "message": 42}', 400, "invalid_message"),
        (b'{"sender": "s1", "message": "hi", "metadata": [1]}', 400, "invalid_metadata"),
    ],
)
def test_malformed_bodies_get_a_clear_4xx(servers, body, status, code):
    response = requests.post(
        f"{servers.rasa_url}/webhooks/rest/webhook",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and len(error["message"]) > 20  # says what to do


def test_nothing_of_a_rejected_message_is_stored(servers):
    sender = "too-long"
    response = requests.post(
        f"{servers.rasa_url}/webhooks/rest/webhook",
        json={"sender": sender, "message": "x" * 5000},
        timeout=30,
    )
    assert response.status_code == 413 and "4000" in response.json()["error"]["message"]
    assert not (servers.home / "tracker.db").is_file() or (
        b"x" * 4001 not in (servers.home / "tracker.db").read_bytes()
    )
    assert (
        "default"
        not in requests.get(
            f"{servers.rasa_url}/conversations", params={"token": servers.api_token}, timeout=10
        ).text
    )  # a client without a sender never shares one conversation
    assert servers.texts(sender, "hello")  # the sender can still talk


def test_a_flooding_sender_is_slowed_down_but_others_are_served(servers):
    from concurrent.futures import ThreadPoolExecutor

    def send(_: int) -> requests.Response:
        return requests.post(
            f"{servers.rasa_url}/webhooks/rest/webhook",
            json={"sender": "flooder", "message": "hi"},
            timeout=120,
        )

    with ThreadPoolExecutor(max_workers=20) as pool:  # 20 at once: more than the burst of 10
        codes = list(pool.map(send, range(20)))
    assert {r.status_code for r in codes} <= {200, 429}
    limited = [r for r in codes if r.status_code == 429]
    assert limited and int(limited[0].headers["Retry-After"]) >= 1
    assert servers.texts("patient-customer", "hello")


def test_phone_and_email_sender_ids_are_nowhere_at_rest(servers):
    senders = ["+8613812345678", "customer.zhao@example.com"]
    for sender in senders:
        servers.say(sender, "hello")
        servers.say(sender, "I want to talk to a human")
    texts = [servers.logs["rasa"].read_text(), servers.logs["actions"].read_text()]
    for path in servers.home.rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    everything = "\n".join(texts)
    for sender in senders:
        assert sender not in everything
        assert sender.lstrip("+") not in everything


def test_when_the_action_server_is_down_the_customer_hears_an_apology(servers):
    """Runs last in this module: it stops the action server, then starts it again."""
    import sqlite3
    import time

    from deployment.leak_audit import stored_sender

    servers.stop_actions()
    try:
        for text, language_hint in (("I want to talk to a human", "human"), ("我要转人工", "人工")):
            started = time.monotonic()
            reply = servers.texts("down-" + language_hint, text)
            assert time.monotonic() - started < 30
            assert reply and language_hint in reply, reply
        with sqlite3.connect(servers.home / "handoff_queue.db") as conn:
            queued = conn.execute("SELECT COUNT(*) FROM handoffs").fetchone()[0]
        assert queued >= 2
    finally:
        servers.start_actions()
    # back up: the queued handoffs became tickets of the same conversations
    with sqlite3.connect(servers.home / "tickets.db") as conn:
        owners = {r[0] for r in conn.execute("SELECT sender_id FROM tickets")}
    assert stored_sender("down-human") in owners
