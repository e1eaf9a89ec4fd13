"""The socket.io channel over a real Engine.IO handshake: origins and session minting.

The channel is registered on a Sanic app as ``rasa run`` registers it, and spoken to with the
Engine.IO polling transport (what a socket.io client falls back to; the WebSocket transport runs
the same ``connect`` and event handlers with the same ``environ``).
"""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from rasa.core.channels.channel import register
from sanic import Sanic

from components.channels.socketio import GuardedSocketIOInput
from components.errors import ConfigError

ALLOWED = "http://localhost:5005"
EVIL = "https://evil.example"
PATH = "/socket.io/"


class Client:
    """One socket.io client over Engine.IO long polling, from one Origin (None: no header)."""

    def __init__(self, http: httpx.AsyncClient, origin: str | None) -> None:
        self.http = http
        self.headers = {"Origin": origin} if origin else {}
        self.sid: str | None = None

    def _params(self) -> dict[str, str]:
        params = {"EIO": "4", "transport": "polling"}
        if self.sid:
            params["sid"] = self.sid
        return params

    async def open(self) -> httpx.Response:
        """The Engine.IO handshake; remembers the sid when it succeeds."""
        reply = await self.http.get(PATH, params=self._params(), headers=self.headers)
        if reply.status_code == 200 and reply.text.startswith("0"):
            self.sid = json.loads(reply.text[1:])["sid"]
        return reply

    async def send(self, packet: str) -> None:
        reply = await self.http.post(
            PATH, params=self._params(), headers=self.headers, content=packet
        )
        assert reply.status_code == 200, reply.text

    async def receive(self) -> list[str]:
        reply = await asyncio.wait_for(
            self.http.get(PATH, params=self._params(), headers=self.headers), 10
        )
        assert reply.status_code == 200, reply.text
        return reply.text.split("\x1e")

    async def connect(self) -> str:
        """The socket.io namespace connect: ``40...`` (connected) or ``44...`` (refused)."""
        assert (await self.open()).status_code == 200
        await self.send("40")
        return (await self.receive())[0]

    async def emit(self, event: str, data: object) -> tuple[str, object]:
        """Emit an event and return the first event the server sends back."""
        await self.send("42" + json.dumps([event, data]))
        for packet in await self.receive():
            if packet.startswith("42"):
                name, payload = json.loads(packet[2:])
                return name, payload
        raise AssertionError("no event came back")


@pytest.fixture
def make_app(monkeypatch):
    """``make_app(**credentials) -> (run, channel)``; ``run(coro_fn)`` runs it with a client."""
    monkeypatch.setattr(Sanic, "test_mode", True)
    monkeypatch.setenv("KEFU_SESSION_SECRET", "origin-test-secret")
    monkeypatch.delenv("KEFU_CORS_ORIGINS", raising=False)
    loops = []

    def build(**credentials):
        channel = GuardedSocketIOInput.from_credentials(credentials or None)
        app = Sanic(f"kefu_socketio_{uuid.uuid4().hex}", configure_logging=False)
        register([channel], app, route="/webhooks/")
        loop = asyncio.new_event_loop()
        loops.append(loop)
        loop.run_until_complete(app._startup())

        def run(body):
            async def main():
                transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4000))
                async with httpx.AsyncClient(transport=transport, base_url="http://kefu") as http:
                    return await body(http)

            return loop.run_until_complete(main())

        return run, channel

    yield build
    for loop in loops:
        pending = asyncio.all_tasks(loop)  # Engine.IO's ping tasks of the test sockets
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()


def test_an_evil_origin_is_refused_at_the_handshake(make_app):
    run, _ = make_app()

    async def body(http):
        client = Client(http, EVIL)
        reply = await client.open()
        if reply.status_code != 200:  # refused by the Engine.IO handshake itself
            return reply.status_code, None
        await client.send("40")
        return reply.status_code, (await client.receive())[0]

    status, connect = run(body)
    assert status == 403 or (connect or "").startswith("44"), (status, connect)


def test_an_evil_origin_gets_no_session(make_app):
    """Even a socket that got through (a proxy rewrote it) is not given a session id."""
    run, channel = make_app()

    async def body(http):
        client = Client(http, ALLOWED)
        assert (await client.connect()).startswith("40")
        # the environ of this socket now says it came from elsewhere
        environ = channel.sio.get_environ(channel.sio.manager.sid_from_eio_sid(client.sid, "/"))
        environ["HTTP_ORIGIN"] = EVIL
        return await client.emit("session_request", {})

    name, data = run(body)
    assert name == "kefu_error" and data["status"] == 403 and data["code"] == "origin_not_allowed"


@pytest.mark.parametrize("origin", [ALLOWED, "http://127.0.0.1:5005", None])
def test_an_allowed_origin_or_none_gets_a_session(make_app, origin):
    run, channel = make_app()

    async def body(http):
        client = Client(http, origin)
        assert (await client.connect()).startswith("40")
        return await client.emit("session_request", {})

    name, session_id = run(body)
    assert name == "session_confirm" and channel.signer.valid(session_id)


def test_the_allow_list_comes_from_the_block_or_the_environment(make_app, monkeypatch):
    run, channel = make_app(allowed_origins=["https://shop.example"])
    assert channel.allowed_origins == ("https://shop.example",)

    async def body(http):
        return await Client(http, ALLOWED).connect(), await Client(
            http, "https://shop.example"
        ).connect()

    local, shop = run(body)
    assert local.startswith("44") or local == "", local
    assert shop.startswith("40")
    monkeypatch.setenv("KEFU_CORS_ORIGINS", "https://a.example  https://b.example:8443")
    assert GuardedSocketIOInput().allowed_origins == ("https://a.example", "https://b.example:8443")
    for bad in ("*", ["https://x.example/path"], "ftp://x.example", [5], ""):
        with pytest.raises(ConfigError, match="allowed_origins"):
            GuardedSocketIOInput.from_credentials({"allowed_origins": bad})


def test_session_minting_is_rate_limited_per_client(make_app):
    run, channel = make_app(session_rate_per_minute=1, session_burst=2)

    async def body(http):
        client = Client(http, ALLOWED)
        assert (await client.connect()).startswith("40")
        replies = [await client.emit("session_request", {}) for _ in range(3)]
        # resuming a session one holds is not minting: never refused
        resumed = await client.emit("session_request", {"session_id": replies[0][1]})
        # another socket of the same client address shares the budget
        other = Client(http, ALLOWED)
        assert (await other.connect()).startswith("40")
        return replies, resumed, await other.emit("session_request", {})

    replies, resumed, other = run(body)
    assert [name for name, _ in replies] == ["session_confirm", "session_confirm", "kefu_error"]
    error = replies[2][1]
    assert error["status"] == 429 and error["code"] == "session_rate_limited"
    assert int(error["retry_after"]) >= 1 and "session" in error["message"]
    assert resumed == ("session_confirm", replies[0][1])
    assert other[0] == "kefu_error" and other[1]["code"] == "session_rate_limited"
    assert list(channel.session_limiter._buckets) == ["203.0.113.7"]  # keyed by client address
    with pytest.raises(ConfigError, match="session_burst"):
        GuardedSocketIOInput.from_credentials({"session_burst": 0})


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        ("http://127.0.0.1:43127", "127.0.0.1:43127", True),  # the chat page of this server
        ("https://evil.example", "127.0.0.1:43127", False),
        ("http://127.0.0.1:43128", "127.0.0.1:43127", False),  # another port is another origin
        ("http://127.0.0.1:43127/path", "127.0.0.1:43127", False),  # not an origin
        ("http://localhost:5005", "shop.example", True),  # on the allow-list
        (None, "shop.example", True),  # not a browser
    ],
)
def test_a_page_of_this_server_is_same_origin(origin, host, allowed):
    from components.channels.sessions import origin_allowed

    environ = {"HTTP_HOST": host, **({"HTTP_ORIGIN": origin} if origin else {})}
    assert origin_allowed(environ, (ALLOWED,)) is allowed
