"""The action server answers client errors with a 4xx and never runs an action without the secret.

The real rasa-sdk app (``rasa_sdk.endpoint.create_app`` + :func:`actions.server_extensions.attach`,
as the plugin hook builds it) is served in-process on a loopback port, and raw HTTP requests are
sent with :mod:`http.client`, which leaves paths such as ``//webhook`` or ``/./webhook`` as they
are. No model and no Rasa server are needed.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from rasa_sdk import Action
from sanic import Sanic

from actions.server_extensions import SECRET_HEADER, attach

SECRET = "kefu-test-action-secret-0123456789"
#: The action server's body limit in these tests (the Makefile's is 16 MiB).
BODY_LIMIT = 1024 * 1024
PROBE_RUNS: list[str] = []


class ActionKefuProbe(Action):
    """Records that it ran: an action that must never run without the secret."""

    def name(self) -> str:
        """The action's name."""
        return "action_kefu_probe"

    async def run(self, dispatcher: Any, tracker: Any, domain: Any) -> list[dict[str, Any]]:
        """Record the run."""
        PROBE_RUNS.append(tracker.sender_id)
        return []


class ActionKefuExplode(Action):
    """Fails the way a broken action does."""

    def name(self) -> str:
        """The action's name."""
        return "action_kefu_explode"

    async def run(self, dispatcher: Any, tracker: Any, domain: Any) -> list[dict[str, Any]]:
        """Raise."""
        raise RuntimeError("boom")


@dataclass
class Answer:
    """One HTTP response."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


def call(action: str, sender: str = "probe-sender") -> bytes:
    """A well-formed action call, as the Rasa server sends it."""
    return json.dumps(
        {
            "next_action": action,
            "sender_id": sender,
            "tracker": {"sender_id": sender, "events": [], "slots": {}, "latest_message": {}},
            "domain": {},
            "version": "3.6.21",
        }
    ).encode()


@pytest.fixture(scope="module")
def port(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[int]:
    """Serve the action server (with Kefu's extensions) on a free loopback port."""
    from rasa_sdk.endpoint import create_app

    monkeypatch_module.setenv("KEFU_ACTION_SECRET", SECRET)
    monkeypatch_module.setenv("KEFU_WARMUP", "0")
    monkeypatch_module.setenv("SANIC_REQUEST_MAX_SIZE", str(BODY_LIMIT))
    monkeypatch_module.setattr(Sanic, "test_mode", True)
    umask = os.umask(0o022)
    os.umask(umask)
    app = create_app("actions")
    attach(app)  # sets the process umask to 077: restored below
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> Any:
        server = await app.create_server(
            host="127.0.0.1", port=0, return_asyncio_server=True, access_log=False
        )
        await server.startup()
        await server.before_start()
        await server.after_start()
        return server

    async def stop(server: Any) -> None:
        await server.before_stop()
        await server.close()
        await server.after_stop()

    server = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=60)
    try:
        yield server.server.sockets[0].getsockname()[1]
    finally:
        asyncio.run_coroutine_threadsafe(stop(server), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        os.umask(umask)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    """A module-scoped monkeypatch."""
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def send(
    port: int,
    method: str,
    path: str,
    body: bytes = b"",
    secret: bool = True,
    headers: dict[str, str] | None = None,
) -> Answer:
    """Send one raw request (the path exactly as given) and read the answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        all_headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        if secret:
            all_headers[SECRET_HEADER] = SECRET
        all_headers.update(headers or {})
        for name, value in all_headers.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        answer = conn.getresponse()
        return Answer(answer.status, dict(answer.getheaders()), answer.read())
    finally:
        conn.close()


def assert_error(answer: Answer, status: int, code: str) -> None:
    """The answer is ``status`` with the action server's JSON error shape."""
    assert answer.status == status, answer.body
    body = answer.json()
    assert body["error"] == code and isinstance(body["message"], str) and body["message"]


def test_an_unknown_path_is_404(port):
    assert_error(send(port, "GET", "/nonexistent", secret=False), 404, "not_found")
    assert_error(send(port, "GET", "/nonexistent"), 404, "not_found")
    # the message never echoes what the client sent
    assert "nonexistent" not in send(port, "GET", "/nonexistent").body.decode()


def test_a_wrong_method_is_405(port):
    answer = send(port, "GET", "/webhook")
    assert_error(answer, 405, "method_not_allowed")
    assert "POST" in answer.headers.get("Allow", "")


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"not json", {}),
        (b'{"next_action": ', {}),
        (b"[1, 2]", {}),
        (b'"action_kefu_probe"', {}),
        (b'{"next_action": 5, "tracker": {}}', {}),
        (b'{"next_action": "action_kefu_probe"}', {}),
        (b'{"next_action": "action_kefu_probe", "tracker": []}', {}),
        (b'{"next_action": "action_kefu_probe", "tracker": {}, "domain": 3}', {}),
        (b"not deflate", {"Content-Encoding": "deflate"}),
        (zlib.compress(b"not json"), {"Content-Encoding": "deflate"}),
    ],
    ids=[
        "not-json",
        "truncated",
        "list",
        "string",
        "action-not-a-string",
        "no-tracker",
        "tracker-not-an-object",
        "domain-not-an-object",
        "bad-deflate",
        "deflated-non-json",
    ],
)
def test_a_malformed_action_call_is_400(port, body, headers):
    PROBE_RUNS.clear()
    assert_error(send(port, "POST", "/webhook", body, headers=headers), 400, "invalid_body")
    assert not PROBE_RUNS


def test_a_well_formed_call_still_runs_plain_or_deflated(port):
    PROBE_RUNS.clear()
    assert send(port, "POST", "/webhook", call("action_kefu_probe")).status == 200
    deflated = zlib.compress(call("action_kefu_probe", "deflated"))
    answer = send(port, "POST", "/webhook", deflated, headers={"Content-Encoding": "deflate"})
    assert answer.status == 200
    assert PROBE_RUNS == ["probe-sender", "deflated"]


def test_a_failing_action_is_still_500_and_echoes_nothing(port):
    answer = send(port, "POST", "/webhook", call("action_kefu_explode", "+15551234567"))
    assert_error(answer, 500, "action_failed")
    assert "+15551234567" not in answer.body.decode()


def test_an_unknown_action_is_404(port):
    assert send(port, "POST", "/webhook", call("action_kefu_missing")).status == 404


VARIANTS = [
    "/webhook",
    "/webhook/",
    "/webhook?x=1",
    "//webhook",
    "///webhook",
    "/Webhook",
    "/WEBHOOK",
    "/%77ebhook",
    "/%2577ebhook",
    "/%2Fwebhook",
    "/./webhook",
    "/x/../webhook",
    "/webhook%2F",
    "/webhook;x",
]


@pytest.mark.parametrize("path", VARIANTS)
def test_no_webhook_variant_runs_an_action_without_the_secret(port, path):
    PROBE_RUNS.clear()
    answer = send(port, "POST", path, call("action_kefu_probe"), secret=False)
    assert_error(answer, 401, "unauthorized")
    assert not PROBE_RUNS


@pytest.mark.parametrize("path", VARIANTS)
def test_a_webhook_variant_with_the_secret_runs_or_is_a_clean_404(port, path):
    PROBE_RUNS.clear()
    answer = send(port, "POST", path, call("action_kefu_probe"))
    if answer.status == 200:
        assert PROBE_RUNS == ["probe-sender"]
    else:
        assert_error(answer, 404, "not_found")
        assert not PROBE_RUNS


@pytest.mark.parametrize("path", ["/actions", "/actions/", "//actions", "/%61ctions", "/Actions"])
def test_no_actions_variant_lists_actions_without_the_secret(port, path):
    assert_error(send(port, "GET", path, secret=False), 401, "unauthorized")
    answer = send(port, "GET", path)
    assert answer.status in (200, 404)
    if answer.status == 404:
        assert_error(answer, 404, "not_found")


def test_health_stays_open(port):
    answer = send(port, "GET", "/health", secret=False)
    assert answer.status == 200 and answer.json() == {"status": "ok"}


def test_an_oversize_action_call_is_413(port):
    body = call("action_kefu_probe") + b" " * (BODY_LIMIT + 1024)
    assert_error(send(port, "POST", "/webhook", body), 413, "payload_too_large")
    assert send(port, "POST", "/webhook", body, secret=False).status == 401
