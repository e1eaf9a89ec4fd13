"""Rasa adapter: the REST input channel with bounded inputs and a reply to every turn.

Register it in ``credentials.yml`` instead of ``rest:`` (options: :mod:`.options`)::

    components.channels.rest.GuardedRestInput:
      max_message_chars: 4000
      rate_per_minute: 30
      burst: 10

Its name stays ``rest``, so the URL stays ``/webhooks/rest/webhook``. ``rasa shell`` does not go
through it: the shell starts Rasa's own ``cmdline`` channel, which serves the same URL.

Each request is read up to a size limit, validated (:mod:`.validation`) and rate limited per
sender (:mod:`.limits`) before Rasa sees it: a bad request gets a 4xx with a JSON error body and
nothing of it is stored. After the turn, a turn without any bot message gets an apology in the
customer's language, recorded on the tracker as a bot message; when the turn ended in a custom
action that said nothing (the action server was down), a handoff is queued for the action server
(:mod:`.silence`, :mod:`components.stores.handoff_queue`). Failures inside the channel are logged by
type and code location, never with the user's text, and answered with a JSON 500.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from asyncio import Queue
from collections.abc import Awaitable, Callable
from typing import Any

import rasa.utils.endpoints
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import QueueOutputChannel, RestInput
from sanic import Blueprint, response
from sanic.exceptions import PayloadTooLarge, SanicException
from sanic.request import Request
from sanic.response import BaseHTTPResponse, HTTPResponse

from components.channels.limits import retry_after
from components.channels.options import RestOptions
from components.channels.turns import GUARD_MARK, OnNewMessage, TurnGuard, frames, sender_ref
from components.channels.validation import (
    ChatRequest,
    Rejected,
    body_too_large,
    check_declared_size,
    check_size,
    parse_request,
)

logger = logging.getLogger(__name__)

INTERNAL_ERROR = {
    "error": {
        "code": "internal_error",
        "message": "The assistant could not handle this message because of an internal error. "
        "Please try again; if it keeps happening, contact the site's support.",
    }
}
__all__ = ["GUARD_MARK", "INTERNAL_ERROR", "GuardedRestInput"]
_DONE = object()


class GuardedRestInput(RestInput):
    """Rasa's REST channel with validated, bounded, rate-limited input and no silent turns.

    Args:
        options: Limits and switches (default: :class:`RestOptions` defaults).
    """

    def __init__(self, options: RestOptions | None = None) -> None:
        self.options = options or RestOptions()
        self.limiter = self.options.rate_limiter()
        self.turns = TurnGuard.for_channel("rest", self.options)

    @classmethod
    def name(cls) -> str:
        """``rest``: the URL stays ``/webhooks/rest/webhook``."""
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> GuardedRestInput:
        """The channel configured by its ``credentials.yml`` block."""
        return cls(RestOptions.from_credentials(credentials))

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        """The health route and the guarded webhook."""
        module = inspect.getmodule(self)
        webhook = Blueprint(
            f"custom_webhook_{type(self).__name__}", module.__name__ if module else None
        )

        @webhook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"], stream=True)
        async def receive(request: Request) -> BaseHTTPResponse:
            try:
                return await self._receive(request, on_new_message)
            except Rejected as rejected:
                logger.info(
                    "channels.rest.rejected status=%d code=%s", rejected.status, rejected.code
                )
                return response.json(
                    rejected.body, status=rejected.status, headers=rejected.headers
                )
            except Exception as exc:
                logger.error(
                    "channels.rest.internal_error error=%s\n%s", type(exc).__name__, frames(exc)
                )
                return response.json(INTERNAL_ERROR, status=500)

        return webhook

    async def _read_body(self, request: Request) -> bytes:
        """The request body, read no further than the size limit (ours or Sanic's)."""
        limit = min(self.options.body_limit, request.app.config.REQUEST_MAX_SIZE)
        check_declared_size(request.headers.get("content-length"), self.options, limit)
        if request.stream is None:  # no body, or not a streaming route
            return request.body or b""
        chunks, size = [], 0
        while True:
            try:
                chunk = await request.stream.read()
            except PayloadTooLarge as exc:  # Sanic's own limit (REQUEST_MAX_SIZE)
                raise body_too_large(self.options, limit) from exc
            except SanicException as exc:  # e.g. bad chunked encoding
                raise Rejected(400, "invalid_body", "The request body could not be read.") from exc
            if chunk is None:
                return b"".join(chunks)
            size += len(chunk)
            check_size(size, self.options, limit)
            chunks.append(chunk)

    def _check_rate(self, sender: str) -> None:
        wait = self.limiter.try_acquire(sender)
        if wait:
            seconds = retry_after(wait)
            logger.info("channels.rest.rate_limited sender=%s", sender_ref(sender))
            raise Rejected(
                429,
                "rate_limited",
                f"Too many messages from this sender: wait {seconds} s before sending the next "
                f"one (limit: {self.options.rate_per_minute:g} per minute, "
                f"{self.options.burst} in a row).",
                {"Retry-After": str(seconds)},
            )

    async def _receive(self, request: Request, on_new_message: OnNewMessage) -> BaseHTTPResponse:
        chat = parse_request(await self._read_body(request), self.options)
        self._check_rate(chat.sender)
        if rasa.utils.endpoints.bool_arg(request, "stream", default=False):
            return response.stream(
                self._stream(request, on_new_message, chat), content_type="text/event-stream"
            )
        collector = CollectingOutputChannel()
        message = self._user_message(chat, collector)
        outcome = await self.turns.run(on_new_message, message)
        if outcome == "store_unavailable":  # nothing was stored: show nothing of the turn
            agent = getattr(request.app.ctx, "agent", None)
            reply = await self.turns.apology(agent, message, store_reachable=False)
            return response.json([reply] if reply else [])
        if not collector.messages:
            reply = await self._silence_reply(request, message)
            if reply is not None:
                collector.messages.append(reply)
        return response.json(collector.messages)

    def _user_message(self, chat: ChatRequest, output: CollectingOutputChannel) -> UserMessage:
        return UserMessage(
            chat.message,
            output,
            chat.sender,
            input_channel=chat.input_channel or self.name(),
            metadata=chat.metadata,
        )

    def _stream(
        self, request: Request, on_new_message: OnNewMessage, chat: ChatRequest
    ) -> Callable[[Any], Awaitable[None]]:
        """The streaming reply: one JSON line per bot message, the apology if there is none."""

        async def stream(resp: Any) -> None:
            queue: Queue = Queue()
            message = self._user_message(chat, QueueOutputChannel(queue))

            async def turn() -> None:
                try:
                    await self._run_turn(on_new_message, message)
                finally:
                    await queue.put(_DONE)

            task = asyncio.ensure_future(turn())
            sent = 0
            try:
                while (item := await queue.get()) is not _DONE:
                    await resp.write(json.dumps(item) + "\n")
                    sent += 1
                reply = None if sent else await self._silence_reply(request, message)
                if reply is not None:
                    await resp.write(json.dumps(reply) + "\n")
            finally:
                await task

        return stream

    async def _run_turn(self, on_new_message: OnNewMessage, message: UserMessage) -> None:
        await self.turns.run(on_new_message, message)

    async def _silence_reply(self, request: Request, message: UserMessage) -> dict | None:
        """The apology for a turn without bot messages (None: silence was expected)."""
        return await self.turns.apology(getattr(request.app.ctx, "agent", None), message)
