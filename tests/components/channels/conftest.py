"""A Sanic app with the guarded channel registered as ``rasa run`` registers it.

The channel is the code under test: it gets Rasa's own ``register`` call, a real masking
SQLite tracker store and a real lock store. Only the processor is scripted:
:class:`ScriptedAgent` plays Rasa's turn (user event, actions, bot messages, save) without a
model, and can fail the way Rasa does when the action server is down (the action is logged
with no events after it, the user gets no message).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from rasa.core.channels.channel import UserMessage, register
from rasa.core.lock_store import InMemoryLockStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, Restarted, UserUttered
from sanic import Sanic

from components.channels.rest import GuardedRestInput
from components.stores import handoff_queue
from components.stores.tracker_store import MaskingTrackerStore


class ScriptedAgent:
    """Stands in for ``rasa.core.agent.Agent``: real stores, a scripted prediction loop.

    ``script`` items: an action name (executed, no events: a failed custom action looks like
    this), ``"bot:<text>"`` (a bot message, sent to the output channel), ``"restart"``.
    ``error``: raised by ``handle_message`` before anything is saved.
    """

    def __init__(self, store: MaskingTrackerStore) -> None:
        self.tracker_store = store
        self.lock_store = InMemoryLockStore()
        self.received: list[UserMessage] = []
        self.script: list[str] = ["utter_greet", "bot:Hello!"]
        self.error: BaseException | None = None

    async def handle_message(self, message: UserMessage) -> None:
        self.received.append(message)
        if self.error is not None:
            raise self.error
        async with self.lock_store.lock(message.sender_id):
            tracker = await self.tracker_store.get_or_create_tracker(message.sender_id)
            tracker.update(
                UserUttered(
                    message.text,
                    input_channel=message.input_channel,
                    message_id=message.message_id,
                    metadata=message.metadata,
                )
            )
            for item in self.script:
                if item.startswith("bot:"):
                    tracker.update(BotUttered(item[4:]))
                    await message.output_channel.send_text_message(message.sender_id, item[4:])
                elif item == "restart":
                    tracker.update(Restarted())
                else:
                    tracker.update(ActionExecuted(item))
            tracker.update(ActionExecuted("action_listen"))
            await self.tracker_store.save(tracker)


@dataclass
class Server:
    app: Sanic
    agent: ScriptedAgent
    channel: GuardedRestInput
    db: Path
    loop: asyncio.AbstractEventLoop  # one loop per app: Sanic binds its signals to it
    url: str = "/webhooks/rest/webhook"

    def post(self, *requests: dict) -> list[httpx.Response]:
        """Send the requests in order (keyword arguments of ``httpx.AsyncClient.post``)."""

        async def main():
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://kefu") as client:
                return [await client.post(r.pop("url", self.url), **r) for r in requests]

        return self.loop.run_until_complete(main())

    def say(self, sender: str, message, **extra) -> httpx.Response:
        return self.post({"json": {"sender": sender, "message": message, **extra}})[0]

    def events(self, sender: str) -> list[dict]:
        """The stored events of a conversation (stored under its sender token)."""
        if not self.db.exists():
            return []
        token = handoff_queue.sender_token(sender)
        with sqlite3.connect(self.db) as conn:
            rows = conn.execute(
                "SELECT data FROM events WHERE sender_id = ? ORDER BY id", (token,)
            ).fetchall()
        return [json.loads(data) for (data,) in rows]


@pytest.fixture
def make_server(tmp_path, monkeypatch):
    """``make_server(**credentials) -> Server``: the channel as configured in credentials.yml."""
    # as sanic-testing does: several apps may start in one process (Sanic then keeps the
    # original request-handling code it rewrites at start-up)
    monkeypatch.setattr(Sanic, "test_mode", True)

    loops = []

    def build(**credentials) -> Server:
        db = tmp_path / "tracker.db"
        store = MaskingTrackerStore(
            Domain.empty(), inner={"type": "SQL", "dialect": "sqlite", "db": str(db)}
        )
        agent = ScriptedAgent(store)
        channel = GuardedRestInput.from_credentials(credentials or None)
        app = Sanic(f"kefu_channel_{uuid.uuid4().hex}", configure_logging=False)
        app.ctx.agent = agent
        register([channel], app, route="/webhooks/")
        loop = asyncio.new_event_loop()
        loops.append(loop)

        # what an ASGI server's lifespan start-up runs (sanic.asgi.Lifespan.startup)
        loop.run_until_complete(app._startup())
        return Server(app, agent, channel, db, loop)

    yield build
    for loop in loops:
        loop.close()


@pytest.fixture
def server(make_server) -> Server:
    return make_server()
